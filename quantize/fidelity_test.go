package quantize

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
)

// fixtureCaptions is the test split of the emoji fixture, 16 image-caption
// pairs.
const fixtureCaptions = "../testdata/emoji-mini/test.jsonl"

// Fidelity bounds of the int8 micro model on the fixture, with the
// InitModelFile weights of seed 1, which are random, not trained. Measured:
// cosine similarity mean 0.99994 to 0.99997 and worst 0.99988 for the three
// input kinds, PSNR difference 0.0003 dB, top-1 agreement 37 of 38 hidden
// tokens. The bounds leave a margin of about 5x on the cosine distances
// and allow two more disagreements.
const (
	fixtureMinCosineMean  = 0.9997
	fixtureMinCosineWorst = 0.999
	fixtureMaxPSNRDiffDB  = 0.01
	fixtureMinTop1        = 0.9
)

func microPipelines(t testing.TB) (float32Pipeline, int8Pipeline *core.Pipeline) {
	t.Helper()
	cfg, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	mf := initModelFile(t, cfg, bertvocab.Tokens(), 1)
	quantized, _, err := QuantizeModelFile(mf)
	if err != nil {
		t.Fatalf("QuantizeModelFile(micro): %v", err)
	}
	if float32Pipeline, err = core.NewPipeline(mf); err != nil {
		t.Fatal(err)
	}
	if int8Pipeline, err = core.NewPipeline(quantized); err != nil {
		t.Fatal(err)
	}
	return float32Pipeline, int8Pipeline
}

func TestMeasureFidelityOnFixture(t *testing.T) {
	examples, err := ReadExamples(fixtureCaptions, 0)
	if err != nil {
		t.Fatal(err)
	}
	float32Pipeline, int8Pipeline := microPipelines(t)
	r, err := MeasureFidelity(context.Background(), float32Pipeline, int8Pipeline, examples, DefaultFidelityOptions(), nil)
	if err != nil {
		t.Fatalf("MeasureFidelity(micro, fixture): %v", err)
	}
	if r.Examples != 16 {
		t.Errorf("MeasureFidelity(micro, fixture).Examples = %d, want 16", r.Examples)
	}

	kinds := []struct {
		name  string
		stats CosineStats
	}{
		{"image", r.ImageEmbedding},
		{"text", r.TextEmbedding},
		{"paired", r.PairedEmbedding},
	}
	for _, kind := range kinds {
		t.Logf("%s embedding cosine: mean %.6f, worst %.6f over %d", kind.name, kind.stats.Mean, kind.stats.Worst, kind.stats.Count)
		if kind.stats.Count != 16 {
			t.Errorf("%s embedding count = %d, want 16", kind.name, kind.stats.Count)
		}
		if !(kind.stats.Mean >= fixtureMinCosineMean) {
			t.Errorf("%s embedding cosine mean = %.6f, want at least %g", kind.name, kind.stats.Mean, fixtureMinCosineMean)
		}
		if !(kind.stats.Worst >= fixtureMinCosineWorst) {
			t.Errorf("%s embedding cosine worst = %.6f, want at least %g", kind.name, kind.stats.Worst, fixtureMinCosineWorst)
		}
	}

	psnr := r.Reconstruction
	t.Logf("PSNR: float32 %.3f dB, int8 %.3f dB, difference %.4f dB", psnr.Float32DB, psnr.Int8DB, psnr.DiffDB)
	if psnr.Count != 16 || !(psnr.DiffDB <= fixtureMaxPSNRDiffDB) {
		t.Errorf("PSNR difference = %.4f dB over %d examples, want at most %g over 16", psnr.DiffDB, psnr.Count, fixtureMaxPSNRDiffDB)
	}

	top1 := r.TokenTop1
	t.Logf("top-1 agreement: %d of %d", top1.Agree, top1.Total)
	if top1.Total == 0 || !(top1.Rate >= fixtureMinTop1) {
		t.Errorf("top-1 agreement = %d of %d, want at least %g", top1.Agree, top1.Total, fixtureMinTop1)
	}
}

