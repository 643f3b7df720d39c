package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExportONNXWritesEveryModel(t *testing.T) {
	dir := t.TempDir()
	in := writeMicroModel(t, dir)
	out := filepath.Join(dir, "onnx")
	stdout, stderr, err := execute(t, "export", "--format", "onnx", "--in", in, "--out", out)
	if err != nil {
		t.Fatalf("m3ae-edge export: %v\nstderr:\n%s", err, stderr)
	}

	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{
		"embed-image-text.onnx", "embed-image.onnx", "embed-text.onnx",
		"reconstruct-image-text.onnx", "reconstruct-image.onnx", "reconstruct-text.onnx",
	}
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v (no temporary files left)", names, want)
	}
	for _, name := range want {
		if !strings.Contains(stdout, filepath.Join(out, name)) {
			t.Errorf("stdout does not report %s:\n%s", name, stdout)
		}
	}
}

func TestExportONNXSelectedModels(t *testing.T) {
	dir := t.TempDir()
	in := writeMicroModel(t, dir)
	out := filepath.Join(dir, "onnx")
	_, stderr, err := execute(t, "export", "--format", "onnx", "--in", in, "--out", out,
		"--models", "embed-text,reconstruct-image")
	if err != nil {
		t.Fatalf("m3ae-edge export: %v\nstderr:\n%s", err, stderr)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"embed-text.onnx", "reconstruct-image.onnx"}; !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
}

func TestExportCommandRejects(t *testing.T) {
	dir := t.TempDir()
	in := writeMicroModel(t, dir)
	out := filepath.Join(dir, "out")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown format", []string{"--format", "tflite", "--in", in, "--out", out}, `--format "tflite"`},
		{"onnx without source", []string{"--format", "onnx", "--out", out}, "exactly one of --in"},
		{"onnx with two sources", []string{"--format", "onnx", "--in", in, "--checkpoint", dir, "--out", out}, "exactly one of --in"},
		{"unknown model", []string{"--format", "onnx", "--in", in, "--out", out, "--models", "embed-audio"}, `unknown ONNX model "embed-audio"`},
		{"step with model file", []string{"--format", "onnx", "--in", in, "--out", out, "--step", "3"}, "--step is only read with --checkpoint"},
		{"missing model file", []string{"--format", "onnx", "--in", filepath.Join(dir, "none.safetensors"), "--out", out}, "file not found"},
		{"in with safetensors", []string{"--in", in, "--out", out}, "--in is only read with --format onnx"},
		{"models with safetensors", []string{"--checkpoint", dir, "--models", "embed-text", "--out", out}, "--models is only read with --format onnx"},
		{"safetensors without checkpoint", []string{"--out", out}, `"checkpoint" not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := execute(t, append([]string{"export"}, tt.args...)...)
			if err == nil {
				t.Fatalf("export %v returned no error", tt.args)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a rejected export created %s", out)
	}
}
