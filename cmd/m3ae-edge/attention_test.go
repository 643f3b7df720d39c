package main

import (
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fixtureEmoji is a 64x64 emoji written by `go run testdata/images/gen.go`.
const fixtureEmoji = "../../testdata/images/emoji64.png"

// readAttentionJSON decodes the --json file of "m3ae-edge attention".
func readAttentionJSON(t *testing.T, path string) attentionJSON {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out attentionJSON
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, data)
	}
	return out
}

// Heights of the attention PNG's parts for a 16-pixel micro model image
// at the default --scale 6, from the layout constants. The title is one
// line. The image part has the labels, the 96-pixel panels, a margin, the
// legend and its labels. The text part has a margin, the tokens' heading
// and one row of two-line boxes.
const (
	attentionTitleHeight = attentionMargin + 15
	attentionImageHeight = 15 + 16*defaultAttentionScale + attentionMargin + attentionLegendHeight + 15
	attentionTextHeight  = attentionMargin + 15 + 2*15 + 2*attentionBoxPadding
	// The micro panels, 2*96 + 8 pixels, are narrower than 60 characters.
	attentionMicroWidth = 2*attentionMargin + attentionMinWidth
)

func TestAttentionCommandImageAndText(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	out, jsonPath := filepath.Join(dir, "attn.png"), filepath.Join(dir, "attn.json")
	stdout, stderr, err := execute(t, "attention", "--model", model, "--image", fixtureEmoji,
		"--text", "grinning face", "--out", out, "--json", jsonPath)
	if err != nil {
		t.Fatalf("m3ae-edge attention: %v\nstderr:\n%s", err, stderr)
	}

	size := decodePNGSize(t, out)
	if size.X != attentionMicroWidth {
		t.Errorf("PNG width = %d, want %d", size.X, attentionMicroWidth)
	}
	if want := attentionTitleHeight + attentionImageHeight + attentionTextHeight + attentionMargin; size.Y != want {
		t.Errorf("PNG height = %d, want %d", size.Y, want)
	}
	for _, want := range []string{"CLS attention, rollout over all blocks", "image patches: ", "of 4x4",
		`caption tokens: `, `"grinning" `, `"face" `, "CLS itself: "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "wrote attention map") || !strings.Contains(stderr, "wrote attention weights") {
		t.Errorf("log lacks the written files:\n%s", stderr)
	}

	got := readAttentionJSON(t, jsonPath)
	// micro: 2 blocks of 2 heads, so the rollout and 2 x (mean + 2 heads).
	if len(got.Rows) != 7 {
		t.Fatalf("JSON has %d rows, want 7", len(got.Rows))
	}
	if got.Depth != 2 || got.NumHeads != 2 || got.GridSize != 4 {
		t.Errorf("depth %d, heads %d, grid %d, want 2, 2 and 4", got.Depth, got.NumHeads, got.GridSize)
	}
	if !slices.Equal(got.Tokens, []string{"grinning", "face"}) {
		t.Errorf("tokens = %q, want grinning and face", got.Tokens)
	}
	if got.Drawn != 0 || got.Rows[0].Block != 0 || got.Rows[0].Head != 0 {
		t.Errorf("drawn row %d is %+v, want the rollout first", got.Drawn, got.Rows[got.Drawn])
	}
	for i, row := range got.Rows {
		if len(row.Patches) != 16 || len(row.Text) != 2 {
			t.Errorf("row %d has %d patches and %d text weights, want 16 and 2", i, len(row.Patches), len(row.Text))
		}
		total := float64(row.CLS) + sum32(row.Patches) + sum32(row.Text)
		if math.Abs(total-1) > 1e-5 {
			t.Errorf("row %d (block %d, head %d) sums to %v, want 1", i, row.Block, row.Head, total)
		}
	}
	if row := got.Rows[3]; row.Block != 1 || row.Head != 2 {
		t.Errorf("row 3 is block %d head %d, want block 1 head 2", row.Block, row.Head)
	}
}

