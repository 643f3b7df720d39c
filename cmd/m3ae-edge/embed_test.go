package main

import (
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/defaultmodel"
)

// writeTestPNG writes a 20x12 PNG with a colour gradient to dir and returns
// its path.
func writeTestPNG(t *testing.T, dir string) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 20, 12))
	for y := range 12 {
		for x := range 20 {
			img.SetRGBA(x, y, color.RGBA{R: uint8(12 * x), G: uint8(20 * y), B: 90, A: 255})
		}
	}
	path := filepath.Join(dir, "input.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeBadFiles writes a file that is not a model file and one that is not
// an image to dir and returns their paths.
func writeBadFiles(t *testing.T, dir string) (badModel, badImage string) {
	t.Helper()
	badModel = filepath.Join(dir, "bad.safetensors")
	badImage = filepath.Join(dir, "bad.png")
	if err := os.WriteFile(badModel, []byte("not a model file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(badImage, []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	return badModel, badImage
}

func TestEmbedCommandPlain(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	img := writeTestPNG(t, dir)
	for _, args := range [][]string{
		{"--image", img},
		{"--text", "a smiling cat"},
		{"--image", img, "--text", "a smiling cat", "--pooling", "mean"},
	} {
		stdout, stderr, err := execute(t, append([]string{"embed", "--model", model}, args...)...)
		if err != nil {
			t.Fatalf("m3ae-edge embed %v: %v\nstderr:\n%s", args, err, stderr)
		}
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("m3ae-edge embed %v printed %d lines, want 2:\n%s", args, len(lines), stdout)
		}
		if lines[0] != "32" {
			t.Errorf("m3ae-edge embed %v dimension line = %q, want 32 (the micro emb_dim)", args, lines[0])
		}
		values := strings.Fields(lines[1])
		if len(values) != 32 {
			t.Errorf("m3ae-edge embed %v printed %d values, want 32", args, len(values))
		}
		for _, v := range values {
			if _, err := strconv.ParseFloat(v, 32); err != nil {
				t.Errorf("m3ae-edge embed %v value %q: %v", args, v, err)
			}
		}
	}
}

func TestEmbedCommandJSON(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	stdout, stderr, err := execute(t, "embed", "--model", model, "--text", "a smiling cat", "--pooling", "mean", "--json")
	if err != nil {
		t.Fatalf("m3ae-edge embed --json: %v\nstderr:\n%s", err, stderr)
	}
	var got embeddingJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("m3ae-edge embed --json output: %v\n%s", err, stdout)
	}
	if got.Model != model {
		t.Errorf("model = %q, want %q", got.Model, model)
	}
	if got.Pooling != "mean" {
		t.Errorf("pooling = %q, want mean", got.Pooling)
	}
	if got.Dim != 32 {
		t.Errorf("dim = %d, want 32", got.Dim)
	}
	if len(got.Embedding) != got.Dim {
		t.Errorf("embedding has %d values, want dim %d", len(got.Embedding), got.Dim)
	}
}

// TestEmbedCommandDefaultModel runs embed without --model, on the model
// embedded from defaultmodel.
func TestEmbedCommandDefaultModel(t *testing.T) {
	stdout, _, err := execute(t, "embed", "--text", "red apple", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got embeddingJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("decode --json output: %v\n%s", err, stdout)
	}
	if got.Model != defaultModelLabel {
		t.Errorf("model = %q, want %q", got.Model, defaultModelLabel)
	}
	pipeline, err := defaultmodel.Load()
	if err != nil {
		t.Fatal(err)
	}
	if want := pipeline.Config().EmbedDim; got.Dim != want || len(got.Embedding) != want {
		t.Errorf("dim = %d with %d values, want the default model's width %d", got.Dim, len(got.Embedding), want)
	}
}

func TestEmbedCommandRejects(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	img := writeTestPNG(t, dir)
	badModel, badImage := writeBadFiles(t, dir)
	absent := filepath.Join(dir, "absent")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no inputs", []string{"--model", model}, "no input: give --image FILE, --text CAPTION or both"},
		{"no inputs, default model", nil, "no input: give --image FILE, --text CAPTION or both"},
		{"blank caption", []string{"--model", model, "--text", "  "}, "no input"},
		{"absent model", []string{"--model", absent, "--text", "cat"}, "--model " + absent + ": file not found"},
		{"bad model", []string{"--model", badModel, "--text", "cat"}, "--model " + badModel + ": invalid model file"},
		{"absent image", []string{"--model", model, "--image", absent}, "--image " + absent + ": file not found"},
		{"bad image", []string{"--model", model, "--image", badImage}, "--image " + badImage + ": invalid image"},
		{"unknown pooling", []string{"--model", model, "--image", img, "--pooling", "max"}, `--pooling "max": use cls or mean`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := execute(t, append([]string{"embed"}, tt.args...)...)
			if err == nil {
				t.Fatalf("m3ae-edge embed %v succeeded, want an error containing %q", tt.args, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("m3ae-edge embed %v error = %q, want it to contain %q", tt.args, err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("m3ae-edge embed %v error has more than one line: %q", tt.args, err)
			}
		})
	}
}

func TestEmbedWarnsTruncatedCaption(t *testing.T) {
	long := "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen"
	_, stderr, err := execute(t, "embed", "--text", long)
	if err != nil {
		t.Fatalf("m3ae-edge embed: %v\nstderr:\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "dropped=2") {
		t.Errorf("stderr lacks a warning with dropped=2 for an 18-token caption:\n%s", stderr)
	}

	_, stderr, err = execute(t, "embed", "--text", "grinning face")
	if err != nil {
		t.Fatalf("m3ae-edge embed: %v\nstderr:\n%s", err, stderr)
	}
	if strings.Contains(stderr, "dropped") {
		t.Errorf("stderr warns about a 2-token caption:\n%s", stderr)
	}
}
