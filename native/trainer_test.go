package native

import (
	"errors"
	"math"
	"testing"

	"github.com/gomlx/compute"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
)

// testBackend returns the backend of the tests, failing the test when none
// can be created.
func testBackend(t testing.TB) compute.Backend {
	t.Helper()
	backend, err := NewBackend()
	if err != nil {
		t.Fatalf("NewBackend() error: %v", err)
	}
	return backend
}

// microConfig returns the micro preset.
func microConfig(t testing.TB) core.Config {
	t.Helper()
	cfg, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// initModel returns core's initialization of cfg from seed.
func initModel(t testing.TB, cfg core.Config, seed uint64) *core.ModelFile {
	t.Helper()
	mf, err := core.InitModelFile(cfg, bertvocab.Tokens(), core.CC12MNorm, seed)
	if err != nil {
		t.Fatalf("core.InitModelFile: %v", err)
	}
	return mf
}

// syntheticExamples returns n learnable examples of numClasses classes:
// class c is a fixed colour pattern (two colours in horizontal stripes whose
// width depends on c) with a fixed caption of four ids followed by pads.
// Every third example drops its caption (image-only) when mixed is set, and
// every fifth its image (text-only).
func syntheticExamples(cfg core.Config, n, numClasses int, mixed bool) []Example {
	examples := make([]Example, n)
	for i := range examples {
		c := i % numClasses
		image := make([]float32, cfg.ImageSize*cfg.ImageSize*core.Channels)
		stripe := 1 + c
		for y := range cfg.ImageSize {
			for x := range cfg.ImageSize {
				for ch := range core.Channels {
					v := float32(-1)
					if (y/stripe)%2 == 0 {
						v = float32(((c+ch)%3)-1) * 1.5
					}
					image[(y*cfg.ImageSize+x)*core.Channels+ch] = v
				}
			}
		}
		text := make([]int32, cfg.TextLength)
		for j := range 4 {
			text[j] = int32(2000 + 10*c + j)
		}
		examples[i] = Example{Image: image, Text: text}
		if mixed && i%3 == 2 {
			examples[i].Text = nil
		}
		if mixed && i%5 == 4 {
			examples[i].Image = nil
			examples[i].Text = text
		}
	}
	return examples
}

// The micro preset on four fixed patterns with fixed captions: after 24
// steps at a high learning rate both losses must fall well below their
// start. Averaged over the first and last 3 steps, the image loss fell from
// 1.75 to 0.60 and the text loss from 10.26 to 8.37 with GOEXPERIMENT=simd
// and the go:ops_sequential backend.
func TestTrainerLossFalls(t *testing.T) {
	cfg := microConfig(t)
	const batchSize, steps = 8, 24
	tc := DefaultTrainConfig(batchSize)
	tc.PeakLearningRate = 3e-3
	tc.WarmupSteps = 4
	tc.TotalSteps = steps
	var seen []StepMetrics
	tc.OnStep = func(m StepMetrics) { seen = append(seen, m) }
	trainer, err := NewTrainer(testBackend(t), initModel(t, cfg, 1), tc)
	if err != nil {
		t.Fatal(err)
	}

	data := syntheticExamples(cfg, 40, 4, false)
	for step := range steps {
		start := (step * batchSize) % len(data)
		if _, _, err := trainer.Step(data[start : start+batchSize]); err != nil {
			t.Fatalf("Step(%d): %v", step+1, err)
		}
	}

	if len(seen) != steps {
		t.Fatalf("OnStep called %d times, want %d", len(seen), steps)
	}
	mean := func(ms []StepMetrics, loss func(StepMetrics) float32) float64 {
		var sum float64
		for _, m := range ms {
			sum += float64(loss(m))
		}
		return sum / float64(len(ms))
	}
	image := func(m StepMetrics) float32 { return m.ImageLoss }
	text := func(m StepMetrics) float32 { return m.TextLoss }
	first, last := seen[:3], seen[steps-3:]
	t.Logf("image loss %.4f -> %.4f, text loss %.4f -> %.4f", mean(first, image), mean(last, image), mean(first, text), mean(last, text))
	if got, start := mean(last, image), mean(first, image); got > 0.6*start {
		t.Errorf("image loss over the last 3 steps = %.4f, want below 0.6 x %.4f (first 3 steps)", got, start)
	}
	if got, start := mean(last, text), mean(first, text); got > 0.95*start {
		t.Errorf("text loss over the last 3 steps = %.4f, want below 0.95 x %.4f (first 3 steps)", got, start)
	}
	if got := trainer.GlobalStep(); got != steps {
		t.Errorf("GlobalStep() = %d, want %d", got, steps)
	}
}

func TestTrainerMixedBatch(t *testing.T) {
	cfg := microConfig(t)
	trainer, err := NewTrainer(testBackend(t), initModel(t, cfg, 2), DefaultTrainConfig(10))
	if err != nil {
		t.Fatal(err)
	}
	batch := syntheticExamples(cfg, 10, 3, true)
	// Text of pads only is image-only too.
	batch[0].Text = make([]int32, cfg.TextLength)
	m, err := trainer.StepWithMetrics(batch)
	if err != nil {
		t.Fatalf("StepWithMetrics(mixed batch): %v", err)
	}
	// Examples 0, 2, 5 and 8 are image-only, 4 and 9 text-only.
	if m.Paired != 4 || m.ImageOnly != 4 || m.TextOnly != 2 || m.Examples != 10 {
		t.Errorf("StepWithMetrics(mixed batch) counts paired %d, image-only %d, text-only %d of %d; want 4, 4, 2 of 10",
			m.Paired, m.ImageOnly, m.TextOnly, m.Examples)
	}
	if !(m.ImageLoss > 0) || !(m.TextLoss > 0) || !(m.GradNorm > 0) {
		t.Errorf("StepWithMetrics(mixed batch) = image %g, text %g, grad norm %g; want all > 0", m.ImageLoss, m.TextLoss, m.GradNorm)
	}
}

func TestTrainerRejectsBadInput(t *testing.T) {
	cfg := microConfig(t)
	trainer, err := NewTrainer(testBackend(t), initModel(t, cfg, 2), DefaultTrainConfig(2))
	if err != nil {
		t.Fatal(err)
	}
	good := syntheticExamples(cfg, 1, 1, false)[0]
	badID := good
	badID.Text = append([]int32(nil), good.Text...)
	badID.Text[0] = int32(cfg.VocabSize)
	tests := []struct {
		name  string
		batch []Example
	}{
		{"empty batch", nil},
		{"short image", []Example{{Image: make([]float32, 5), Text: good.Text}}},
		{"long text", []Example{{Image: good.Image, Text: make([]int32, cfg.TextLength+1)}}},
		{"id out of vocabulary", []Example{badID}},
		{"no image, pad text", []Example{{Text: make([]int32, cfg.TextLength)}}},
		{"nothing", []Example{{}}},
		{"NaN pixel", []Example{{Image: append([]float32{float32(math.NaN())}, good.Image[1:]...)}}},
	}
	for _, tt := range tests {
		if _, _, err := trainer.Step(tt.batch); !errors.Is(err, core.ErrInvalidInput) {
			t.Errorf("Step(%s) error = %v, want ErrInvalidInput", tt.name, err)
		}
	}
	if got := trainer.GlobalStep(); got != 0 {
		t.Errorf("GlobalStep() after rejected batches = %d, want 0", got)
	}
}

func TestTrainConfigValidate(t *testing.T) {
	cfg := microConfig(t)
	tests := []struct {
		name   string
		change func(*TrainConfig)
	}{
		{"zero learning rate", func(tc *TrainConfig) { tc.PeakLearningRate = 0 }},
		{"NaN learning rate", func(tc *TrainConfig) { tc.PeakLearningRate = math.NaN() }},
		{"beta1 of 1", func(tc *TrainConfig) { tc.Beta1 = 1 }},
		{"negative weight decay", func(tc *TrainConfig) { tc.WeightDecay = -0.1 }},
		{"image ratio keeps nothing", func(tc *TrainConfig) { tc.ImageMaskRatio = 0.99 }},
		{"text ratio of 1", func(tc *TrainConfig) { tc.TextMaskRatio = 1 }},
		{"negative warmup", func(tc *TrainConfig) { tc.WarmupSteps = -1 }},
	}
	if err := DefaultTrainConfig(8).Validate(cfg); err != nil {
		t.Fatalf("DefaultTrainConfig(8).Validate() = %v, want nil", err)
	}
	for _, tt := range tests {
		tc := DefaultTrainConfig(8)
		tt.change(&tc)
		if err := tc.Validate(cfg); !errors.Is(err, core.ErrInvalidInput) {
			t.Errorf("Validate(%s) = %v, want ErrInvalidInput", tt.name, err)
		}
	}
}
