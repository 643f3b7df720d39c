package core

import (
	"fmt"
	"math"
)

// Model runs the M3AE forward pass over one example at a time. It keeps
// its weights, position tables and every scratch buffer, so Embed and
// Reconstruct allocate only the slices they return.
//
// A Model is not safe for concurrent use, because every call writes the
// shared scratch buffers. Use one Model per goroutine. Natively, a large
// matrix product runs on several goroutines inside one call, with the same
// bits as on one.
//
// NewModel copies every dense kernel into column panels for the matmul
// kernels, so a Model does not share the kernels with its ModelFile or
// with other Models. The other tensors (embeddings, LayerNorms) stay
// shared. A Model of an int8 file keeps its kernels int8 in the panels and
// computes in float32. Each matrix product dequantizes two panels, 16
// kernel columns, at a time into a scratch tile, and the text embedding
// dequantizes one row per token. So its weights take about a quarter of
// the float32 memory, because only the biases, LayerNorm parameters and
// scales stay float32.
type Model struct {
	cfg Config
	w   weights
	pos positionTables
	s   scratch
}

// embeddingTable is the text embedding [V, D]. A float32 file sets values
// and an int8 file sets q and scale, whose element (id, d) is
// float32(q[id*D+d]) * scale[id].
type embeddingTable struct {
	width  int       // D
	values []float32 // [V, D], the row of id at id*D
	q      []int8    // [V, D], the row of id at id*D
	scale  []float32 // [V], the scale of row id at id
}

// norm is one LayerNorm's affine parameters.
type norm struct {
	scale []float32 // [width]
	bias  []float32 // [width]
}

// block is one pre-LayerNorm transformer block:
// x += proj(attention(qkv(norm0(x)))); x += fc2(gelu(fc1(norm1(x)))).
type block struct {
	norm0 norm  // LayerNorm_0
	qkv   dense // Attention_0.Dense_0, [width, 3*width]: q, k, v column blocks
	proj  dense // Attention_0.Dense_1, [width, width]
	norm1 norm  // LayerNorm_1
	fc1   dense // TransformerMLP_0.fc1, [width, MLPRatio*width]
	fc2   dense // TransformerMLP_0.fc2, [MLPRatio*width, width]
}

// transformer is a stack of blocks with a final LayerNorm: the encoder
// (width D) or the decoder (width Dd).
type transformer struct {
	width    int
	numHeads int
	hidden   int // MLP width, MLPRatio*width
	blocks   []block
	norm     norm // LayerNorm_0, after the last block
}

// weights holds every parameter of the model. The dense layers hold their
// kernels packed into panels, and every other slice aliases the ModelFile's
// tensor data in its stored row-major layout.
type weights struct {
	clsToken         []float32 // [D]
	encoderImageType []float32 // [D]
	encoderTextType  []float32 // [D]
	decoderImageType []float32 // [Dd]
	decoderTextType  []float32 // [Dd]
	imageMask        []float32 // [Dd], fills hidden image slots in the decoder
	textMask         []float32 // [Dd], fills hidden text slots in the decoder
	textEmbedding    embeddingTable

	imageEmbedding dense // [p*p*C, D]
	encoder        transformer
	decoderInput   dense // decoder_input_projection, [D, Dd]
	decoder        transformer
	imageOutput    dense // decoder_image_output.Dense_0, [Dd, p*p*C]
	textOutput     dense // decoder_text_output.Dense_0, [Dd, V]
}

// positionTables holds the fixed sin-cos embeddings, computed once.
type positionTables struct {
	encoderImage []float32 // [Np, D], 2-D, patch n at n*D
	encoderText  []float32 // [Nt, D], 1-D, position t at t*D
	decoderImage []float32 // [Np, Dd]
	decoderText  []float32 // [Nt, Dd]
}

