package evaluate

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"slices"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Options sets the masks of Evaluate and its token baseline.
type Options struct {
	// ImageMaskRatio and TextMaskRatio are the fractions of image patches
	// and text positions hidden in the masked pass, as in
	// core.RandomMasks. The image ratio must hide at least one patch and
	// leave at least one visible, because the mean-colour baseline needs
	// one.
	ImageMaskRatio, TextMaskRatio float64
	// Seed draws the masks: example i uses core.RandomMasks with seed
	// Seed+i, as m3ae-edge quantize does.
	Seed uint64
	// Frequencies, when not nil, gives the token baseline: the most
	// frequent tokens of the training captions (CountTokens).
	Frequencies *TokenFrequencies
	// Progress, when not nil, is called after each example with the
	// number done so far and the total.
	Progress func(done, total int)
}

// DefaultOptions hides 75 % of the patches and of the text positions, the
// ratios M3AE was pretrained with.
func DefaultOptions() Options {
	return Options{ImageMaskRatio: core.DefaultMaskRatio, TextMaskRatio: core.DefaultMaskRatio}
}

// Report contains the figures of Evaluate. A section is nil when no
// example could be scored in it.
type Report struct {
	// Examples is the number of examples evaluated.
	Examples int    `json:"examples"`
	Seed     uint64 `json:"seed"`
	// Image scores the reconstructions of the masked pass.
	Image *ImageReport `json:"image_reconstruction"`
	// MaskedTokens scores the hidden caption tokens of the masked pass,
	// whose encoder input is the visible patches and tokens.
	MaskedTokens *TokenReport `json:"masked_tokens"`
	// CaptionFromImage scores every caption token with the whole caption
	// hidden and the whole image visible, so the model predicts the
	// caption from the image alone. Only examples with an image and a
	// caption take part.
	CaptionFromImage *TokenReport `json:"caption_from_image"`
	// Baseline describes the token baseline, nil without one.
	Baseline *BaselineReport `json:"token_baseline"`
}

// ImageReport compares the model's reconstructions of the hidden patches
// with the mean-colour baseline, in 8-bit pixel values.
type ImageReport struct {
	Examples       int     `json:"examples"`
	ImageMaskRatio float64 `json:"image_mask_ratio"`
	// HiddenPatches of Patches are hidden in every image.
	HiddenPatches int `json:"hidden_patches"`
	Patches       int `json:"patches"`
	// Model scores the model's predictions of the hidden patches with the
	// visible patches left as they are.
	Model ImageScores `json:"model"`
	// MeanColour scores filling every hidden patch with the mean colour
	// of the visible patches of the same image.
	MeanColour ImageScores `json:"mean_colour_baseline"`
}

// ImageScores is the error of one way of filling the hidden patches,
// measured over the hidden patches only and over the whole image, whose
// visible patches are exact.
type ImageScores struct {
	HiddenPatches PSNR `json:"hidden_patches"`
	WholeImage    PSNR `json:"whole_image"`
}

// PSNR summarizes the error of reconstructions against the preprocessed
// originals, both rounded to 8-bit pixels as core.DenormalizeImage renders
// them: PSNR = 10*log10(255^2 / MSE), with the MSE over R, G and B values.
type PSNR struct {
	// MeanDB is the mean of the examples' PSNRs, an example with no error
	// counting as MaxPSNR.
	MeanDB float64 `json:"mean_db"`
	// MSE is the mean squared error over every compared value of every
	// example, and PooledDB its PSNR (MaxPSNR when MSE is 0).
	MSE      float64 `json:"mse"`
	PooledDB float64 `json:"pooled_db"`
	// PerfectExamples counts the examples with no error at all, whose
	// PSNR is infinite and counts as MaxPSNR in MeanDB.
	PerfectExamples int `json:"perfect_examples"`
}

