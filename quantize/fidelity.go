package quantize

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Example is one sample of the fidelity set: an image, a caption or both.
type Example struct {
	// Name identifies the example in error messages, such as its image
	// path.
	Name    string
	Image   image.Image // nil for none
	Caption string      // "" for none
}

// maxCaptionsLine bounds one line of a captions file, so a file without
// newlines cannot make ReadExamples buffer all of it.
const maxCaptionsLine = 1 << 20

// ReadExamples reads a JSONL captions file whose lines are objects with an
// "image" path, relative to the file's folder, and a "caption". Other keys
// are ignored. Either may be missing or empty, but not both. limit > 0
// keeps the first limit examples.
func ReadExamples(path string, limit int) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read examples: %w", err)
	}
	defer f.Close()
	examples, err := readExamples(f, filepath.Dir(path), limit)
	if err != nil {
		return nil, fmt.Errorf("read examples: %s: %w", path, err)
	}
	return examples, nil
}

func readExamples(r io.Reader, dir string, limit int) ([]Example, error) {
	scanner := bufio.NewScanner(r)
	scanner.Buffer(nil, maxCaptionsLine)
	var examples []Example
	for line := 1; scanner.Scan(); line++ {
		if limit > 0 && len(examples) == limit {
			break
		}
		text := bytes.TrimSpace(scanner.Bytes())
		if len(text) == 0 {
			continue
		}
		var record struct {
			Image   string `json:"image"`
			Caption string `json:"caption"`
		}
		if err := json.Unmarshal(text, &record); err != nil {
			return nil, fmt.Errorf("line %d: invalid JSON: %w", line, err)
		}
		if record.Image == "" && record.Caption == "" {
			return nil, fmt.Errorf("line %d: no \"image\" and no \"caption\": give at least one", line)
		}
		example := Example{Name: fmt.Sprintf("line %d", line), Caption: record.Caption}
		if record.Image != "" {
			imagePath := record.Image
			if !filepath.IsAbs(imagePath) {
				imagePath = filepath.Join(dir, imagePath)
			}
			data, err := core.ReadImageFile(imagePath)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			if example.Image, err = core.DecodeImage(data); err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", line, imagePath, err)
			}
			example.Name = record.Image
		}
		examples = append(examples, example)
	}
	if err := scanner.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line is longer than %d bytes", maxCaptionsLine)
		}
		return nil, err
	}
	if len(examples) == 0 {
		return nil, errors.New("no examples: the file has no non-blank lines")
	}
	return examples, nil
}

// FidelityOptions sets how MeasureFidelity masks and pools.
type FidelityOptions struct {
	// ImageMaskRatio and TextMaskRatio are the hidden fractions of the
	// reconstructions, from 0 to 1.
	ImageMaskRatio, TextMaskRatio float64
	// Seed draws the masks: example i uses core.RandomMasks with seed
	// Seed+i, the same masks for both models.
	Seed uint64
	// Pooling turns the encoder outputs into the compared embeddings.
	Pooling core.Pooling
}

// DefaultFidelityOptions masks 75 % of patches and text positions, the
// pretraining ratios, and compares CLS embeddings.
func DefaultFidelityOptions() FidelityOptions {
	return FidelityOptions{
		ImageMaskRatio: core.DefaultMaskRatio,
		TextMaskRatio:  core.DefaultMaskRatio,
		Pooling:        core.PoolCLS,
	}
}

// CosineStats summarizes the cosine similarities between the float32 and
// the int8 embeddings of one input kind.
type CosineStats struct {
	// Count is the number of examples of this kind; Mean and Worst are 0
	// when it is 0.
	Count int     `json:"count"`
	Mean  float64 `json:"mean"`
	// Worst is the smallest cosine similarity.
	Worst float64 `json:"worst"`
}

// PSNRStats compares the reconstructions of the hidden image patches.
// PSNR is 10*log10(1/MSE) over the hidden patches' pixels, each channel
// denormalized to [0, 1] and the prediction clamped to [0, 1] as a
// rendered image would be, averaged over the examples.
type PSNRStats struct {
	Count int `json:"count"`
	// Float32DB and Int8DB are the mean PSNRs in dB.
	Float32DB float64 `json:"float32_db"`
	Int8DB    float64 `json:"int8_db"`
	// DiffDB is |Float32DB - Int8DB|, and MaxExampleDiffDB the largest
	// per-example |difference|.
	DiffDB           float64 `json:"diff_db"`
	MaxExampleDiffDB float64 `json:"max_example_diff_db"`
}

// AgreementStats counts the hidden non-pad text positions whose top-1
// predicted token is the same for both models.
type AgreementStats struct {
	Agree int `json:"agree"`
	Total int `json:"total"`
	// Rate is Agree/Total, or 0 when Total is 0.
	Rate float64 `json:"rate"`
}

