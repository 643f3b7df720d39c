package trainrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/native"
	"github.com/m3ae-edge/m3ae-edge/native/data"
)

// EvalMetrics are the results of one evaluation on the held-out split,
// every example under its fixed masks.
type EvalMetrics struct {
	// ImageMSE is the mean over examples with an image of the MSE over
	// their hidden patches, in normalized pixels, as the training image
	// loss. It is null in JSON when no example has an image.
	ImageMSE Float `json:"image_mse"`
	// TextLoss is the mean cross-entropy in nats and TokenAccuracy the
	// top-1 accuracy over every hidden non-pad token; null without any.
	TextLoss      Float `json:"text_loss"`
	TokenAccuracy Float `json:"token_accuracy"`
	// Examples counts the examples evaluated, ImageExamples those with an
	// image and ScoredTokens the hidden non-pad tokens.
	Examples      int `json:"examples"`
	ImageExamples int `json:"image_examples"`
	ScoredTokens  int `json:"scored_tokens"`
	// Seconds is the wall time of the evaluation.
	Seconds float64 `json:"seconds"`
}

// evalMaskSeed seeds the held-out masks: example i is masked by
// core.RandomMasks with seed evalMaskSeed+i. It is fixed, not the run's
// seed, so evaluations of every step and every run hide the same
// positions.
const evalMaskSeed = 0x6576616c00000000 // "eval"

// evalLogitBudget bounds the bytes of text logits ([chunk, Nt, V] float32)
// that one evaluation chunk returns.
const evalLogitBudget = 64 << 20

// evalSet is the held-out examples with their fixed masks.
type evalSet struct {
	examples []native.Example
	masks    []core.Masks
}

// loadEvalSet preprocesses up to maxExamples examples of src, in order and
// without augmentation, and draws their masks.
func loadEvalSet(ctx context.Context, src data.Source, batcherCfg data.BatcherConfig, maxExamples int,
	imageMaskRatio, textMaskRatio float64) (*evalSet, error) {
	mixer, err := data.NewMixer(data.MixerConfig{
		Sources: []data.WeightedSource{{Name: "eval", Source: src, Weight: 1}},
		Epochs:  1,
	})
	if err != nil {
		return nil, fmt.Errorf("held-out split: %w", err)
	}
	batcherCfg.Augment = false
	batcherCfg.BatchSize = min(maxExamples, 64)
	batcher, err := data.NewBatcher(ctx, mixer, mixer.PositionAt(0), batcherCfg)
	if err != nil {
		return nil, fmt.Errorf("held-out split: %w", err)
	}
	defer batcher.Close()

	set := &evalSet{}
	for len(set.examples) < maxExamples {
		batch, err := batcher.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("held-out split: %w", err)
		}
		examples := batchExamples(batch)
		set.examples = append(set.examples, examples[:min(len(examples), maxExamples-len(set.examples))]...)
	}
	if len(set.examples) == 0 {
		return nil, fmt.Errorf("held-out split has no usable examples")
	}
	for i := range set.examples {
		m, err := core.RandomMasks(batcherCfg.Model, imageMaskRatio, textMaskRatio, evalMaskSeed+uint64(i))
		if err != nil {
			return nil, err
		}
		set.masks = append(set.masks, m)
	}
	return set, nil
}

// batchExamples converts a data batch into trainer examples: an image for
// every kind but text-only, text for every kind but image-only.
func batchExamples(b *data.Batch) []native.Example {
	examples := make([]native.Example, b.Size)
	for i := range b.Size {
		kind := b.Kinds[i]
		if kind.HasImage() {
			examples[i].Image = b.ExamplePixels(i)
		}
		if kind.HasText() {
			examples[i].Text = slices.Clone(b.ExampleTokens(i))
		}
	}
	return examples
}

// reconItem is the data of one held-out example that recon-STEP.png draws.
type reconItem struct {
	// image is the input [ImageSize, ImageSize, C] in normalized pixels,
	// nil without an image.
	image []float32
	masks core.Masks
	// patches is the reconstruction [Np, p*p*C]: the input where visible,
	// the prediction where hidden.
	patches []float32
	tokens  []int32
	// predicted is the top-1 token id at each hidden text position and -1
	// elsewhere.
	predicted []int32
}

// evaluate runs the masked forward pass of every held-out example on m and
// returns the metrics and the first numRecon examples for drawing.
func (e *evalSet) evaluate(m *native.Model, cfg core.Config, numRecon int) (EvalMetrics, []reconItem, error) {
	start := time.Now()
	chunk := max(1, min(64, evalLogitBudget/(4*cfg.TextLength*cfg.VocabSize)))
	var (
		metrics             EvalMetrics
		mseSum, textLossSum float64
		correct             int
		items               []reconItem
	)
	for first := 0; first < len(e.examples); first += chunk {
		last := min(first+chunk, len(e.examples))
		results, err := m.Reconstruct(e.examples[first:last], e.masks[first:last])
		if err != nil {
			return EvalMetrics{}, nil, fmt.Errorf("evaluate: %w", err)
		}
		for j, r := range results {
			ex := e.examples[first+j]
			item := reconItem{image: ex.Image, masks: r.Masks, patches: r.Patches, tokens: ex.Text}
			if ex.Image != nil {
				mseSum += hiddenPatchMSE(cfg, ex.Image, r)
				metrics.ImageExamples++
			}
			if ex.Text != nil {
				item.predicted = make([]int32, cfg.TextLength)
				for pos := range item.predicted {
					item.predicted[pos] = -1
					if !r.Masks.Text[pos] || ex.Text[pos] == core.PadID {
						continue
					}
					logits := r.TokenLogits[pos*cfg.VocabSize : (pos+1)*cfg.VocabSize]
					top, loss := scoreToken(logits, ex.Text[pos])
					item.predicted[pos] = top
					textLossSum += loss
					metrics.ScoredTokens++
					if top == ex.Text[pos] {
						correct++
					}
				}
			}
			if len(items) < numRecon {
				items = append(items, item)
			}
		}
	}
	metrics.Examples = len(e.examples)
	metrics.ImageMSE = Float(mseSum / float64(metrics.ImageExamples)) // NaN without images
	metrics.TextLoss = Float(textLossSum / float64(metrics.ScoredTokens))
	metrics.TokenAccuracy = Float(float64(correct) / float64(metrics.ScoredTokens))
	metrics.Seconds = time.Since(start).Seconds()
	return metrics, items, nil
}

// hiddenPatchMSE returns the mean squared error of r's predictions over the
// hidden patches of image, 0 when none is hidden.
func hiddenPatchMSE(cfg core.Config, image []float32, r *core.Reconstruction) float64 {
	patchDim := cfg.PatchDim()
	target := make([]float32, cfg.NumPatches()*patchDim)
	core.Patchify(target, image, cfg)
	var sum float64
	count := 0
	for n, hidden := range r.Masks.Image {
		if !hidden {
			continue
		}
		for k := n * patchDim; k < (n+1)*patchDim; k++ {
			d := float64(r.PixelPred[k]) - float64(target[k])
			sum += d * d
		}
		count += patchDim
	}
	if count == 0 {
		return 0
	}
	return sum / float64(count)
}

// scoreToken returns the top-1 id of logits and the cross-entropy of
// target in nats.
func scoreToken(logits []float32, target int32) (top int32, loss float64) {
	maxLogit := math.Inf(-1)
	for id, v := range logits {
		if float64(v) > maxLogit {
			maxLogit, top = float64(v), int32(id)
		}
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - maxLogit)
	}
	return top, maxLogit + math.Log(sum) - float64(logits[target])
}
