package core

import (
	"fmt"
	"sort"
)

// Channels is the number of colour channels of every image the model takes.
const Channels = 3

// Config is the architecture of an M3AE model. JSON names follow the
// official M3AE config keys, so a config read from an official checkpoint
// maps field by field.
type Config struct {
	// ImageSize is the side of the square input image in pixels.
	ImageSize int `json:"image_size"`
	// PatchSize is the side of one square image patch in pixels.
	PatchSize int `json:"patch_size"`
	// TextLength is the number of text positions Nt; captions are
	// truncated or padded with id 0 to this length.
	TextLength int `json:"text_length"`
	// VocabSize is the number of rows V of the text embedding table.
	VocabSize int `json:"vocab_size"`

	// EmbedDim is the encoder width D.
	EmbedDim int `json:"emb_dim"`
	// Depth is the number of encoder blocks.
	Depth int `json:"depth"`
	// NumHeads is the number of encoder attention heads H.
	NumHeads int `json:"num_heads"`

	// DecoderEmbedDim is the decoder width Dd.
	DecoderEmbedDim int `json:"dec_emb_dim"`
	// DecoderDepth is the number of decoder blocks.
	DecoderDepth int `json:"dec_depth"`
	// DecoderNumHeads is the number of decoder attention heads.
	DecoderNumHeads int `json:"dec_num_heads"`

	// MLPRatio is the hidden width of each block's MLP as a multiple of
	// the block width.
	MLPRatio int `json:"mlp_ratio"`
}

// BertVocabSize is the size of the bert-base-uncased WordPiece vocabulary
// that every preset uses.
const BertVocabSize = 30522

// presets holds the named architectures. small, base and large are the
// official M3AE sizes. micro, mini and tiny are ours, narrow enough to train
// on a CPU. micro keeps unit tests fast. mini (encoder D128x6 over 81
// positions, decoder D96x2) is the default model's size. Its int8 file stays
// under 10 MB, and the two 30522-row vocabulary tables, 224 floats per
// token, contain most of its 8.3 M parameters. tiny (encoder D192x6, decoder
// D128x2, 13 M parameters) is the next size up.
var presets = map[string]Config{
	"micro": {
		ImageSize: 16, PatchSize: 4, TextLength: 16, VocabSize: BertVocabSize,
		EmbedDim: 32, Depth: 2, NumHeads: 2,
		DecoderEmbedDim: 32, DecoderDepth: 1, DecoderNumHeads: 2,
		MLPRatio: 4,
	},
	"mini": {
		ImageSize: 64, PatchSize: 8, TextLength: 16, VocabSize: BertVocabSize,
		EmbedDim: 128, Depth: 6, NumHeads: 4,
		DecoderEmbedDim: 96, DecoderDepth: 2, DecoderNumHeads: 4,
		MLPRatio: 4,
	},
	"tiny": {
		ImageSize: 64, PatchSize: 8, TextLength: 16, VocabSize: BertVocabSize,
		EmbedDim: 192, Depth: 6, NumHeads: 3,
		DecoderEmbedDim: 128, DecoderDepth: 2, DecoderNumHeads: 4,
		MLPRatio: 4,
	},
	"small": {
		ImageSize: 256, PatchSize: 16, TextLength: 64, VocabSize: BertVocabSize,
		EmbedDim: 384, Depth: 12, NumHeads: 6,
		DecoderEmbedDim: 512, DecoderDepth: 8, DecoderNumHeads: 16,
		MLPRatio: 4,
	},
	"base": {
		ImageSize: 256, PatchSize: 16, TextLength: 64, VocabSize: BertVocabSize,
		EmbedDim: 768, Depth: 12, NumHeads: 12,
		DecoderEmbedDim: 512, DecoderDepth: 8, DecoderNumHeads: 16,
		MLPRatio: 4,
	},
	"large": {
		ImageSize: 256, PatchSize: 16, TextLength: 64, VocabSize: BertVocabSize,
		EmbedDim: 1024, Depth: 24, NumHeads: 16,
		DecoderEmbedDim: 512, DecoderDepth: 8, DecoderNumHeads: 16,
		MLPRatio: 4,
	},
}

// Preset returns the named architecture: micro, mini, tiny, small, base or
// large.
func Preset(name string) (Config, error) {
	cfg, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown preset %q: use one of %v", name, PresetNames())
	}
	return cfg, nil
}