// FidelityReport compares an int8 model with its float32 original on a
// sample set.
type FidelityReport struct {
	Examples       int     `json:"examples"`
	ImageMaskRatio float64 `json:"image_mask_ratio"`
	TextMaskRatio  float64 `json:"text_mask_ratio"`
	Seed           uint64  `json:"seed"`
	Pooling        string  `json:"pooling"`
	// Cosine similarities of the embeddings of the image alone, the
	// caption alone and both together.
	ImageEmbedding  CosineStats    `json:"image_embedding"`
	TextEmbedding   CosineStats    `json:"text_embedding"`
	PairedEmbedding CosineStats    `json:"paired_embedding"`
	Reconstruction  PSNRStats      `json:"reconstruction_psnr"`
	TokenTop1       AgreementStats `json:"masked_token_top1_agreement"`
}

// maxPSNR caps the PSNR of a reconstruction with no error, which would be
// infinite and cannot be written as JSON.
const maxPSNR = 100.0

// MeasureFidelity runs every example through both pipelines, which must
// have the same config and image normalization: embeddings of the image
// alone, the caption alone and both, and a masked reconstruction of the
// pair with the same masks for both models. It checks ctx before each
// example and returns its error once ctx is done. progress, when not nil,
// is called after each example with the number done and the total.
func MeasureFidelity(ctx context.Context, float32Pipeline, int8Pipeline *core.Pipeline, examples []Example, opts FidelityOptions, progress func(done, total int)) (*FidelityReport, error) {
	cfg := float32Pipeline.Config()
	if int8Pipeline.Config() != cfg {
		return nil, fmt.Errorf("measure fidelity: the models have different configs: %+v and %+v", cfg, int8Pipeline.Config())
	}
	if float32Pipeline.Norm() != int8Pipeline.Norm() {
		return nil, fmt.Errorf("measure fidelity: the models have different image normalizations: %+v and %+v",
			float32Pipeline.Norm(), int8Pipeline.Norm())
	}
	if len(examples) == 0 {
		return nil, errors.New("measure fidelity: no examples: give at least one image or caption")
	}
	r := &FidelityReport{
		Examples:       len(examples),
		ImageMaskRatio: opts.ImageMaskRatio,
		TextMaskRatio:  opts.TextMaskRatio,
		Seed:           opts.Seed,
		Pooling:        opts.Pooling.String(),
	}
	var image, text, paired cosines
	var psnrF32, psnrI8 []float64
	for i, example := range examples {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("measure fidelity: stopped after %d of %d examples: %w", i, len(examples), err)
		}
		in, err := float32Pipeline.Inputs(example.Image, example.Caption)
		if err != nil {
			return nil, fmt.Errorf("measure fidelity: example %s: %w", example.Name, err)
		}
		// The Inputs alias the pipeline's buffers, which the next call
		// overwrites, so keep copies.
		in = core.Inputs{Patches: slices.Clone(in.Patches), Tokens: slices.Clone(in.Tokens)}
		models := [2]*core.Model{float32Pipeline.Model(), int8Pipeline.Model()}

		// Embeddings of each modality alone, then of the pair.
		embed := func(stats *cosines, in core.Inputs) error {
			similarity, err := compareEmbeddings(models, in, opts.Pooling)
			if err != nil {
				return fmt.Errorf("measure fidelity: example %s: %w", example.Name, err)
			}
			stats.add(similarity)
			return nil
		}
		if in.Patches != nil {
			if err := embed(&image, core.Inputs{Patches: in.Patches}); err != nil {
				return nil, err
			}
		}
		if in.Tokens != nil {
			if err := embed(&text, core.Inputs{Tokens: in.Tokens}); err != nil {
				return nil, err
			}
		}
		if in.Patches != nil && in.Tokens != nil {
			if err := embed(&paired, in); err != nil {
				return nil, err
			}
		}

		// Masked reconstruction with the same masks for both models.
		masks, err := core.RandomMasks(cfg, opts.ImageMaskRatio, opts.TextMaskRatio, opts.Seed+uint64(i))
		if err != nil {
			return nil, fmt.Errorf("measure fidelity: %w", err)
		}
		var recs [2]*core.Reconstruction
		for m, model := range models {
			if recs[m], err = model.Reconstruct(in, masks); err != nil {
				return nil, fmt.Errorf("measure fidelity: example %s: %w", example.Name, err)
			}
		}
		if in.Patches != nil && hasHidden(masks.Image) {
			norm := float32Pipeline.Norm()
			psnrF32 = append(psnrF32, hiddenPatchPSNR(recs[0].PixelPred, in.Patches, masks.Image, cfg.PatchDim(), norm))
			psnrI8 = append(psnrI8, hiddenPatchPSNR(recs[1].PixelPred, in.Patches, masks.Image, cfg.PatchDim(), norm))
		}
		if in.Tokens != nil {
			countTop1Agreement(&r.TokenTop1, recs[0], recs[1])
		}
		if progress != nil {
			progress(i+1, len(examples))
		}
	}

	r.ImageEmbedding = image.stats()
	r.TextEmbedding = text.stats()
	r.PairedEmbedding = paired.stats()
	r.Reconstruction = psnrStats(psnrF32, psnrI8)
	if r.TokenTop1.Total > 0 {
		r.TokenTop1.Rate = float64(r.TokenTop1.Agree) / float64(r.TokenTop1.Total)
	}
	return r, nil
}

