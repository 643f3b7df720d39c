package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/defaultmodel"
)

// defaultModelLabel names the embedded default model where outputs would
// give a model file's path, such as the "model" field of embed --json.
const defaultModelLabel = "embedded:" + defaultmodel.FileName

// modelFlagUsage is the help text of every --model flag.
const modelFlagUsage = "model file to run (default: the " + defaultmodel.FileName +
	" model embedded in m3ae-edge)"

// modelLabel returns how outputs name the model of a --model value.
func modelLabel(path string) string {
	if path == "" {
		return defaultModelLabel
	}
	return path
}

// readModel returns the bytes of the model file at path, or of the
// embedded default model when path is empty. It only reads the file;
// loadPipeline and core.ReadModelFile validate it. flag names the value
// in errors, such as "--model".
func readModel(flag, path string) ([]byte, error) {
	if path == "" {
		return defaultmodel.Bytes(), nil
	}
	return readInputFile(flag, path, readModelBytes)
}

// readModelBytes reads the model file at path. It must be a regular file
// of at most core.MaxModelFileSize bytes, which is checked before anything
// is read, so a path such as /dev/zero or a huge sparse file fails at once
// instead of filling memory.
func readModelBytes(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	switch {
	case err != nil:
		return nil, err
	case info.IsDir():
		return nil, &fs.PathError{Op: "read", Path: path, Err: syscall.EISDIR}
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("not a regular file (%s): give a model file, not a device or a pipe", info.Mode().Type())
	case uint64(info.Size()) > core.MaxModelFileSize:
		return nil, fmt.Errorf("%w: file is %d bytes, over the limit of %d (core.MaxModelFileSize)",
			core.ErrInvalidModelFile, info.Size(), core.MaxModelFileSize)
	}
	data := make([]byte, info.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("read %d bytes: %w", len(data), err)
	}
	return data, nil
}

// loadPipeline reads the model file at path, or the embedded default model
// when path is empty, and prepares a Pipeline for it.
func loadPipeline(path string) (*core.Pipeline, error) {
	data, err := readModel("--model", path)
	if err != nil {
		return nil, err
	}
	pipeline, err := core.Load(data)
	if err != nil {
		return nil, modelFileError("--model", path, err)
	}
	return pipeline, nil
}

// modelFileError wraps err, an invalid model file's error, with the flag
// and path, or reports that the embedded model is invalid.
func modelFileError(flag, path string, err error) error {
	if path == "" {
		return fmt.Errorf("%s: %w: rebuild m3ae-edge with a valid defaultmodel/%s (make model writes it)",
			defaultModelLabel, err, defaultmodel.FileName)
	}
	if strings.Contains(err.Error(), "header length ") {
		// A safetensors file starts with the length of its JSON header, so
		// an absurd or truncated length means another kind of file.
		return fmt.Errorf("%s %s: %w, so it is not a safetensors model file: give a model file written by m3ae-edge export, import or quantize", flag, path, err)
	}
	return fmt.Errorf("%s %s: %w: give a model file written by m3ae-edge export or quantize", flag, path, err)
}
