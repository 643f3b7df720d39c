package main

import (
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// decodePNGSize decodes the PNG file at path and returns its size.
func decodePNGSize(t *testing.T, path string) image.Point {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return img.Bounds().Size()
}

func TestReconstructCommandImageAndText(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	img := writeTestPNG(t, dir)
	out := filepath.Join(dir, "grid.png")
	stdout, stderr, err := execute(t, "reconstruct", "--model", model, "--image", img, "--text", "a smiling cat with a hat",
		"--top-k", "3", "--seed", "4", "--out", out)
	if err != nil {
		t.Fatalf("m3ae-edge reconstruct: %v\nstderr:\n%s", err, stderr)
	}

	// The micro model's 16-pixel images are scaled 12x to 192 pixels, and
	// three of them with margins make 2*8 + 3*192 + 2*8 pixels.
	size := decodePNGSize(t, out)
	if size.X != 608 {
		t.Errorf("grid width = %d, want 608", size.X)
	}
	if size.Y < 192+2*15 {
		t.Errorf("grid height = %d, want room for 192-pixel images and two caption lines", size.Y)
	}

	for _, want := range []string{"image: 12 of 16 patches hidden", "tokens: ", "[", "position ", "tokens hidden"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("m3ae-edge reconstruct output lacks %q:\n%s", want, stdout)
		}
	}
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, "position ") && strings.Count(line, ",") != 3 {
			t.Errorf("prediction line %q does not list 3 candidates", line)
		}
	}
	if !strings.Contains(stderr, "wrote reconstruction grid") {
		t.Errorf("m3ae-edge reconstruct log lacks the written grid:\n%s", stderr)
	}
}

func TestReconstructCommandJSON(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	img := writeTestPNG(t, dir)
	out := filepath.Join(dir, "grid.png")
	args := []string{"reconstruct", "--model", model, "--image", img, "--text", "a smiling cat with a hat",
		"--text-mask-ratio", "0.5", "--top-k", "2", "--out", out, "--json"}
	stdout, stderr, err := execute(t, args...)
	if err != nil {
		t.Fatalf("m3ae-edge reconstruct --json: %v\nstderr:\n%s", err, stderr)
	}
	var got reconstructionJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("m3ae-edge reconstruct --json output: %v\n%s", err, stdout)
	}
	if len(got.ImageMask) != 16 {
		t.Errorf("image_mask has %d entries, want 16 patches", len(got.ImageMask))
	}
	if len(got.TextMask) != 16 {
		t.Errorf("text_mask has %d entries, want 16 text positions", len(got.TextMask))
	}
	if len(got.Tokens) != 6 {
		t.Fatalf("tokens = %+v, want the 6 tokens of the caption", got.Tokens)
	}
	hidden := 0
	for i, token := range got.Tokens {
		if token.Hidden != got.TextMask[i] {
			t.Errorf("token %d hidden = %v, text_mask[%d] = %v", i, token.Hidden, i, got.TextMask[i])
		}
		if token.Hidden {
			hidden++
		}
	}
	if len(got.Predictions) != hidden {
		t.Errorf("%d predictions for %d hidden tokens", len(got.Predictions), hidden)
	}
	for _, p := range got.Predictions {
		if len(p.Candidates) != 2 {
			t.Errorf("prediction at position %d has %d candidates, want 2", p.Position, len(p.Candidates))
		}
		if p.Original != got.Tokens[p.Position].Token {
			t.Errorf("prediction at position %d original = %q, want %q", p.Position, p.Original, got.Tokens[p.Position].Token)
		}
	}

	// The same seed draws the same masks.
	again, _, err := execute(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	if again != stdout {
		t.Errorf("second run with the same seed printed different JSON")
	}
}