// MaxPSNR is the PSNR in dB that represents an exact reconstruction,
// whose PSNR is infinite and cannot be averaged or written as JSON. A
// nonzero error on 8-bit pixels gives at most 10*log10(255^2 * n) dB for
// n compared values, 89 dB for a 64x64 RGB image, so for images up to
// about 200x200 pixels any value of 100 is an exact one.
const MaxPSNR = 100.0

// TokenReport counts how often the hidden non-pad caption tokens are
// among the model's top 1 and top 5 predictions, and among the most
// frequent training tokens.
type TokenReport struct {
	ImageMaskRatio float64 `json:"image_mask_ratio"`
	TextMaskRatio  float64 `json:"text_mask_ratio"`
	// Examples is the number of examples with at least one scored token.
	Examples int `json:"examples"`
	// Tokens is the number of scored tokens.
	Tokens int      `json:"tokens"`
	Model  Accuracy `json:"model"`
	// Baseline is nil without Options.Frequencies.
	Baseline *Accuracy `json:"frequency_baseline"`
}

// Accuracy is a top-1 and top-5 accuracy over scored tokens.
type Accuracy struct {
	Top1        float64 `json:"top1"`
	Top5        float64 `json:"top5"`
	Top1Correct int     `json:"top1_correct"`
	Top5Correct int     `json:"top5_correct"`
}

// BaselineReport describes the token baseline: the TopK most frequent
// tokens, most frequent first, and the counts they come from.
type BaselineReport struct {
	Captions int      `json:"captions"`
	Tokens   int      `json:"tokens"`
	Top      []string `json:"top_tokens"`
}

// TopK is the k of the top-k accuracies: the number of predictions of the
// model, and of the most frequent tokens of the baseline, that may match.
const TopK = 5

// Evaluate runs the model of p on every example twice and scores it:
//
//  1. The masked pass hides Options.ImageMaskRatio of the patches and
//     Options.TextMaskRatio of the text positions, drawn by
//     core.RandomMasks with seed Options.Seed+i for example i. It scores
//     the image reconstruction (Report.Image) and the hidden tokens
//     (Report.MaskedTokens).
//  2. For an example with an image and a caption, the caption pass hides
//     every text position and no patch (Report.CaptionFromImage).
//
// Text masks cover pad positions too, as in training, so only the hidden
// positions that hold a caption token are scored. Evaluate stops with
// ctx's error when ctx is cancelled.
func Evaluate(ctx context.Context, p *core.Pipeline, examples []Example, opts Options) (*Report, error) {
	if len(examples) == 0 {
		return nil, errors.New("evaluate: no examples: give at least one image or caption")
	}
	cfg := p.Config()
	if err := checkImageMaskRatio(cfg, opts.ImageMaskRatio); err != nil {
		return nil, err
	}
	if _, err := core.RandomMasks(cfg, opts.ImageMaskRatio, opts.TextMaskRatio, opts.Seed); err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}

	var (
		images                  imageTotals
		maskedTokens, fromImage tokenTotals
	)
	var baseline []int32
	if opts.Frequencies != nil {
		baseline = opts.Frequencies.MostFrequent(TopK)
	}
	for i, example := range examples {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		in, err := exampleInputs(p, example)
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}

		// The masked pass.
		masks, err := core.RandomMasks(cfg, opts.ImageMaskRatio, opts.TextMaskRatio, opts.Seed+uint64(i))
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		rec, err := p.Model().Reconstruct(in, masks)
		if err != nil {
			return nil, fmt.Errorf("evaluate: %s: %w", example.Name, err)
		}
		if in.Patches != nil {
			images.add(cfg, p.Norm(), in.Patches, rec)
		}
		if in.Tokens != nil {
			maskedTokens.add(rec, baseline)
		}

		// The caption pass: the whole image, no text.
		if in.Patches != nil && in.Tokens != nil {
			hideText := core.Masks{Text: slices.Repeat([]bool{true}, cfg.TextLength)}
			rec, err := p.Model().Reconstruct(in, hideText)
			if err != nil {
				return nil, fmt.Errorf("evaluate: %s: %w", example.Name, err)
			}
			fromImage.add(rec, baseline)
		}
		if opts.Progress != nil {
			opts.Progress(i+1, len(examples))
		}
	}

	report := &Report{
		Examples:         len(examples),
		Seed:             opts.Seed,
		Image:            images.report(cfg, opts.ImageMaskRatio),
		MaskedTokens:     maskedTokens.report(opts.ImageMaskRatio, opts.TextMaskRatio, baseline != nil),
		CaptionFromImage: fromImage.report(0, 1, baseline != nil),
	}
	if opts.Frequencies != nil {
		report.Baseline = opts.Frequencies.baselineReport(p.Tokenizer())
	}
	return report, nil
}

