package main

import (
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// probeOutput is the part of probe's --json output that the tests check.
type probeOutput struct {
	Model      string   `json:"model"`
	RandomInit bool     `json:"random_init"`
	InitSeed   *uint64  `json:"init_seed"`
	LabelField string   `json:"label_field"`
	Classes    []string `json:"classes"`
	Train      struct {
		Examples int     `json:"examples"`
		Accuracy float64 `json:"accuracy"`
	} `json:"train"`
	Test struct {
		Examples int `json:"examples"`
	} `json:"test"`
	Majority struct {
		Class string `json:"class"`
	} `json:"majority_baseline"`
}

func readProbeOutput(t *testing.T, path string) probeOutput {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out probeOutput
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

func TestProbeCommandEmojiGroups(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	for _, randomInit := range []bool{false, true} {
		jsonPath := filepath.Join(dir, "probe.json")
		args := []string{"probe", "--model", model, "--train", fixtureTrainCaptions, "--test", fixtureTestCaptions, "--json", jsonPath}
		if randomInit {
			args = append(args, "--random-init", "--init-seed", "4")
		}
		stdout, stderr, err := execute(t, args...)
		if err != nil {
			t.Fatalf("m3ae-edge %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr)
		}
		for _, want := range []string{`from field "group"`, "probe, test", "majority class", "test class"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("m3ae-edge probe output lacks %q:\n%s", want, stdout)
			}
		}

		out := readProbeOutput(t, jsonPath)
		if out.Train.Examples != 48 || out.Test.Examples != 16 || out.LabelField != "group" {
			t.Errorf("JSON = %+v, want 48 train and 16 test examples labelled by group", out)
		}
		if len(out.Classes) < 2 || !strings.Contains(strings.Join(out.Classes, ","), "flags") {
			t.Errorf("JSON classes = %q, want emojibase groups such as flags", out.Classes)
		}
		if out.RandomInit != randomInit || (out.InitSeed != nil) != randomInit {
			t.Errorf("JSON random_init = %v, init_seed %v, want random init %v", out.RandomInit, out.InitSeed, randomInit)
		}
		if randomInit && *out.InitSeed != 4 {
			t.Errorf("JSON init_seed = %d, want 4", *out.InitSeed)
		}
	}
}

// writeClassFolder writes n small images of one colour into root/class.
func writeClassFolder(t *testing.T, root, class string, c color.RGBA, n int) {
	t.Helper()
	dir := filepath.Join(root, class)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, 8, 8))
		for p := 0; p < len(img.Pix); p += 4 {
			shade := uint8(i * 9)
			img.Pix[p], img.Pix[p+1], img.Pix[p+2], img.Pix[p+3] = c.R^shade, c.G^shade, c.B^shade, 255
		}
		f, err := os.Create(filepath.Join(dir, string(rune('a'+i))+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

func TestProbeCommandFolders(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	train, test := filepath.Join(dir, "train"), filepath.Join(dir, "test")
	for _, root := range []string{train, test} {
		writeClassFolder(t, root, "red", color.RGBA{R: 240}, 6)
		writeClassFolder(t, root, "blue", color.RGBA{B: 240}, 6)
	}
	jsonPath := filepath.Join(dir, "probe.json")
	stdout, stderr, err := execute(t, "probe", "--model", model, "--train", train, "--test", test, "--json", jsonPath)
	if err != nil {
		t.Fatalf("m3ae-edge probe: %v\nstderr:\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "from the class subfolders: blue, red") {
		t.Errorf("m3ae-edge probe output does not name the folder classes:\n%s", stdout)
	}
	out := readProbeOutput(t, jsonPath)
	if out.Train.Examples != 12 || out.Test.Examples != 12 || out.LabelField != "" {
		t.Errorf("JSON = %+v, want 12 examples per split and no label field", out)
	}
	if out.Train.Accuracy != 1 {
		t.Errorf("train accuracy = %v, want 1 on 12 images of two colours in 32 dimensions", out.Train.Accuracy)
	}
}

func TestProbeCommandRejects(t *testing.T) {
	model := writeMicroModel(t, t.TempDir())
	base := []string{"probe", "--model", model, "--train", fixtureTrainCaptions, "--test", fixtureTestCaptions}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no labels", []string{"--label-field", "colour"}, `has 0 labelled examples: give files whose "colour" field`},
		{"pooling", []string{"--pooling", "max"}, `--pooling "max"`},
		{"limit", []string{"--limit-test", "-2"}, "--limit-test -2"},
		{"missing data", []string{"--train", "none.jsonl"}, "--train none.jsonl"},
		{"L2", []string{"--l2", "-1"}, "--l2 -1: use a finite value of 0 or more"},
	}
	for _, tt := range tests {
		_, _, err := execute(t, append(append([]string{}, base...), tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// TestProbeChecksClassifierFlagsFirst gives bad classifier flags with a
// model file that does not exist: the flag must be named before the model
// is read, let alone every image embedded.
func TestProbeChecksClassifierFlagsFirst(t *testing.T) {
	absent := filepath.Join(t.TempDir(), "absent.safetensors")
	base := []string{"probe", "--model", absent, "--train", fixtureTrainCaptions, "--test", fixtureTestCaptions}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--l2", "-1"}, "--l2 -1: use a finite value of 0 or more"},
		{[]string{"--l2", "NaN"}, "--l2 NaN"},
		{[]string{"--l2", "+Inf"}, "--l2 +Inf"},
		{[]string{"--max-iterations", "0"}, "--max-iterations 0: use 1 or more"},
		{[]string{"--tolerance", "-1e-3"}, "--tolerance -0.001: use 0 or more"},
	}
	for _, tt := range tests {
		_, stderr, err := execute(t, append(append([]string{}, base...), tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("probe %q: error = %v, want one containing %q", tt.args, err, tt.want)
		}
		if strings.Contains(stderr, "embedding") {
			t.Errorf("probe %q started embedding before it rejected the flag:\n%s", tt.args, stderr)
		}
	}
}
