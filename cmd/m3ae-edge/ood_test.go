package main

import (
	"encoding/json"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/evaluate"
)

// oodOutput is the part of ood's --json output that the tests check.
type oodOutput struct {
	Classes     []string `json:"classes"`
	FitExamples int      `json:"fit_examples"`
	Input       string   `json:"input"`
	Pooling     string   `json:"pooling"`
	Scores      []struct {
		Name         string  `json:"name"`
		Score        float64 `json:"score"`
		NearestClass string  `json:"nearest_class"`
	} `json:"scores"`
	InDist *struct {
		Examples  int     `json:"examples"`
		MeanScore float64 `json:"mean_score"`
	} `json:"in_dist"`
	OutDist *struct {
		Examples  int     `json:"examples"`
		MeanScore float64 `json:"mean_score"`
	} `json:"out_dist"`
	AUROC      *float64 `json:"auroc"`
	FPRAt95TPR *struct {
		TPR float64 `json:"tpr"`
		FPR float64 `json:"fpr"`
	} `json:"fpr_at_95_tpr"`
}

func runOODCommand(t *testing.T, jsonPath string, args ...string) (string, oodOutput) {
	t.Helper()
	args = append([]string{"ood"}, append(args, "--json", jsonPath)...)
	stdout, stderr, err := execute(t, args...)
	if err != nil {
		t.Fatalf("m3ae-edge %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr)
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var out oodOutput
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: %v", jsonPath, err)
	}
	return stdout, out
}

func TestOODCommandScore(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	stdout, out := runOODCommand(t, filepath.Join(dir, "scores.json"),
		"--model", model, "--fit", fixtureTrainCaptions, "--score", fixtureTestCaptions)

	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 17 || !strings.HasPrefix(lines[0], "score") {
		t.Fatalf("stdout has %d lines, want a header and 16 scores:\n%s", len(lines), stdout)
	}
	if !strings.Contains(lines[1], fixtureTestCaptions+":1") {
		t.Errorf("first score line %q does not name %s:1", lines[1], fixtureTestCaptions)
	}
	if out.FitExamples != 48 || len(out.Classes) != 9 || out.Input != "image" || out.Pooling != "cls" {
		t.Errorf("JSON = %+v, want 48 fit examples in 9 classes, image input, cls pooling", out)
	}
	if len(out.Scores) != 16 {
		t.Fatalf("JSON has %d scores, want 16", len(out.Scores))
	}
	for _, s := range out.Scores {
		if !(s.Score > 0) {
			t.Errorf("%s: score %g, want a positive distance", s.Name, s.Score)
		}
		if !slices.Contains(out.Classes, s.NearestClass) {
			t.Errorf("%s: nearest class %q is not a fitted class", s.Name, s.NearestClass)
		}
	}
}

// writeInvertedImages writes the colour-inverted image of every example
// of a captions file into dir, a set out of the emoji distribution.
func writeInvertedImages(t *testing.T, captions, dir string) {
	t.Helper()
	examples, err := evaluate.ReadCaptions(captions, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, example := range examples {
		img, err := example.LoadImage()
		if err != nil {
			t.Fatal(err)
		}
		bounds := img.Bounds()
		inverted := image.NewRGBA(bounds)
		for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
			for x := bounds.Min.X; x < bounds.Max.X; x++ {
				r, g, b, _ := img.At(x, y).RGBA()
				offset := inverted.PixOffset(x, y)
				copy(inverted.Pix[offset:], []uint8{255 - uint8(r>>8), 255 - uint8(g>>8), 255 - uint8(b>>8), 255})
			}
		}
		f, err := os.Create(filepath.Join(dir, filepath.Base(example.ImagePath)))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, inverted); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOODCommandEval(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	base := []string{"--model", model, "--fit", fixtureTrainCaptions, "--eval", "--in-dist", fixtureTestCaptions}

	// A set against itself gives identical scores, so AUROC is exactly
	// 0.5 and the threshold at 95 % TPR accepts as many of both.
	stdout, self := runOODCommand(t, filepath.Join(dir, "self.json"), append(base, "--out-dist", fixtureTestCaptions)...)
	for _, want := range []string{"AUROC", "50.00 %", "FPR at 95 % TPR"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if self.AUROC == nil || *self.AUROC != 0.5 {
		t.Errorf("AUROC of the test set against itself = %v, want exactly 0.5", self.AUROC)
	}
	if self.FPRAt95TPR == nil || self.FPRAt95TPR.FPR != self.FPRAt95TPR.TPR {
		t.Errorf("FPR at 95 %% TPR of a set against itself = %+v, want FPR equal to TPR", self.FPRAt95TPR)
	}

	// Colour-inverted emoji, black around the glyph where the fit set is
	// white, lie far from the fit embeddings.
	inverted := filepath.Join(dir, "inverted")
	if err := os.Mkdir(inverted, 0o755); err != nil {
		t.Fatal(err)
	}
	writeInvertedImages(t, fixtureTestCaptions, inverted)
	_, shifted := runOODCommand(t, filepath.Join(dir, "inverted.json"), append(base, "--out-dist", inverted)...)
	if shifted.OutDist == nil || shifted.OutDist.Examples != 16 {
		t.Fatalf("out_dist = %+v, want 16 inverted images", shifted.OutDist)
	}
	if shifted.AUROC == nil || *shifted.AUROC <= 0.75 {
		t.Errorf("AUROC of the test set against its inverted images = %v, want above 0.75", shifted.AUROC)
	}
	if shifted.OutDist.MeanScore <= shifted.InDist.MeanScore {
		t.Errorf("mean score of inverted images %g is not above the test set's %g", shifted.OutDist.MeanScore, shifted.InDist.MeanScore)
	}
}

func TestOODCommandScoresOneImage(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	imagePath := "../../testdata/images/emoji64.png"
	stdout, out := runOODCommand(t, filepath.Join(dir, "one.json"), "--model", model, "--fit", fixtureTrainCaptions, "--score", imagePath)
	if len(out.Scores) != 1 || out.Scores[0].Name != imagePath {
		t.Errorf("JSON scores = %+v, want one for %s", out.Scores, imagePath)
	}
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 2 {
		t.Errorf("stdout has %d lines, want a header and one score:\n%s", len(lines), stdout)
	}
}

func TestOODCommandRejects(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	base := []string{"ood", "--model", model, "--fit", fixtureTrainCaptions}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no mode", nil, "nothing to score"},
		{"both modes", []string{"--score", fixtureTestCaptions, "--eval", "--in-dist", fixtureTestCaptions, "--out-dist", fixtureTestCaptions}, "--score and --eval are both set"},
		{"eval without out-dist", []string{"--eval", "--in-dist", fixtureTestCaptions}, "--eval needs --in-dist and --out-dist"},
		{"in-dist without eval", []string{"--in-dist", fixtureTestCaptions}, "need --eval"},
		{"limit", []string{"--score", fixtureTestCaptions, "--limit", "-3"}, "--limit -3"},
		{"ridge", []string{"--score", fixtureTestCaptions, "--ridge", "-1"}, "--ridge -1"},
		{"missing score", []string{"--score", "none.jsonl"}, "--score none.jsonl"},
		{"no labels", []string{"--score", fixtureTestCaptions, "--label-field", "colour"}, `--fit ../../testdata/emoji-mini/train.jsonl has no labelled examples`},
		{"input", []string{"--score", fixtureTestCaptions, "--input", "pixels"}, `--input "pixels"`},
	}
	for _, tt := range tests {
		_, _, err := execute(t, append(append([]string{}, base...), tt.args...)...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}