// TestMeasureFidelityOfSameModel checks the measures themselves: a model
// compared with itself agrees everywhere.
func TestMeasureFidelityOfSameModel(t *testing.T) {
	examples, err := ReadExamples(fixtureCaptions, 4)
	if err != nil {
		t.Fatal(err)
	}
	examples = append(examples, Example{Name: "caption only", Caption: "red heart"})
	float32Pipeline, _ := microPipelines(t)
	r, err := MeasureFidelity(context.Background(), float32Pipeline, float32Pipeline, examples, DefaultFidelityOptions(), nil)
	if err != nil {
		t.Fatalf("MeasureFidelity(micro, micro): %v", err)
	}
	if r.ImageEmbedding.Count != 4 || r.TextEmbedding.Count != 5 || r.PairedEmbedding.Count != 4 {
		t.Errorf("embedding counts image, text, paired = %d, %d, %d, want 4, 5, 4",
			r.ImageEmbedding.Count, r.TextEmbedding.Count, r.PairedEmbedding.Count)
	}
	for _, s := range []CosineStats{r.ImageEmbedding, r.TextEmbedding, r.PairedEmbedding} {
		if s.Mean < 1-1e-12 || s.Worst < 1-1e-12 {
			t.Errorf("cosine of a model with itself = mean %v, worst %v, want 1", s.Mean, s.Worst)
		}
	}
	if r.Reconstruction.DiffDB != 0 || r.Reconstruction.Float32DB != r.Reconstruction.Int8DB {
		t.Errorf("PSNR of a model with itself = %+v, want equal values", r.Reconstruction)
	}
	if r.TokenTop1.Agree != r.TokenTop1.Total || r.TokenTop1.Rate != 1 {
		t.Errorf("top-1 agreement of a model with itself = %+v, want all", r.TokenTop1)
	}
}

func TestMeasureFidelityRejects(t *testing.T) {
	float32Pipeline, _ := microPipelines(t)
	other, err := core.NewPipeline(initModelFile(t, testConfig, testVocab(testConfig.VocabSize), 1))
	if err != nil {
		t.Fatal(err)
	}
	examples := []Example{{Name: "caption", Caption: "cat"}}
	tests := []struct {
		name     string
		b        *core.Pipeline
		examples []Example
		want     string
	}{
		{"different configs", other, examples, "the models have different configs"},
		{"no examples", float32Pipeline, nil, "no examples"},
		{"empty example", float32Pipeline, []Example{{Name: "blank"}}, "example blank"},
	}
	for _, tt := range tests {
		_, err := MeasureFidelity(context.Background(), float32Pipeline, tt.b, tt.examples, DefaultFidelityOptions(), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("MeasureFidelity(%s) error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// TestMeasureFidelityStopsOnCancel cancels the context from the progress
// callback of the first example: the loop must stop there, as it must on
// Ctrl-C in the CLI, and report the cancellation.
func TestMeasureFidelityStopsOnCancel(t *testing.T) {
	examples, err := ReadExamples(fixtureCaptions, 0)
	if err != nil {
		t.Fatal(err)
	}
	float32Pipeline, int8Pipeline := microPipelines(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls []int
	progress := func(done, total int) {
		calls = append(calls, done)
		if total != len(examples) {
			t.Errorf("progress total = %d, want %d", total, len(examples))
		}
		cancel()
	}
	r, err := MeasureFidelity(ctx, float32Pipeline, int8Pipeline, examples, DefaultFidelityOptions(), progress)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("MeasureFidelity(cancelled after one example) = %v, %v, want context.Canceled", r, err)
	}
	if want := "stopped after 1 of 16 examples"; !strings.Contains(err.Error(), want) {
		t.Errorf("MeasureFidelity(cancelled) error = %q, want it to contain %q", err, want)
	}
	if len(calls) != 1 {
		t.Errorf("progress called for examples %v, want only the first", calls)
	}
}

func TestReadExamples(t *testing.T) {
	all, err := ReadExamples(fixtureCaptions, 0)
	if err != nil {
		t.Fatalf("ReadExamples(fixture): %v", err)
	}
	if len(all) != 16 || all[0].Image == nil || all[0].Caption != "flag: Benin" || all[0].Name != "images/google/1f1e7-1f1ef.png" {
		t.Errorf("ReadExamples(fixture) = %d examples, first %+v, want 16, the first with image images/google/1f1e7-1f1ef.png and caption \"flag: Benin\"",
			len(all), all[0])
	}
	limited, err := ReadExamples(fixtureCaptions, 3)
	if err != nil || len(limited) != 3 {
		t.Errorf("ReadExamples(fixture, limit 3) = %d examples, %v, want 3", len(limited), err)
	}
}

func TestReadExamplesRejects(t *testing.T) {
	png, err := os.ReadFile("../testdata/emoji-mini/images/google/1f31e.png")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"invalid JSON", `{"image": "a.png"` + "\n", "line 1: invalid JSON"},
		{"no image and no caption", "\n" + `{"tags": ["x"]}` + "\n", `line 2: no "image" and no "caption"`},
		{"missing image", `{"image": "absent.png", "caption": "x"}`, "line 1: open"},
		{"not an image", `{"image": "captions.jsonl", "caption": "x"}`, "line 1:"},
		{"blank file", "\n\n", "no examples"},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "sun.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "captions.jsonl")
		if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadExamples(path, 0)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadExamples(%s) error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}
