package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commandPaths lists the file flags of a command: the files it reads and
// the files it writes.
type commandPaths struct {
	inputs, outputs []string
	// positionalInput names the first argument in errors when the command
	// reads it as an input file, such as "CHECKPOINT".
	positionalInput string
	// checkFolders makes the pre-run check that each output's folder exists
	// and is writable, for commands that work for a long time before they
	// write.
	checkFolders bool
}

// pathFlags maps a command's name to its file flags. Every output is
// checked against every input and every other output before the command
// runs, so no command overwrites what it reads or writes one file twice.
var pathFlags = map[string]commandPaths{
	"quantize":    {inputs: []string{"in", "captions"}, outputs: []string{"out", "report"}, checkFolders: true},
	"reconstruct": {inputs: []string{"model", "image"}, outputs: []string{"out"}, checkFolders: true},
	"evaluate":    {inputs: []string{"model", "captions", "train-captions"}, outputs: []string{"json", "grid"}, checkFolders: true},
	"probe":       {inputs: []string{"model", "train", "test"}, outputs: []string{"json"}, checkFolders: true},
	"ood":         {inputs: []string{"model", "fit", "score", "in-dist", "out-dist"}, outputs: []string{"json"}, checkFolders: true},
	"tsne":        {inputs: []string{"model", "data"}, outputs: []string{"out", "csv"}, checkFolders: true},
	"import":      {inputs: []string{"vocab"}, outputs: []string{"out"}, positionalInput: "CHECKPOINT", checkFolders: true},
	// export --format onnx writes a folder that it creates, so its folder
	// is not checked here.
	"export": {inputs: []string{"checkpoint", "in"}, outputs: []string{"out"}},
}

// checkFlagValues rejects string flags given with an empty value, which
// would otherwise fall back to the default silently, and output paths that
// name an input or another output.
func checkFlagValues(cmd *cobra.Command, args []string) error {
	var empty error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if empty == nil && f.Value.Type() == "string" && f.Value.String() == "" {
			empty = fmt.Errorf("--%s is empty: give a value or leave the flag out", f.Name)
		}
	})
	if empty != nil {
		return empty
	}

	paths, ok := pathFlags[cmd.Name()]
	if !ok {
		return nil
	}

	type namedPath struct{ name, path string }
	var inputs, outputs []namedPath
	for _, name := range paths.inputs {
		if value := flagString(cmd, name); value != "" {
			inputs = append(inputs, namedPath{"--" + name, value})
		}
	}
	if paths.positionalInput != "" && len(args) > 0 && args[0] != "" {
		inputs = append(inputs, namedPath{paths.positionalInput, args[0]})
	}
	for _, name := range paths.outputs {
		if value := flagString(cmd, name); value != "" && value != "-" {
			outputs = append(outputs, namedPath{"--" + name, value})
		}
	}

	for i, out := range outputs {
		for _, in := range inputs {
			if sameFile(out.path, in.path) {
				return fmt.Errorf("%s %s is also %s, an input: write it to another path so the input is kept", out.name, out.path, in.name)
			}
		}
		for _, other := range outputs[:i] {
			if sameFile(out.path, other.path) {
				return fmt.Errorf("%s %s is also %s: give each output its own path", out.name, out.path, other.name)
			}
		}
		if paths.checkFolders {
			if err := checkOutputPath(out.name, out.path); err != nil {
				return err
			}
		}
	}
	return nil
}

// flagString returns the value of the string flag name, or "" when the
// command has no such flag.
func flagString(cmd *cobra.Command, name string) string {
	f := cmd.Flags().Lookup(name)
	if f == nil || f.Value.Type() != "string" {
		return ""
	}
	return f.Value.String()
}

// checkOutputPath checks, before any long work starts, that path is not a
// folder and that its folder exists and is writable.
func checkOutputPath(flag, path string) error {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return fmt.Errorf("%s %s is a folder: give a file path inside it", flag, path)
	}
	dir := filepath.Dir(resolvePath(path))
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s: folder %s not found: create it or give another path", flag, path, dir)
	case err != nil:
		return fmt.Errorf("%s %s: %w", flag, path, err)
	case !info.IsDir():
		return fmt.Errorf("%s %s: %s is not a folder: give another path", flag, path, dir)
	}
	probe, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return fmt.Errorf("%s %s: folder %s is not writable: %w", flag, path, dir, pathErrorCause(err))
	}
	name := probe.Name()
	_ = probe.Close()
	_ = os.Remove(name)
	return nil
}

