package abi

import (
	"errors"
	"fmt"
	"image"
	"math"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// ErrInvalidResponse marks guest output that does not decode. A host that
// gets it should discard the instance, since the guest is not the plugin
// this package describes.
var ErrInvalidResponse = errors.New("invalid plugin response")

// maxImageSide bounds the side of a decoded response image: 32768^2 RGBA
// pixels take 4 GiB, all of a wasm32 memory.
const maxImageSide = 1 << 15

// Reconstruction is the result of m3ae_reconstruct: the images, masks and
// word predictions of core.PipelineReconstruction, and the predicted
// patches of its Raw field. It leaves out Raw's token logits, [Nt, V]
// floats that would dwarf everything else.
type Reconstruction struct {
	// Masks are the masks used: Image has Np entries with an image and is
	// nil without one, and Text has Nt entries with text and is nil
	// without. True means hidden.
	Masks core.Masks
	// Image is nil without an image.
	Image *core.ImageReconstruction
	// Text is nil without text tokens.
	Text *core.TextReconstruction
	// PixelPred is the decoder's predicted normalized patch of every image
	// slot [Np, p*p*C], patch n at n*p*p*C, visible ones included. It is
	// nil without an image.
	PixelPred []float32
}

// NewReconstruction returns the parts of r that m3ae_reconstruct sends.
// The result shares r's slices and images.
func NewReconstruction(r *core.PipelineReconstruction) *Reconstruction {
	out := &Reconstruction{Masks: r.Masks, Image: r.Image, Text: r.Text}
	if r.Raw != nil {
		out.PixelPred = r.Raw.PixelPred
	}
	return out
}

// EncodeEmbedding returns the bytes of an m3ae_embed response.
func EncodeEmbedding(embedding []float32) []byte {
	var e encoder
	e.float32s(embedding)
	return e.buf
}

// DecodeEmbedding decodes an m3ae_embed response into a new slice. Every
// error wraps ErrInvalidResponse.
func DecodeEmbedding(data []byte) ([]float32, error) {
	d := newDecoder(data, ErrInvalidResponse, "embed response")
	out := d.float32s("embedding", math.MaxUint32)
	if err := d.finish(); err != nil {
		return nil, err
	}
	if out == nil {
		out = []float32{}
	}
	return out, nil
}

// configFields lists the fields of core.Config in wire order.
func configFields(c *core.Config) []*int {
	return []*int{
		&c.ImageSize, &c.PatchSize, &c.TextLength, &c.VocabSize,
		&c.EmbedDim, &c.Depth, &c.NumHeads,
		&c.DecoderEmbedDim, &c.DecoderDepth, &c.DecoderNumHeads,
		&c.MLPRatio,
	}
}

// EncodeConfig returns the bytes of an m3ae_config response: the fields of
// cfg as u32 values, in the order core.Config declares them.
func EncodeConfig(cfg core.Config) []byte {
	var e encoder
	for _, field := range configFields(&cfg) {
		e.u32(uint32(*field))
	}
	return e.buf
}

// DecodeConfig decodes an m3ae_config response and validates the config.
// Every error wraps ErrInvalidResponse.
func DecodeConfig(data []byte) (core.Config, error) {
	d := newDecoder(data, ErrInvalidResponse, "config response")
	var cfg core.Config
	for _, field := range configFields(&cfg) {
		*field = int(d.u32("config field"))
	}
	if err := d.finish(); err != nil {
		return core.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return core.Config{}, fmt.Errorf("%w: config response: %w", ErrInvalidResponse, err)
	}
	return cfg, nil
}

// EncodeReconstruction returns the bytes of an m3ae_reconstruct response.
// Every image of r.Image must be square and of one size.
func EncodeReconstruction(r *Reconstruction) ([]byte, error) {
	var e encoder
	e.bools(r.Masks.Image)
	e.bools(r.Masks.Text)

	e.flag(r.Image != nil)
	if r.Image != nil {
		size := r.Image.Original.Bounds().Dx()
		e.u32(uint32(size))
		for _, img := range []*image.RGBA{r.Image.Original, r.Image.Masked, r.Image.Reconstructed} {
			if err := appendRGBA(&e, img, size); err != nil {
				return nil, err
			}
		}
		e.float32s(r.PixelPred)
	}

	e.flag(r.Text != nil)
	if r.Text != nil {
		text := r.Text
		if len(text.Hidden) != len(text.Tokens) {
			return nil, fmt.Errorf("%w: text has %d tokens and %d hidden flags", ErrInvalidResponse, len(text.Tokens), len(text.Hidden))
		}
		e.u32(uint32(len(text.Tokens)))
		for i, token := range text.Tokens {
			e.str(token)
			e.flag(text.Hidden[i])
		}
		e.u32(uint32(len(text.Predictions)))
		for _, p := range text.Predictions {
			e.u32(uint32(p.Position))
			e.str(p.Original)
			e.u32(uint32(len(p.Candidates)))
			for _, c := range p.Candidates {
				e.u32(uint32(c.ID))
				e.str(c.Token)
				e.f32(c.Prob)
			}
		}
	}
	return e.buf, nil
}

// appendRGBA writes the size x size pixels of img row by row.
func appendRGBA(e *encoder, img *image.RGBA, size int) error {
	bounds := img.Bounds()
	if bounds.Dx() != size || bounds.Dy() != size {
		return fmt.Errorf("%w: image is %dx%d, want %dx%d", ErrInvalidResponse, bounds.Dx(), bounds.Dy(), size, size)
	}
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		start := img.PixOffset(bounds.Min.X, y)
		e.buf = append(e.buf, img.Pix[start:start+4*size]...)
	}
	return nil
}