// compareEmbeddings returns the cosine similarity of the two models'
// embeddings of in.
func compareEmbeddings(models [2]*core.Model, in core.Inputs, pool core.Pooling) (float64, error) {
	var embeddings [2][]float32
	for m, model := range models {
		var err error
		if embeddings[m], err = model.Embed(in, pool); err != nil {
			return 0, err
		}
	}
	return cosine(embeddings[0], embeddings[1]), nil
}

// cosine returns a·b / (|a| |b|) in float64, or 0 when either is zero.
func cosine(a, b []float32) float64 {
	var dot, normA, normB float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		normA += float64(a[i]) * float64(a[i])
		normB += float64(b[i]) * float64(b[i])
	}
	if normA == 0 || normB == 0 {
		return 0
	}
	return dot / math.Sqrt(normA*normB)
}

// cosines collects cosine similarities of one input kind.
type cosines []float64

func (c *cosines) add(v float64) { *c = append(*c, v) }

func (c cosines) stats() CosineStats {
	if len(c) == 0 {
		return CosineStats{}
	}
	s := CosineStats{Count: len(c), Worst: c[0]}
	for _, v := range c {
		s.Mean += v
		s.Worst = min(s.Worst, v)
	}
	s.Mean /= float64(len(c))
	return s
}

func hasHidden(mask []bool) bool { return slices.Contains(mask, true) }

// hiddenPatchPSNR returns the PSNR of pred against the original patches
// over the hidden patches, with both denormalized to [0, 1] pixel values.
// Patches are [Np, p*p*C] with channels innermost.
func hiddenPatchPSNR(pred, original []float32, hidden []bool, patchDim int, norm core.ImageNorm) float64 {
	var sumSquares float64
	count := 0
	for n, isHidden := range hidden {
		if !isHidden {
			continue
		}
		for k := n * patchDim; k < (n+1)*patchDim; k++ {
			c := k % core.Channels
			d := pixelValue(pred[k], norm, c) - pixelValue(original[k], norm, c)
			sumSquares += d * d
			count++
		}
	}
	mse := sumSquares / float64(count)
	if mse == 0 {
		return maxPSNR
	}
	return min(maxPSNR, -10*math.Log10(mse))
}

// pixelValue returns the normalized value v of channel c as a pixel value
// clamped to [0, 1].
func pixelValue(v float32, norm core.ImageNorm, c int) float64 {
	x := float64(v)*float64(norm.Std[c]) + float64(norm.Mean[c])
	return min(1, max(0, x))
}

func psnrStats(float32DB, int8DB []float64) PSNRStats {
	s := PSNRStats{Count: len(float32DB)}
	if s.Count == 0 {
		return s
	}
	for i := range float32DB {
		s.Float32DB += float32DB[i]
		s.Int8DB += int8DB[i]
		s.MaxExampleDiffDB = max(s.MaxExampleDiffDB, math.Abs(float32DB[i]-int8DB[i]))
	}
	s.Float32DB /= float64(s.Count)
	s.Int8DB /= float64(s.Count)
	s.DiffDB = math.Abs(s.Float32DB - s.Int8DB)
	return s
}

// countTop1Agreement adds the hidden non-pad text positions of a and b,
// reconstructions of the same input with the same masks, to stats.
func countTop1Agreement(stats *AgreementStats, a, b *core.Reconstruction) {
	vocabSize := a.VocabSize
	for t, hidden := range a.Masks.Text {
		if !hidden || a.Tokens[t] == core.PadID {
			continue
		}
		row := func(r *core.Reconstruction) []float32 { return r.TokenLogits[t*vocabSize : (t+1)*vocabSize] }
		if argmax(row(a)) == argmax(row(b)) {
			stats.Agree++
		}
		stats.Total++
	}
}

// argmax returns the index of the largest value, the lowest index on ties,
// as core.TopK orders them.
func argmax(values []float32) int {
	best := 0
	for i, v := range values {
		if v > values[best] {
			best = i
		}
	}
	return best
}