// PresetNames returns the names Preset accepts, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for name := range presets {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// maxConfigDim bounds every size in a Config, so a malformed config cannot
// ask for absurd sizes. Products such as VocabSize*EmbedDim can still exceed
// a 32-bit int, so code that allocates from them checks the product first.
//
// NOTE: the limits bound memory, not time. Attention costs L^2 per block,
// and a valid config can make L, 1 + Np + Nt, millions long (text_length
// 2^20, or image_size 4096 with patch_size 1), so that one forward pass
// runs for hours.
const maxConfigDim = 1 << 20

// Validate reports the first field that makes c unusable.
func (c Config) Validate() error {
	fields := []struct {
		name  string
		value int
	}{
		{"image_size", c.ImageSize},
		{"patch_size", c.PatchSize},
		{"text_length", c.TextLength},
		{"vocab_size", c.VocabSize},
		{"emb_dim", c.EmbedDim},
		{"depth", c.Depth},
		{"num_heads", c.NumHeads},
		{"dec_emb_dim", c.DecoderEmbedDim},
		{"dec_depth", c.DecoderDepth},
		{"dec_num_heads", c.DecoderNumHeads},
		{"mlp_ratio", c.MLPRatio},
	}
	for _, f := range fields {
		if f.value < 1 || f.value > maxConfigDim {
			return fmt.Errorf("%w: %s = %d, want 1 to %d", ErrInvalidConfig, f.name, f.value, maxConfigDim)
		}
	}
	if c.ImageSize%c.PatchSize != 0 {
		return fmt.Errorf("%w: image_size %d is not a multiple of patch_size %d", ErrInvalidConfig, c.ImageSize, c.PatchSize)
	}
	if c.EmbedDim%c.NumHeads != 0 {
		return fmt.Errorf("%w: emb_dim %d is not a multiple of num_heads %d", ErrInvalidConfig, c.EmbedDim, c.NumHeads)
	}
	if c.DecoderEmbedDim%c.DecoderNumHeads != 0 {
		return fmt.Errorf("%w: dec_emb_dim %d is not a multiple of dec_num_heads %d", ErrInvalidConfig, c.DecoderEmbedDim, c.DecoderNumHeads)
	}
	// The 2-D sin-cos embedding splits the width in two halves, each half
	// into sines and cosines, so both widths must be multiples of 4.
	if c.EmbedDim%4 != 0 || c.DecoderEmbedDim%4 != 0 {
		return fmt.Errorf("%w: emb_dim %d and dec_emb_dim %d must be multiples of 4", ErrInvalidConfig, c.EmbedDim, c.DecoderEmbedDim)
	}
	if c.GridSize() > 4096 {
		return fmt.Errorf("%w: image_size/patch_size = %d patches per side, want at most 4096", ErrInvalidConfig, c.GridSize())
	}

	// PatchDim and the MLP widths are tensor dims, so they must not exceed
	// MaxTensorElements. Checking them here in int64 also keeps
	// ParamSpecs from wrapping them around on 32-bit targets.
	if patchDim := int64(c.PatchSize) * int64(c.PatchSize) * Channels; patchDim > MaxTensorElements {
		return fmt.Errorf("%w: patch_size %d gives patches of %d values, over the limit of %d (MaxTensorElements)",
			ErrInvalidConfig, c.PatchSize, patchDim, MaxTensorElements)
	}
	width := max(c.EmbedDim, c.DecoderEmbedDim)
	if hidden := int64(c.MLPRatio) * int64(width); hidden > MaxTensorElements {
		return fmt.Errorf("%w: mlp_ratio %d times block width %d gives %d MLP hidden units, over the limit of %d (MaxTensorElements)",
			ErrInvalidConfig, c.MLPRatio, width, hidden, MaxTensorElements)
	}
	return nil
}

// GridSize returns the number of patches along one side of the image.
func (c Config) GridSize() int { return c.ImageSize / c.PatchSize }

// NumPatches returns Np, the number of image patches.
func (c Config) NumPatches() int { return c.GridSize() * c.GridSize() }

// PatchDim returns p*p*C, the length of one flattened patch.
func (c Config) PatchDim() int { return c.PatchSize * c.PatchSize * Channels }

// SeqLen returns L = 1 + Np + Nt, the length of the unmasked sequence.
func (c Config) SeqLen() int { return 1 + c.NumPatches() + c.TextLength }

// HeadDim returns Dh, the encoder's attention head width.
func (c Config) HeadDim() int { return c.EmbedDim / c.NumHeads }

// DecoderHeadDim returns the decoder's attention head width.
func (c Config) DecoderHeadDim() int { return c.DecoderEmbedDim / c.DecoderNumHeads }

// NumParams returns the number of float parameters the architecture has.
func (c Config) NumParams() int {
	n := 0
	for _, p := range ParamSpecs(c) {
		n += p.NumElements()
	}
	return n
}