// DecodeReconstruction decodes an m3ae_reconstruct response into new
// values. Every error wraps ErrInvalidResponse.
func DecodeReconstruction(data []byte) (*Reconstruction, error) {
	d := newDecoder(data, ErrInvalidResponse, "reconstruct response")
	r := &Reconstruction{}
	r.Masks.Image = d.bools("image mask", math.MaxUint32)
	r.Masks.Text = d.bools("text mask", math.MaxUint32)

	if d.flag("image flag") {
		size := d.u32("image size")
		if size == 0 || size > maxImageSide {
			d.fail("image size", "size %d, want 1 to %d", size, maxImageSide)
		}
		r.Image = &core.ImageReconstruction{
			Original:      decodeRGBA(d, "original image", int(size)),
			Masked:        decodeRGBA(d, "masked image", int(size)),
			Reconstructed: decodeRGBA(d, "reconstructed image", int(size)),
		}
		r.PixelPred = d.float32s("pixel prediction", math.MaxUint32)
	}

	if d.flag("text flag") {
		r.Text = decodeText(d)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return r, nil
}

func decodeRGBA(d *decoder, field string, size int) *image.RGBA {
	pix := d.take(field, 4*uint64(size)*uint64(size))
	if d.err != nil {
		return nil
	}
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	copy(img.Pix, pix)
	return img
}

// Smallest encoded sizes, which bound the counts the decoder accepts.
const (
	minTokenBytes      = 4 + 1     // empty string, hidden flag
	minPredictionBytes = 4 + 4 + 4 // position, empty original, no candidates
	minCandidateBytes  = 4 + 4 + 4 // id, empty token, probability
)

func decodeText(d *decoder) *core.TextReconstruction {
	text := &core.TextReconstruction{}
	numTokens := d.count("token count", minTokenBytes, math.MaxUint32)
	for range numTokens {
		text.Tokens = append(text.Tokens, d.str("token", math.MaxUint32))
		text.Hidden = append(text.Hidden, d.flag("hidden flag"))
	}
	numPredictions := d.count("prediction count", minPredictionBytes, math.MaxUint32)
	for range numPredictions {
		p := core.WordPrediction{
			Position: int(d.u32("position")),
			Original: d.str("original token", math.MaxUint32),
		}
		numCandidates := d.count("candidate count", minCandidateBytes, math.MaxUint32)
		for range numCandidates {
			p.Candidates = append(p.Candidates, core.WordCandidate{
				ID:    int32(d.u32("candidate id")),
				Token: d.str("candidate token", math.MaxUint32),
				Prob:  d.f32("probability"),
			})
		}
		text.Predictions = append(text.Predictions, p)
	}
	return text
}
