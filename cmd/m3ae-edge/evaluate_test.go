package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
)

const fixtureTrainCaptions = "../../testdata/emoji-mini/train.jsonl"

func TestEvaluateCommand(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	int8Model := filepath.Join(dir, "micro.int8.safetensors")
	if _, stderr, err := execute(t, "quantize", "--in", model, "--out", int8Model); err != nil {
		t.Fatalf("m3ae-edge quantize: %v\nstderr:\n%s", err, stderr)
	}

	for _, tt := range []struct {
		model, quantization string
	}{{model, core.QuantizationNone}, {int8Model, core.QuantizationInt8}} {
		jsonPath := filepath.Join(dir, "evaluate.json")
		stdout, stderr, err := execute(t, "evaluate", "--model", tt.model, "--captions", fixtureTestCaptions,
			"--train-captions", fixtureTrainCaptions, "--limit", "5", "--seed", "3", "--json", jsonPath)
		if err != nil {
			t.Fatalf("m3ae-edge evaluate --model %s: %v\nstderr:\n%s", tt.model, err, stderr)
		}
		for _, want := range []string{
			"image reconstruction, 12 of 16 patches hidden", "mean-colour baseline", "masked (text 0.75, image 0.75)",
			"caption from the image alone", "baseline: the 5 most frequent",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("m3ae-edge evaluate output lacks %q:\n%s", want, stdout)
			}
		}

		data, err := os.ReadFile(jsonPath)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Model        string `json:"model"`
			Quantization string `json:"quantization"`
			Examples     int    `json:"examples"`
			Seed         uint64 `json:"seed"`
			Image        *struct {
				Examples int `json:"examples"`
			} `json:"image_reconstruction"`
			CaptionFromImage *struct {
				Tokens   int       `json:"tokens"`
				Baseline *struct{} `json:"frequency_baseline"`
			} `json:"caption_from_image"`
			Baseline *struct {
				Captions int `json:"captions"`
			} `json:"token_baseline"`
		}
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s: %v", jsonPath, err)
		}
		if out.Model != tt.model || out.Quantization != tt.quantization || out.Examples != 5 || out.Seed != 3 {
			t.Errorf("JSON header = %+v, want model %s, quantization %s, 5 examples, seed 3", out, tt.model, tt.quantization)
		}
		if out.Image == nil || out.Image.Examples != 5 {
			t.Errorf("JSON image_reconstruction = %+v, want 5 examples", out.Image)
		}
		if out.CaptionFromImage == nil || out.CaptionFromImage.Tokens == 0 || out.CaptionFromImage.Baseline == nil {
			t.Errorf("JSON caption_from_image = %+v, want scored tokens with a baseline", out.CaptionFromImage)
		}
		if out.Baseline == nil || out.Baseline.Captions != 48 {
			t.Errorf("JSON token_baseline = %+v, want the 48 training captions", out.Baseline)
		}
	}
}

func TestEvaluateCommandRejects(t *testing.T) {
	model := writeMicroModel(t, t.TempDir())
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"negative limit", []string{"--captions", fixtureTestCaptions, "--limit", "-1"}, "--limit -1"},
		{"missing captions", []string{"--captions", "none.jsonl"}, "--captions: read captions"},
		{"all patches hidden", []string{"--captions", fixtureTestCaptions, "--image-mask-ratio", "1"}, "hides 16 of 16 patches"},
		{"missing model", []string{"--captions", fixtureTestCaptions, "--model", "none.safetensors"}, "file not found"},
	}
	for _, tt := range tests {
		args := append([]string{"evaluate"}, tt.args...)
		if !strings.Contains(strings.Join(tt.args, " "), "--model") {
			args = append(args, "--model", model)
		}
		_, _, err := execute(t, args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestEvaluateCommandGrid(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	gridPath := filepath.Join(dir, "grid.png")
	if _, stderr, err := execute(t, "evaluate", "--model", model, "--captions", fixtureTestCaptions,
		"--limit", "6", "--grid", gridPath, "--grid-examples", "3"); err != nil {
		t.Fatalf("m3ae-edge evaluate --grid: %v\nstderr:\n%s", err, stderr)
	}
	file, err := os.Open(gridPath)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	grid, err := png.Decode(file)
	if err != nil {
		t.Fatalf("%s: %v", gridPath, err)
	}

	// Every row is one example's grid, and the emoji captions are short
	// enough that all rows have the same height.
	if got := grid.Bounds().Dy(); got%3 != 0 || got == 0 {
		t.Errorf("grid height = %d, want three rows of equal height", got)
	}

	if _, _, err := execute(t, "evaluate", "--model", model, "--captions", fixtureTestCaptions, "--grid", gridPath, "--grid-examples", "0"); err == nil || !strings.Contains(err.Error(), "--grid-examples 0") {
		t.Errorf("evaluate --grid-examples 0: error %v, want one naming --grid-examples 0", err)
	}
}