// tempPattern names the temporary files that outputs are written to before
// they are renamed into place.
const tempPattern = ".m3ae-edge-*.tmp"

// resolvePath returns path with its symbolic links resolved, or path itself
// when it does not exist yet.
func resolvePath(path string) string {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return path
	}
	return resolved
}

// pathErrorCause returns the cause of a *fs.PathError, so messages name
// the user's path and not a temporary file's.
func pathErrorCause(err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	var linkErr *os.LinkError
	if errors.As(err, &linkErr) {
		return linkErr.Err
	}
	return err
}

// openTempFiles contains the temporary files being written, so an interrupt
// that ends the process early can remove them.
var openTempFiles sync.Map

// removeTempFiles removes every temporary file still being written.
func removeTempFiles() {
	openTempFiles.Range(func(name, _ any) bool {
		_ = os.Remove(name.(string))
		openTempFiles.Delete(name)
		return true
	})
}

// outputMode returns how writeFileAtomic writes to an existing file of
// mode. A regular file is replaced by renaming a temporary file onto it.
// FIFOs and character devices, such as /dev/null and a terminal, are
// written directly. Anything else is rejected, because renaming onto it
// would replace it.
func outputMode(mode fs.FileMode) (direct bool, err error) {
	switch {
	case mode.IsRegular():
		return false, nil
	case mode.IsDir():
		return false, errors.New("is a folder: give a file path inside it")
	case mode&fs.ModeNamedPipe != 0, mode&fs.ModeCharDevice != 0:
		return true, nil
	case mode&fs.ModeDevice != 0:
		return false, errors.New("is a block device: give a regular file path")
	}
	return false, fmt.Errorf("is a %v, not a regular file: give a regular file path", mode.Type())
}

// writeFileAtomic writes an output file with write and returns its size in
// bytes. A new or regular file is written to a temporary file in the
// target's folder and renamed into place, so an interrupted run leaves no
// partial file. A symbolic link is followed, so the link stays and its
// target is replaced. FIFOs and character devices are written directly.
// "-" writes to standard output.
func writeFileAtomic(path string, write func(io.Writer) error) (int64, error) {
	if path == "-" {
		counter := &countingWriter{w: os.Stdout}
		err := write(counter)
		return counter.n, err
	}
	target := resolvePath(path)
	info, err := os.Stat(target)
	if err == nil {
		direct, err := outputMode(info.Mode())
		if err != nil {
			return 0, fmt.Errorf("%s %w", path, err)
		}
		if direct {
			return writeDirect(path, target, write)
		}
	}

	f, err := os.CreateTemp(filepath.Dir(target), tempPattern)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, pathErrorCause(err))
	}
	openTempFiles.Store(f.Name(), struct{}{})
	defer func() {
		_ = os.Remove(f.Name()) // fails harmlessly once renamed
		openTempFiles.Delete(f.Name())
	}()
	// CreateTemp makes the file private; model files and reports are for
	// sharing.
	err = f.Chmod(0o644)
	if err == nil {
		err = write(f)
	}
	if syncErr := f.Sync(); err == nil {
		err = syncErr
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, pathErrorCause(err))
	}
	info, err = os.Stat(f.Name())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, pathErrorCause(err))
	}
	if err := os.Rename(f.Name(), target); err != nil {
		return 0, fmt.Errorf("%s: %w", path, pathErrorCause(err))
	}
	return info.Size(), nil
}

// writeDirect writes to an existing FIFO or character device.
func writeDirect(path, target string, write func(io.Writer) error) (int64, error) {
	f, err := os.OpenFile(target, os.O_WRONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, pathErrorCause(err))
	}
	counter := &countingWriter{w: f}
	err = write(counter)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, pathErrorCause(err))
	}
	return counter.n, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// sameFile reports whether two paths name one file, so no command
// overwrites its own input.
func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	infoA, errA := os.Stat(a)
	infoB, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(infoA, infoB)
}
