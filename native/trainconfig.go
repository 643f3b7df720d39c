package native

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// BaseLearningRate is M3AE's peak learning rate per 256 examples: the
// default peak is BaseLearningRate * batchSize / 256.
const BaseLearningRate = 1.5e-4

// ErrNonFiniteLoss marks a training step whose loss came out NaN or
// infinite. The step's update has already been applied.
var ErrNonFiniteLoss = errors.New("non-finite loss")

// TrainConfig holds the training settings, apart from the architecture in
// core.Config.
type TrainConfig struct {
	// PeakLearningRate is the learning rate at the end of the warmup.
	PeakLearningRate float64 `json:"peak_learning_rate"`
	// WarmupSteps is the number of updates of the linear warmup.
	WarmupSteps int `json:"warmup_steps"`
	// TotalSteps is the update at which the cosine decay reaches 0; with 0
	// (or not above WarmupSteps) the rate stays at the peak after warmup.
	TotalSteps int `json:"total_steps"`

	// Beta1, Beta2 and Epsilon are AdamW's moment decay rates and the term
	// added to the root of the second moment.
	Beta1   float64 `json:"beta1"`
	Beta2   float64 `json:"beta2"`
	Epsilon float64 `json:"epsilon"`
	// WeightDecay is AdamW's decoupled weight decay, applied to dense
	// kernels and LayerNorm scales only.
	WeightDecay float64 `json:"weight_decay"`
	// MaxGradNorm clips the global gradient norm to this value; 0 disables
	// clipping.
	MaxGradNorm float64 `json:"max_grad_norm"`

	// ImageMaskRatio and TextMaskRatio are the fractions of patches and text
	// positions hidden from the encoder.
	ImageMaskRatio float64 `json:"image_mask_ratio"`
	TextMaskRatio  float64 `json:"text_mask_ratio"`
	// ImageLossWeight and TextLossWeight weigh the two losses in the total
	// that is minimized.
	ImageLossWeight float64 `json:"image_loss_weight"`
	TextLossWeight  float64 `json:"text_loss_weight"`

	// Seed seeds the generator that draws the masks.
	Seed uint64 `json:"seed"`

	// LogEvery logs one line every LogEvery steps at Info level; 0 logs
	// nothing per step.
	LogEvery int `json:"log_every"`
	// Logger receives the trainer's log lines; nil discards them.
	Logger *slog.Logger `json:"-"`
	// OnStep, when set, is called after every step with its metrics.
	OnStep func(StepMetrics) `json:"-"`
}

// DefaultTrainConfig returns M3AE's training settings for batches of
// batchSize examples: peak learning rate 1.5e-4*batchSize/256, AdamW betas
// 0.9 and 0.95, epsilon 1e-8, weight decay 0.05, mask ratios 0.75 and loss
// weights 1.0 (image) and 0.5 (text). Warmup, total steps, clipping and
// logging are off.
func DefaultTrainConfig(batchSize int) TrainConfig {
	return TrainConfig{
		PeakLearningRate: BaseLearningRate * float64(batchSize) / 256,
		Beta1:            0.9,
		Beta2:            0.95,
		Epsilon:          1e-8,
		WeightDecay:      0.05,
		ImageMaskRatio:   0.75,
		TextMaskRatio:    0.75,
		ImageLossWeight:  1.0,
		TextLossWeight:   0.5,
	}
}

// Validate reports the first setting that cannot train cfg.
func (tc TrainConfig) Validate(cfg core.Config) error {
	switch {
	case !(tc.PeakLearningRate > 0) || math.IsInf(tc.PeakLearningRate, 0):
		return fmt.Errorf("%w: peak learning rate %g, want a positive number", core.ErrInvalidInput, tc.PeakLearningRate)
	case tc.WarmupSteps < 0 || tc.TotalSteps < 0 || tc.LogEvery < 0:
		return fmt.Errorf("%w: warmup %d, total %d and log interval %d steps must not be negative",
			core.ErrInvalidInput, tc.WarmupSteps, tc.TotalSteps, tc.LogEvery)
	case !(tc.Beta1 >= 0 && tc.Beta1 < 1) || !(tc.Beta2 >= 0 && tc.Beta2 < 1):
		return fmt.Errorf("%w: AdamW betas %g and %g, want each in [0, 1)", core.ErrInvalidInput, tc.Beta1, tc.Beta2)
	case !(tc.Epsilon > 0) || !(tc.WeightDecay >= 0) || !(tc.MaxGradNorm >= 0):
		return fmt.Errorf("%w: epsilon %g, weight decay %g and max gradient norm %g, want epsilon > 0 and the others >= 0",
			core.ErrInvalidInput, tc.Epsilon, tc.WeightDecay, tc.MaxGradNorm)
	case !(tc.ImageLossWeight >= 0) || !(tc.TextLossWeight >= 0):
		return fmt.Errorf("%w: loss weights %g and %g, want >= 0", core.ErrInvalidInput, tc.ImageLossWeight, tc.TextLossWeight)
	}
	for _, r := range []struct {
		name   string
		ratio  float64
		length int
	}{{"image", tc.ImageMaskRatio, cfg.NumPatches()}, {"text", tc.TextMaskRatio, cfg.TextLength}} {
		if !(r.ratio >= 0 && r.ratio < 1) || keepCount(r.length, r.ratio) < 1 {
			return fmt.Errorf("%w: %s mask ratio %g keeps none of %d positions, want a ratio in [0, 1) that keeps at least one",
				core.ErrInvalidInput, r.name, r.ratio, r.length)
		}
	}
	return nil
}

// StepMetrics describes one finished training step.
type StepMetrics struct {
	// Step is the number of updates applied so far, this one included.
	Step int64
	// ImageLoss, TextLoss and Loss are the step's losses before the update;
	// Loss is the weighted total that was minimized.
	ImageLoss, TextLoss, Loss float32
	// GradNorm is the global gradient norm before clipping.
	GradNorm float32
	// LearningRate is the rate this update used.
	LearningRate float64
	// Examples counts the batch's examples; Paired, ImageOnly and TextOnly
	// count them by kind.
	Examples, Paired, ImageOnly, TextOnly int
	// Duration is the wall time of the step, packing included.
	Duration time.Duration
}