// scratch holds the buffers of one forward pass, allocated once for the
// full sequence L = 1 + Np + Nt and the wider of D and Dd (W below).
// Transformer buffers hold n rows of the current width, row i at i*width.
type scratch struct {
	x      []float32 // [L, W] residual stream: CLS, image tokens, text tokens
	normed []float32 // [L, W] LayerNorm output, then each sublayer's output
	qkv    []float32 // [L, 3W] qkv dense output, row i at i*3*width
	heads  []float32 // [L, W] attention heads concatenated
	hidden []float32 // [L, MLPRatio*W] MLP hidden layer, row i at i*hidden
	// probs holds one query's attention scores, then probabilities [L],
	// followed by one head's keys transposed [Dh, L rounded up to 8], for
	// the wider Dh of the encoder and the decoder.
	probs  []float32
	keyPad []bool // [L] true where the token at that row is a text pad

	patches   []float32 // [Np, p*p*C] kept patches gathered in ascending order
	projected []float32 // [L, Dd] decoder input projection of the encoder rows
	// matMul holds the int8 dequantization tiles and the state of products
	// split across goroutines.
	matMul matMulScratch
}

// NewModel checks mf with (*ModelFile).Validate, which checks every tensor
// that the config and the quantization scheme call for by name, dtype,
// shape and length, and builds a Model. It accepts float32 and int8 files.
// It rejects a config whose buffers would take more than 4 GiB, an error
// that wraps ErrInvalidModelFile and ErrInvalidConfig. The Model reads the
// tensors' data in place, so mf's tensors must not change while the Model
// is in use.
func NewModel(mf *ModelFile) (*Model, error) {
	if err := mf.Validate(); err != nil {
		return nil, fmt.Errorf("new model: %w", err)
	}
	cfg := mf.Config
	if err := checkBufferSizes(cfg); err != nil {
		return nil, fmt.Errorf("new model: %w: %w", ErrInvalidModelFile, err)
	}

	m := &Model{cfg: cfg}
	m.w = bindWeights(cfg, mf.Tensors)
	grid := cfg.GridSize()
	m.pos = positionTables{
		encoderImage: sinCos2D(grid, cfg.EmbedDim),
		encoderText:  sinCos1D(cfg.TextLength, cfg.EmbedDim),
		decoderImage: sinCos2D(grid, cfg.DecoderEmbedDim),
		decoderText:  sinCos1D(cfg.TextLength, cfg.DecoderEmbedDim),
	}
	m.s = newScratch(cfg)
	return m, nil
}

// Config returns the model's architecture.
func (m *Model) Config() Config { return m.cfg }

