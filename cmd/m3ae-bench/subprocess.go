// This file builds the helper programs of the train, kernels and memory
// groups (gomlxbench, kernelbench, peakrss, pluginhost and the CLI) and runs
// them as child processes, so that each measurement gets a process of its
// own.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// modulePath is the import path of this repository's module.
const modulePath = "github.com/m3ae-edge/m3ae-edge"

// repositoryRoot returns the folder of this module's go.mod, where
// testdata and the scripts live, from wherever the command runs.
func repositoryRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD failed: %w (run m3ae-bench inside the repository with go on PATH)", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module: run m3ae-bench from the repository")
	}
	return filepath.Dir(gomod), nil
}

// buildProgram compiles the package pkg, an import path inside this
// module, into the executable out. extraEnv entries such as GOOS=wasip1
// are added to this process's environment for the go command.
func buildProgram(ctx context.Context, pkg, out string, extraEnv []string, extraArgs ...string) error {
	args := append([]string{"build", "-o", out}, extraArgs...)
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), extraEnv...)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s %s failed: %w\n%s", strings.Join(extraEnv, " "), pkg, err, output)
	}
	return nil
}

// runChild runs a program with extraEnv added to this process's
// environment and returns its stdout. The error of a failed run carries
// the end of its stderr.
func runChild(ctx context.Context, extraEnv []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s stopped: %w", filepath.Base(name), context.Cause(ctx))
		}
		return nil, fmt.Errorf("%s %s failed: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes(), nil
}

// decodeJSONLines decodes every non-blank line of data as one T.
func decodeJSONLines[T any](data []byte) ([]T, error) {
	var out []T
	for line := range strings.Lines(string(data)) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return nil, fmt.Errorf("invalid JSON line %q: %w", tail(line, 200), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// tail returns the last max bytes of s.
func tail(s string, max int) string {
	if len(s) <= max {
		return s
	}
	return "..." + s[len(s)-max:]
}