// checkImageMaskRatio rejects an image mask ratio that hides no patch or
// every patch of cfg's images.
func checkImageMaskRatio(cfg core.Config, ratio float64) error {
	masks, err := core.RandomMasks(cfg, ratio, 0, 0)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	hidden := countTrue(masks.Image)
	if hidden == 0 || hidden == len(masks.Image) {
		return fmt.Errorf("evaluate: image mask ratio %v hides %d of %d patches: use a ratio that hides some patches and leaves some visible, such as %v",
			ratio, hidden, len(masks.Image), core.DefaultMaskRatio)
	}
	return nil
}

// exampleInputs loads, preprocesses and tokenizes an example. The returned
// inputs are copies, so later calls of p do not change them.
func exampleInputs(p *core.Pipeline, example Example) (core.Inputs, error) {
	img, err := example.LoadImage()
	if err != nil {
		return core.Inputs{}, err
	}
	in, err := p.Inputs(img, example.Caption)
	if err != nil {
		return core.Inputs{}, fmt.Errorf("%s: %w", example.Name, err)
	}
	return core.Inputs{Patches: slices.Clone(in.Patches), Tokens: slices.Clone(in.Tokens)}, nil
}

// imageTotals accumulates the image figures over examples.
type imageTotals struct {
	examples                                       int
	hiddenPatches                                  int
	modelHidden, modelWhole, meanHidden, meanWhole psnrTotals
}

// add scores the reconstruction rec of the patches original, in
// normalized pixels [Np, p*p*C].
func (t *imageTotals) add(cfg core.Config, norm core.ImageNorm, original []float32, rec *core.Reconstruction) {
	originalImage := renderPatches(cfg, norm, original)
	modelImage := renderPatches(cfg, norm, rec.Patches)
	meanImage := fillMeanColour(originalImage, rec.Masks.Image, cfg.PatchSize)
	t.modelHidden.add(squaredError(modelImage, originalImage, rec.Masks.Image, cfg.PatchSize))
	t.modelWhole.add(squaredError(modelImage, originalImage, nil, cfg.PatchSize))
	t.meanHidden.add(squaredError(meanImage, originalImage, rec.Masks.Image, cfg.PatchSize))
	t.meanWhole.add(squaredError(meanImage, originalImage, nil, cfg.PatchSize))
	t.examples++
	t.hiddenPatches = countTrue(rec.Masks.Image)
}

func (t *imageTotals) report(cfg core.Config, ratio float64) *ImageReport {
	if t.examples == 0 {
		return nil
	}
	return &ImageReport{
		Examples:       t.examples,
		ImageMaskRatio: ratio,
		HiddenPatches:  t.hiddenPatches,
		Patches:        cfg.NumPatches(),
		Model:          ImageScores{HiddenPatches: t.modelHidden.psnr(), WholeImage: t.modelWhole.psnr()},
		MeanColour:     ImageScores{HiddenPatches: t.meanHidden.psnr(), WholeImage: t.meanWhole.psnr()},
	}
}