// bindWeights points the weights at the tensors, which Validate has
// already checked, and packs every dense kernel into panels. A kernel or
// table stored as I8 keeps its int8 values with the F32 scales stored
// beside it.
func bindWeights(cfg Config, tensors map[string]*Tensor) weights {
	get := func(name string) []float32 { return tensors[name].F32 }
	getDense := func(prefix string) dense {
		bias := get(prefix + ".bias")
		kernel := tensors[prefix+".kernel"]
		in, out := kernel.Shape[0], kernel.Shape[1]
		if kernel.DType == I8 {
			return packDenseInt8(kernel.I8, get(prefix+".kernel"+ScaleSuffix), bias, in, out)
		}
		return packDense(kernel.F32, bias, in, out)
	}
	getTable := func(name string, width int) embeddingTable {
		e := embeddingTable{width: width}
		table := tensors[name]
		if table.DType == I8 {
			e.q, e.scale = table.I8, get(name+ScaleSuffix)
		} else {
			e.values = table.F32
		}
		return e
	}
	getNorm := func(prefix string) norm {
		return norm{scale: get(prefix + ".scale"), bias: get(prefix + ".bias")}
	}
	getTransformer := func(prefix string, depth, width, numHeads int) transformer {
		t := transformer{
			width:    width,
			numHeads: numHeads,
			hidden:   cfg.MLPRatio * width,
			blocks:   make([]block, depth),
			norm:     getNorm(prefix + ".LayerNorm_0"),
		}
		for i := range t.blocks {
			b := fmt.Sprintf("%s.Block_%d.", prefix, i)
			t.blocks[i] = block{
				norm0: getNorm(b + "LayerNorm_0"),
				qkv:   getDense(b + "Attention_0.Dense_0"),
				proj:  getDense(b + "Attention_0.Dense_1"),
				norm1: getNorm(b + "LayerNorm_1"),
				fc1:   getDense(b + "TransformerMLP_0.fc1"),
				fc2:   getDense(b + "TransformerMLP_0.fc2"),
			}
		}
		return t
	}

	return weights{
		clsToken:         get("cls_token"),
		encoderImageType: get("encoder_image_type_embedding"),
		encoderTextType:  get("encoder_text_type_embedding"),
		decoderImageType: get("decoder_image_type_embedding"),
		decoderTextType:  get("decoder_text_type_embedding"),
		imageMask:        get("image_mask_embedding"),
		textMask:         get("text_mask_embedding"),
		textEmbedding:    getTable("text_embedding.embedding", cfg.EmbedDim),
		imageEmbedding:   getDense("image_embedding"),
		encoder:          getTransformer("encoder", cfg.Depth, cfg.EmbedDim, cfg.NumHeads),
		decoderInput:     getDense("decoder_input_projection"),
		decoder:          getTransformer("decoder", cfg.DecoderDepth, cfg.DecoderEmbedDim, cfg.DecoderNumHeads),
		imageOutput:      getDense("decoder_image_output.Dense_0"),
		textOutput:       getDense("decoder_text_output.Dense_0"),
	}
}

// maxBufferBytes bounds the float32 buffers that a Model allocates and that
// one Reconstruct call returns. text_length and image_size size no weight
// tensor, so a model file of a few kilobytes can otherwise ask for
// terabytes, and a wasm32 memory holds at most 4 GiB.
const maxBufferBytes = MaxModelFileSize

// checkBufferSizes rejects a config whose scratch buffers, position tables
// and Reconstruct outputs together exceed maxBufferBytes. It counts in
// uint64 after cfg.Validate, so no product can overflow.
func checkBufferSizes(cfg Config) error {
	seqLen := uint64(cfg.SeqLen())
	width := uint64(max(cfg.EmbedDim, cfg.DecoderEmbedDim))
	embedWidths := uint64(cfg.EmbedDim + cfg.DecoderEmbedDim)
	imageValues := uint64(cfg.NumPatches()) * uint64(cfg.PatchDim())
	buffers := []struct {
		name     string
		elements uint64
	}{
		{"transformer activations [L, W]", 6 * seqLen * width},
		{"attention scores and keys [L + Dh*L]", seqLen + uint64(maxHeadDim(cfg))*((seqLen+7)&^7)},
		{"MLP activations [L, mlp_ratio*W]", seqLen * uint64(cfg.MLPRatio) * width},
		{"decoder input projections [L, Dd]", seqLen * uint64(cfg.DecoderEmbedDim)},
		{"encoder outputs [L, D]", seqLen * uint64(cfg.EmbedDim)},
		{"position tables [Np+Nt, D+Dd]", uint64(cfg.NumPatches()+cfg.TextLength) * embedWidths},
		{"image patch buffers [Np, p*p*C]", 3 * imageValues},
		{"token logits [Nt, V]", uint64(cfg.TextLength) * uint64(cfg.VocabSize)},
	}
	var totalBytes uint64
	largest := buffers[0]
	for _, b := range buffers {
		totalBytes += 4 * b.elements
		if b.elements > largest.elements {
			largest = b
		}
	}
	if totalBytes > maxBufferBytes {
		return fmt.Errorf("%w: running the model needs %d bytes of buffers, over the limit of %d; the %s take the most, %d values: lower image_size, text_length or vocab_size",
			ErrInvalidConfig, totalBytes, maxBufferBytes, largest.name, largest.elements)
	}
	return nil
}

