package core

import (
	"fmt"
	"image"
	"image/color"
	"strconv"
)

// Pipeline runs a model on images and captions: it preprocesses, tokenizes,
// masks and calls the Model, then turns the outputs back into images and
// words. It is the API the CLI, the browser module and the plugin share.
//
// A Pipeline is not safe for concurrent use, because it reuses its Model's
// scratch buffers and its own input buffers on every call.
type Pipeline struct {
	model     *Model
	tokenizer *Tokenizer
	norm      ImageNorm

	pixels  []float32 // [H, W, C], the preprocessed image of the last call
	patches []float32 // [Np, p*p*C], pixels cut into patches
	tokens  []int32   // [Nt], the tokenized caption of the last call
}

// Load reads a model file and prepares a Pipeline for it.
func Load(data []byte) (*Pipeline, error) {
	mf, err := ReadModelFile(data)
	if err != nil {
		return nil, err
	}
	return NewPipeline(mf)
}

// NewPipeline prepares a Pipeline for a decoded model file. The Pipeline
// keeps references to the file's tensors, so they must not change while it
// is in use.
func NewPipeline(mf *ModelFile) (*Pipeline, error) {
	model, err := NewModel(mf)
	if err != nil {
		return nil, err
	}
	tokenizer, err := NewTokenizer(mf.Vocab)
	if err != nil {
		return nil, fmt.Errorf("%w: vocabulary: %w", ErrInvalidModelFile, err)
	}
	cfg := mf.Config
	return &Pipeline{
		model:     model,
		tokenizer: tokenizer,
		norm:      mf.Norm,
		pixels:    make([]float32, cfg.ImageSize*cfg.ImageSize*Channels),
		patches:   make([]float32, cfg.NumPatches()*cfg.PatchDim()),
		tokens:    make([]int32, cfg.TextLength),
	}, nil
}

// Config returns the model's architecture.
func (p *Pipeline) Config() Config { return p.model.Config() }

// Model returns the underlying model.
func (p *Pipeline) Model() *Model { return p.model }

// Tokenizer returns the model's tokenizer.
func (p *Pipeline) Tokenizer() *Tokenizer { return p.tokenizer }

// Norm returns the model's image normalization.
func (p *Pipeline) Norm() ImageNorm { return p.norm }

// Inputs preprocesses img and tokenizes text into the Pipeline's buffers.
// A nil img means no image. Text is present when it has at least one
// token: an empty or blank caption means no text, which for the encoder is
// the same as an all-padding caption, since padding is never attended to.
// The returned Inputs alias the Pipeline's buffers until the next call.
func (p *Pipeline) Inputs(img image.Image, text string) (Inputs, error) {
	var in Inputs
	cfg := p.Config()
	if img != nil {
		if err := PreprocessImage(img, cfg.ImageSize, p.norm, p.pixels); err != nil {
			return Inputs{}, err
		}
		Patchify(p.patches, p.pixels, cfg)
		in.Patches = p.patches
	}
	if p.tokenizer.EncodeInto(p.tokens, text) > 0 {
		in.Tokens = p.tokens
	}
	if in.Patches == nil && in.Tokens == nil {
		return Inputs{}, fmt.Errorf("%w: no image and no text tokens (caption %s): give an image, a caption with words, or both", ErrInvalidInput, quoteCaption(text))
	}
	return in, nil
}

// maxQuotedCaption is how many bytes of a caption an error message quotes.
const maxQuotedCaption = 64

// quoteCaption returns text quoted for an error message. A caption longer
// than maxQuotedCaption bytes is cut at a rune boundary and its length
// given, so a huge caption does not make a huge message.
func quoteCaption(text string) string {
	if len(text) <= maxQuotedCaption {
		return strconv.Quote(text)
	}
	return fmt.Sprintf("%q... (%d bytes)", cutToRuneBoundary(text, maxQuotedCaption), len(text))
}

// Embed returns the representation of an image, a caption or both: the
// encoder's output after its final LayerNorm, pooled by pool, on the
// unmasked input. The returned [D] slice is the caller's.
func (p *Pipeline) Embed(img image.Image, text string, pool Pooling) ([]float32, error) {
	in, err := p.Inputs(img, text)
	if err != nil {
		return nil, err
	}
	return p.model.Embed(in, pool)
}

// ReconstructOptions chooses the masks and the number of predictions.
type ReconstructOptions struct {
	// ImageMaskRatio and TextMaskRatio are the fractions of image patches
	// and text positions to hide, from 0 to 1; the model keeps
	// int(L*(1-ratio)) positions of each.
	ImageMaskRatio float64
	TextMaskRatio  float64
	// Seed picks the random masks: the same seed gives the same masks on
	// every target.
	Seed uint64
	// Masks, when not nil, replaces the random masks. A nil mask for a
	// present modality hides nothing.
	Masks *Masks
	// TopK is the number of predicted tokens listed for each hidden text
	// position; 0 means DefaultTopK.
	TopK int
}

// DefaultTopK is the number of predictions listed per hidden text position
// when ReconstructOptions.TopK is 0.
const DefaultTopK = 5

// MaxTopK bounds ReconstructOptions.TopK, since every candidate costs a
// pass over the V logits of its position.
const MaxTopK = 100