func TestAttentionCommandLayerAndHead(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	out, jsonPath := filepath.Join(dir, "attn.png"), filepath.Join(dir, "attn.json")
	stdout, stderr, err := execute(t, "attention", "--model", model, "--image", fixtureEmoji,
		"--text", "grinning face", "--layer", "2", "--head", "1", "--scale", "2", "--out", out, "--json", jsonPath)
	if err != nil {
		t.Fatalf("m3ae-edge attention: %v\nstderr:\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "CLS attention, block 2, head 1") {
		t.Errorf("stdout does not name block 2, head 1:\n%s", stdout)
	}
	got := readAttentionJSON(t, jsonPath)
	// Rows: rollout, block 1 mean, heads 1 and 2, block 2 mean, heads 1
	// and 2.
	if got.Drawn != 5 {
		t.Errorf("drawn = %d, want 5", got.Drawn)
	}
	if row := got.Rows[got.Drawn]; row.Block != 2 || row.Head != 1 {
		t.Errorf("drawn row is block %d head %d, want block 2 head 1", row.Block, row.Head)
	}
	// --scale 2 makes 32-pixel panels.
	if size := decodePNGSize(t, out); size.Y != attentionTitleHeight+attentionImageHeight-16*4+attentionTextHeight+attentionMargin {
		t.Errorf("PNG height at --scale 2 = %d", size.Y)
	}
}

func TestAttentionCommandOneModality(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	tests := []struct {
		name   string
		args   []string
		height int
		want   string
		absent string
	}{
		{"text only", []string{"--text", "red apple"}, attentionTitleHeight + attentionTextHeight + attentionMargin, `"apple"`, "image patches"},
		{"image only", []string{"--image", fixtureEmoji}, attentionTitleHeight + attentionImageHeight + attentionMargin, "image patches", "caption tokens"},
	}
	for _, tt := range tests {
		out, jsonPath := filepath.Join(dir, "attn.png"), filepath.Join(dir, "attn.json")
		args := append([]string{"attention", "--model", model, "--out", out, "--json", jsonPath}, tt.args...)
		stdout, stderr, err := execute(t, args...)
		if err != nil {
			t.Fatalf("%s: %v\nstderr:\n%s", tt.name, err, stderr)
		}
		if size := decodePNGSize(t, out); size.X != attentionMicroWidth || size.Y != tt.height {
			t.Errorf("%s: PNG is %v, want %dx%d", tt.name, size, attentionMicroWidth, tt.height)
		}
		if !strings.Contains(stdout, tt.want) || strings.Contains(stdout, tt.absent) {
			t.Errorf("%s: stdout should contain %q and not %q:\n%s", tt.name, tt.want, tt.absent, stdout)
		}
		for i, row := range readAttentionJSON(t, jsonPath).Rows {
			if total := float64(row.CLS) + sum32(row.Patches) + sum32(row.Text); math.Abs(total-1) > 1e-5 {
				t.Errorf("%s: row %d sums to %v, want 1", tt.name, i, total)
			}
		}
	}
}

// TestAttentionCommandDefaultModel runs the embedded default model, whose
// 64-pixel input at --scale 6 makes two 384-pixel panels.
func TestAttentionCommandDefaultModel(t *testing.T) {
	out := filepath.Join(t.TempDir(), "attn.png")
	stdout, stderr, err := execute(t, "attention", "--image", fixtureEmoji, "--text", "grinning face", "--out", out)
	if err != nil {
		t.Fatalf("m3ae-edge attention: %v\nstderr:\n%s", err, stderr)
	}
	if size := decodePNGSize(t, out); size.X != 2*attentionMargin+2*384+attentionMargin {
		t.Errorf("PNG width = %d, want %d", size.X, 2*attentionMargin+2*384+attentionMargin)
	}
	if !strings.Contains(stdout, "of 8x8") {
		t.Errorf("stdout does not name the 8x8 patch grid:\n%s", stdout)
	}
}

func TestAttentionCommandJSONToStdout(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)

	// "-" writes to the process's stdout, so the test points it at a file.
	processStdout, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = processStdout
	stdout, stderr, err := execute(t, "attention", "--model", model, "--image", fixtureEmoji,
		"--text", "grinning face", "--out", filepath.Join(dir, "attn.png"), "--json", "-")
	os.Stdout = saved
	processStdout.Close()
	if err != nil {
		t.Fatalf("m3ae-edge attention: %v\nstderr:\n%s", err, stderr)
	}
	written, err := os.ReadFile(processStdout.Name())
	if err != nil {
		t.Fatal(err)
	}
	var out attentionJSON
	if err := json.Unmarshal(written, &out); err != nil {
		t.Errorf("stdout is not one JSON value: %v", err)
	}

	// The JSON goes to the process's stdout, so the command's own stdout
	// must stay empty for the two not to mix.
	if stdout != "" {
		t.Errorf("summary written to stdout beside the JSON:\n%s", stdout)
	}
	if !strings.Contains(stderr, "CLS attention") {
		t.Errorf("stderr lacks the summary:\n%s", stderr)
	}
}