// renderPatches returns patches [Np, p*p*C] in normalized pixels as the
// 8-bit image that core.DenormalizeImage renders.
func renderPatches(cfg core.Config, norm core.ImageNorm, patches []float32) *image.RGBA {
	pixels := make([]float32, cfg.ImageSize*cfg.ImageSize*core.Channels)
	core.Unpatchify(pixels, patches, cfg)
	return core.DenormalizeImage(pixels, cfg.ImageSize, norm)
}

// fillMeanColour returns a copy of img whose hidden patches, row-major
// over the grid of patchSize squares, are filled with the mean R, G and B
// of the visible patches' pixels, rounded to the nearest 8-bit value. The
// caller guarantees at least one visible patch.
func fillMeanColour(img *image.RGBA, hidden []bool, patchSize int) *image.RGBA {
	var sum [core.Channels]float64
	count := 0
	forEachPixel(img, hidden, patchSize, false, func(offset int) {
		for c := range core.Channels {
			sum[c] += float64(img.Pix[offset+c])
		}
		count++
	})
	var mean [core.Channels]uint8
	for c := range core.Channels {
		mean[c] = uint8(math.Round(sum[c] / float64(count)))
	}

	out := image.NewRGBA(img.Rect)
	copy(out.Pix, img.Pix)
	forEachPixel(out, hidden, patchSize, true, func(offset int) {
		copy(out.Pix[offset:offset+core.Channels], mean[:])
	})
	return out
}

// forEachPixel calls visit with the offset in img.Pix of every pixel in a
// patch whose hidden entry equals wantHidden, in row-major patch order.
func forEachPixel(img *image.RGBA, hidden []bool, patchSize int, wantHidden bool, visit func(offset int)) {
	grid := img.Rect.Dx() / patchSize
	for n, isHidden := range hidden {
		if isHidden != wantHidden {
			continue
		}
		left, top := (n%grid)*patchSize, (n/grid)*patchSize
		for y := top; y < top+patchSize; y++ {
			for x := left; x < left+patchSize; x++ {
				visit(img.PixOffset(x, y))
			}
		}
	}
}

// squaredError returns the sum of squared differences of the R, G and B
// values of a and b, over the hidden patches or over every pixel when
// hidden is nil, and the number of values compared.
func squaredError(a, b *image.RGBA, hidden []bool, patchSize int) (sum float64, count int) {
	if hidden == nil {
		for offset := 0; offset < len(a.Pix); offset += 4 {
			for c := range core.Channels {
				d := float64(a.Pix[offset+c]) - float64(b.Pix[offset+c])
				sum += d * d
			}
			count += core.Channels
		}
		return sum, count
	}
	forEachPixel(a, hidden, patchSize, true, func(offset int) {
		for c := range core.Channels {
			d := float64(a.Pix[offset+c]) - float64(b.Pix[offset+c])
			sum += d * d
		}
		count += core.Channels
	})
	return sum, count
}

// psnrTotals accumulates per-example squared errors into a PSNR.
type psnrTotals struct {
	sumDB      float64
	examples   int
	perfect    int
	sumSquares float64
	values     int
}

func (t *psnrTotals) add(sumSquares float64, count int) {
	t.sumDB += psnrDB(sumSquares / float64(count))
	t.examples++
	if sumSquares == 0 {
		t.perfect++
	}
	t.sumSquares += sumSquares
	t.values += count
}

func (t *psnrTotals) psnr() PSNR {
	mse := t.sumSquares / float64(t.values)
	return PSNR{
		MeanDB:          t.sumDB / float64(t.examples),
		MSE:             mse,
		PooledDB:        psnrDB(mse),
		PerfectExamples: t.perfect,
	}
}

// psnrDB returns 10*log10(255^2/mse), capped at MaxPSNR.
func psnrDB(mse float64) float64 {
	if mse == 0 {
		return MaxPSNR
	}
	return min(MaxPSNR, 10*math.Log10(255*255/mse))
}

func countTrue(mask []bool) int {
	n := 0
	for _, v := range mask {
		if v {
			n++
		}
	}
	return n
}