func TestReconstructCommandTextOnly(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	stdout, stderr, err := execute(t, "reconstruct", "--model", model, "--text", "a smiling cat", "--text-mask-ratio", "0")
	if err != nil {
		t.Fatalf("m3ae-edge reconstruct (text only): %v\nstderr:\n%s", err, stderr)
	}
	if want := "tokens: \"a\" \"smiling\" \"cat\"\n0 of 3 tokens hidden\n"; stdout != want {
		t.Errorf("m3ae-edge reconstruct (text only, ratio 0) output = %q, want %q", stdout, want)
	}

	// With --out, the grid has only the caption lines, 80 characters of
	// 7 pixels wide between 8-pixel margins.
	out := filepath.Join(dir, "text.png")
	if _, _, err := execute(t, "reconstruct", "--model", model, "--text", "a smiling cat", "--out", out); err != nil {
		t.Fatal(err)
	}
	size := decodePNGSize(t, out)
	if size.X != 576 {
		t.Errorf("text-only grid width = %d, want 576", size.X)
	}
	if size.Y >= 192 {
		t.Errorf("text-only grid height = %d, want only caption lines, under 192", size.Y)
	}
}

func TestReconstructCommandImageOnly(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	img := writeTestPNG(t, dir)
	out := filepath.Join(dir, "grid.png")
	stdout, _, err := execute(t, "reconstruct", "--model", model, "--image", img, "--image-mask-ratio", "0.5", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "image: 8 of 16 patches hidden\n"; stdout != want {
		t.Errorf("m3ae-edge reconstruct (image only) output = %q, want %q", stdout, want)
	}
	size := decodePNGSize(t, out)
	if size.X != 608 {
		t.Errorf("image-only grid width = %d, want 608", size.X)
	}
	// Margin, label line, image, margin.
	if want := 8 + 15 + 192 + 8 + 8; size.Y != want {
		t.Errorf("image-only grid height = %d, want %d", size.Y, want)
	}
}

func TestReconstructCommandRejects(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	img := writeTestPNG(t, dir)
	badModel, badImage := writeBadFiles(t, dir)
	absent := filepath.Join(dir, "absent")
	out := filepath.Join(dir, "grid.png")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no inputs", []string{"--model", model}, "no input: give --image FILE, --text CAPTION or both"},
		{"no inputs, default model", nil, "no input: give --image FILE, --text CAPTION or both"},
		{"absent model", []string{"--model", absent, "--text", "cat"}, "--model " + absent + ": file not found"},
		{"bad model", []string{"--model", badModel, "--text", "cat"}, "--model " + badModel + ": invalid model file"},
		{"absent image", []string{"--model", model, "--image", absent, "--out", out}, "--image " + absent + ": file not found"},
		{"bad image", []string{"--model", model, "--image", badImage, "--out", out}, "--image " + badImage + ": invalid image"},
		{"image without --out", []string{"--model", model, "--image", img}, "--image " + img + " needs --out"},
		{"negative image ratio", []string{"--model", model, "--text", "cat", "--image-mask-ratio", "-0.1"}, "--image-mask-ratio -0.1 is out of range: use a fraction from 0 to 1"},
		{"text ratio above 1", []string{"--model", model, "--text", "cat", "--text-mask-ratio", "1.5"}, "--text-mask-ratio 1.5 is out of range"},
		{"NaN ratio", []string{"--model", model, "--text", "cat", "--text-mask-ratio", "NaN"}, "--text-mask-ratio NaN is out of range"},
		{"zero top-k", []string{"--model", model, "--text", "cat", "--top-k", "0"}, "--top-k 0 is out of range: use a count from 1 to 100"},
		{"top-k above 100", []string{"--model", model, "--text", "cat", "--top-k", "101"}, "--top-k 101 is out of range"},
		{"--out in absent folder", []string{"--model", model, "--image", img, "--out", filepath.Join(absent, "grid.png")}, "absent not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := execute(t, append([]string{"reconstruct"}, tt.args...)...)
			if err == nil {
				t.Fatalf("m3ae-edge reconstruct %v succeeded, want an error containing %q", tt.args, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("m3ae-edge reconstruct %v error = %q, want it to contain %q", tt.args, err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("m3ae-edge reconstruct %v error has more than one line: %q", tt.args, err)
			}
		})
	}
}