// The micro model resizes the shorter side to 16 pixels, so 1x300000 would
// become 16x4800000, over core.MaxImagePixels.
func TestAttentionCommandNamesTooTallImage(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	tall := filepath.Join(dir, "tall.png")
	f, err := os.Create(tall)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, image.NewGray(image.Rect(0, 0, 1, 300000))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, _, err = execute(t, "attention", "--model", model, "--image", tall, "--out", filepath.Join(dir, "attn.png"))
	if err == nil || !strings.HasPrefix(err.Error(), "--image "+tall+": ") {
		t.Errorf("error = %v, want one naming --image %s", err, tall)
	}
}

func TestAttentionCommandRejects(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	out := filepath.Join(dir, "attn.png")
	base := []string{"attention", "--model", model, "--out", out}
	withImage := func(extra ...string) []string {
		return append(slices.Concat(base, []string{"--image", fixtureEmoji}), extra...)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no input", slices.Clone(base), "no input: give --image FILE, --text CAPTION or both"},
		{"negative layer", withImage("--layer", "-1"), "--layer -1 is out of range"},
		{"layer too deep", withImage("--layer", "3"), "--layer 3 is out of range: the model has 2 encoder blocks, so use 1 to 2"},
		{"rollout and layer", withImage("--rollout", "--layer", "1"), "--rollout and --layer 1 are both set"},
		{"head without layer", withImage("--head", "2"), "--head 2 needs --layer N"},
		{"head out of range", withImage("--layer", "1", "--head", "3"), `--head "3": use a head from 1 to 2`},
		{"head not a number", withImage("--layer", "1", "--head", "first"), `--head "first"`},
		{"scale", withImage("--scale", "0"), "--scale 0 is out of range: use 1 to 32"},
		{"json is out", withImage("--json", out), "--json " + out + " is also --out"},
		{"both to stdout", []string{"attention", "--model", model, "--image", fixtureEmoji, "--out", "-", "--json", "-"}, "both write to stdout"},
		{"out is image", []string{"attention", "--model", model, "--image", fixtureEmoji, "--out", fixtureEmoji}, "is also --image, an input"},
		{"missing image", slices.Concat(base, []string{"--image", filepath.Join(dir, "none.png")}), "file not found"},
		{"no out", []string{"attention", "--model", model, "--text", "a cat"}, `"out" not set`},
	}
	for _, tt := range tests {
		_, _, err := execute(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestAttentionCompletion(t *testing.T) {
	for _, tt := range []struct {
		flag string
		want []string
	}{
		{"--image", []string{"png", "jpg", ":8"}},
		{"--out", []string{"png", ":8"}},
		{"--json", []string{"json", ":8"}},
		{"--model", []string{"safetensors", ":8"}},
	} {
		stdout, _, err := execute(t, "__complete", "attention", tt.flag, "")
		if err != nil {
			t.Fatalf("__complete attention %s: %v", tt.flag, err)
		}
		for _, want := range tt.want {
			if !strings.Contains(stdout, want) {
				t.Errorf("__complete attention %s = %q, want it to contain %q", tt.flag, stdout, want)
			}
		}
	}
}