// linear sets dst[rows, out] = x[rows, in]·kernel + bias for a float32 or
// an int8 layer of in inputs and out outputs.
func (m *Model) linear(dst, x []float32, d *dense, rows, in, out int) {
	if in != d.in || out != d.out {
		panic(fmt.Sprintf("core.Model.linear: called with %d inputs and %d outputs on a %dx%d layer", in, out, d.in, d.out))
	}
	matMul(dst, x, d, rows, &m.s.matMul)
}

// lookup sets dst[D] to the embedding of id, dequantizing it from an int8
// table.
func (e *embeddingTable) lookup(dst []float32, id int) {
	if e.q != nil {
		dequantizeRow(dst, e.q[id*e.width:(id+1)*e.width], e.scale[id])
		return
	}
	copy(dst, e.values[id*e.width:(id+1)*e.width])
}

// maxHeadDim returns the wider attention head of the encoder and the
// decoder.
func maxHeadDim(cfg Config) int {
	return max(cfg.HeadDim(), cfg.DecoderHeadDim())
}

func newScratch(cfg Config) scratch {
	seqLen := cfg.SeqLen()
	width := max(cfg.EmbedDim, cfg.DecoderEmbedDim)
	return scratch{
		x:         make([]float32, seqLen*width),
		normed:    make([]float32, seqLen*width),
		qkv:       make([]float32, seqLen*3*width),
		heads:     make([]float32, seqLen*width),
		hidden:    make([]float32, seqLen*cfg.MLPRatio*width),
		probs:     make([]float32, attentionScratchSize(seqLen, maxHeadDim(cfg))),
		keyPad:    make([]bool, seqLen),
		patches:   make([]float32, cfg.NumPatches()*cfg.PatchDim()),
		projected: make([]float32, seqLen*cfg.DecoderEmbedDim),
	}
}

// Inputs is one example, already preprocessed. At least one modality must
// be present.
type Inputs struct {
	// Patches are the normalized image patches [Np, p*p*C], patch n at
	// n*p*p*C, each patch in (row, column, channel) order. Nil or empty
	// means no image.
	Patches []float32
	// Tokens are the WordPiece ids [Nt], padded with PadID to the model's
	// TextLength. Nil or empty means no text.
	Tokens []int32
}

func (in Inputs) hasImage() bool { return len(in.Patches) > 0 }
func (in Inputs) hasText() bool  { return len(in.Tokens) > 0 }

// checkInputs reports the first part of in that does not fit the model.
func (m *Model) checkInputs(in Inputs) error {
	cfg := m.cfg
	if !in.hasImage() && !in.hasText() {
		return fmt.Errorf("%w: inputs have neither image patches nor text tokens: pass an image, a text or both", ErrInvalidInput)
	}
	if in.hasImage() {
		want := cfg.NumPatches() * cfg.PatchDim()
		if len(in.Patches) != want {
			return fmt.Errorf("%w: image has %d patch values, want %d (%d patches of %d values for image size %d, patch size %d)",
				ErrInvalidInput, len(in.Patches), want, cfg.NumPatches(), cfg.PatchDim(), cfg.ImageSize, cfg.PatchSize)
		}
		for i, v := range in.Patches {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("%w: patch value %d (patch %d) is %v: pass finite normalized pixels",
					ErrInvalidInput, i, i/cfg.PatchDim(), v)
			}
		}
	}
	if in.hasText() {
		if len(in.Tokens) != cfg.TextLength {
			return fmt.Errorf("%w: text has %d tokens, want %d: truncate or pad with id %d to the model's text length",
				ErrInvalidInput, len(in.Tokens), cfg.TextLength, PadID)
		}
		for t, id := range in.Tokens {
			if id < 0 || int(id) >= cfg.VocabSize {
				return fmt.Errorf("%w: token %d has id %d, want 0 to %d (vocab size %d)",
					ErrInvalidInput, t, id, cfg.VocabSize-1, cfg.VocabSize)
			}
		}
	}
	return nil
}