// DefaultReconstructOptions hides 75 % of the patches and 75 % of the text
// positions, the ratios M3AE was pretrained with.
func DefaultReconstructOptions() ReconstructOptions {
	return ReconstructOptions{
		ImageMaskRatio: DefaultMaskRatio,
		TextMaskRatio:  DefaultMaskRatio,
		TopK:           DefaultTopK,
	}
}

// ImageReconstruction is a reconstruction turned back into pictures, all
// ImageSize x ImageSize.
type ImageReconstruction struct {
	// Original is the preprocessed input: resized, cropped and composited.
	Original *image.RGBA
	// Masked is Original with the hidden patches painted MaskedPatchColor.
	Masked *image.RGBA
	// Reconstructed shows the visible patches of the input and the
	// model's prediction for the hidden ones.
	Reconstructed *image.RGBA
}

// MaskedPatchColor fills hidden patches in ImageReconstruction.Masked.
var MaskedPatchColor = color.RGBA{R: 128, G: 128, B: 128, A: 255}

// TextReconstruction lists the caption's tokens and the model's guesses for
// the hidden ones.
type TextReconstruction struct {
	// Tokens are the caption's WordPiece tokens, one per non-pad position.
	Tokens []string
	// Hidden[i] is true when Tokens[i] was hidden from the encoder.
	Hidden []bool
	// Predictions holds, for every hidden non-pad position, the top-k
	// tokens with their softmax probabilities.
	Predictions []WordPrediction
}

// WordPrediction is the model's guess for one hidden text position.
type WordPrediction struct {
	Position   int
	Original   string
	Candidates []WordCandidate
}

// WordCandidate is one predicted token and its probability.
type WordCandidate struct {
	ID    int32
	Token string
	Prob  float32
}

// PipelineReconstruction is the result of Pipeline.Reconstruct. Image is
// nil without an image and Text is nil without text tokens.
type PipelineReconstruction struct {
	Masks Masks
	Image *ImageReconstruction
	Text  *TextReconstruction
	// Raw holds the model's numeric outputs.
	Raw *Reconstruction
}

// Reconstruct hides part of the image and caption and predicts what was
// hidden.
func (p *Pipeline) Reconstruct(img image.Image, text string, opts ReconstructOptions) (*PipelineReconstruction, error) {
	topK := opts.TopK
	if topK == 0 {
		topK = DefaultTopK
	}
	if topK < 1 || topK > MaxTopK {
		return nil, fmt.Errorf("%w: top-k %d, want 1 to %d", ErrInvalidInput, opts.TopK, MaxTopK)
	}
	in, err := p.Inputs(img, text)
	if err != nil {
		return nil, err
	}

	// Masks: the caller's, or drawn from the seed.
	var masks Masks
	if opts.Masks != nil {
		masks = *opts.Masks
	} else {
		masks, err = RandomMasks(p.Config(), opts.ImageMaskRatio, opts.TextMaskRatio, opts.Seed)
		if err != nil {
			return nil, err
		}
	}

	raw, err := p.model.Reconstruct(in, masks)
	if err != nil {
		return nil, err
	}
	out := &PipelineReconstruction{Masks: raw.Masks, Raw: raw}
	if in.Patches != nil {
		out.Image = p.imageReconstruction(raw)
	}
	if in.Tokens != nil {
		out.Text = p.textReconstruction(raw, topK)
	}
	return out, nil
}

// imageReconstruction renders the original, masked and reconstructed
// images from the last preprocessed input and raw.
func (p *Pipeline) imageReconstruction(raw *Reconstruction) *ImageReconstruction {
	cfg := p.Config()
	size := cfg.ImageSize
	reconstructed := make([]float32, len(p.pixels))
	Unpatchify(reconstructed, raw.Patches, cfg) // [H, W, C]

	out := &ImageReconstruction{
		Original:      DenormalizeImage(p.pixels, size, p.norm),
		Masked:        DenormalizeImage(p.pixels, size, p.norm),
		Reconstructed: DenormalizeImage(reconstructed, size, p.norm),
	}
	grid, patch := cfg.GridSize(), cfg.PatchSize
	for n, hidden := range raw.Masks.Image {
		if !hidden {
			continue
		}
		left, top := (n%grid)*patch, (n/grid)*patch
		for y := top; y < top+patch; y++ {
			for x := left; x < left+patch; x++ {
				out.Masked.SetRGBA(x, y, MaskedPatchColor)
			}
		}
	}
	return out
}

// textReconstruction lists the caption's tokens and the top-k guesses for
// each hidden one.
func (p *Pipeline) textReconstruction(raw *Reconstruction, topK int) *TextReconstruction {
	out := &TextReconstruction{}
	for i, id := range raw.Tokens {
		if id == PadID {
			continue
		}
		out.Tokens = append(out.Tokens, p.tokenizer.Token(id))
		out.Hidden = append(out.Hidden, raw.Masks.Text[i])
	}
	for _, prediction := range raw.HiddenTokenTopK(topK) {
		word := WordPrediction{
			Position: prediction.Position,
			Original: p.tokenizer.Token(prediction.Original),
		}
		for _, candidate := range prediction.Candidates {
			word.Candidates = append(word.Candidates, WordCandidate{
				ID:    candidate.ID,
				Token: p.tokenizer.Token(candidate.ID),
				Prob:  candidate.Prob,
			})
		}
		out.Predictions = append(out.Predictions, word)
	}
	return out
}
