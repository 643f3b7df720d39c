package native

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
	"github.com/gomlx/gomlx/core/tensors"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// weightFn returns the graph node of the parameter with the given
// core.ParamSpec name.
type weightFn func(name string) *Node

// m3aeGraph builds the M3AE forward pass into one graph. Every stage takes
// and returns nodes, so the same code runs in the training step, in the
// forward pass that export is checked against, and in float64 gradient
// checks.
type m3aeGraph struct {
	cfg    core.Config
	weight weightFn
}

// encoderInput is one sub-batch's kept tokens. The image fields are nil for
// a sub-batch without images and the text fields nil for one without text.
type encoderInput struct {
	keptPatches *Node // [B, Ki, p*p*C] normalized pixels of the kept patches
	imageKeep   *Node // [B, Ki] int32 kept patch positions, ascending
	keptText    *Node // [B, Kt] int32 token ids at the kept text positions
	textKeep    *Node // [B, Kt] int32 kept text positions, ascending
	keptTextPad *Node // [B, Kt] bool, true where the kept token is a pad
}

// decoderInput gives the decoder the slot of each kept token. restore[b, j] is
// the index among the kept tokens of the token at position j, or the number
// of kept tokens when position j is hidden and takes the mask embedding.
type decoderInput struct {
	imageRestore *Node // [B, Np] int32, nil without images
	textRestore  *Node // [B, Nt] int32, nil without text
	textPad      *Node // [B, Nt] bool, true at pad positions, nil without text
}

// encoded is the encoder's output with the sizes of its token groups.
type encoded struct {
	tokens       *Node // [B, 1+Ki+Kt, D] after the encoder's final LayerNorm
	batchSize    int
	hasImage     bool
	hasText      bool
	numKeptImage int // Ki, 0 without images
	numKeptText  int // Kt, 0 without text
}

// encode embeds the kept patches and tokens, prepends CLS and runs the
// encoder: the sequence is [CLS, image, text] with the groups the sub-batch
// has.
func (m *m3aeGraph) encode(in encoderInput) encoded {
	cfg := m.cfg
	out := encoded{hasImage: in.imageKeep != nil, hasText: in.textKeep != nil}
	if out.hasImage {
		out.batchSize, out.numKeptImage = in.imageKeep.Shape().Dim(0), in.imageKeep.Shape().Dim(1)
	}
	if out.hasText {
		out.batchSize, out.numKeptText = in.textKeep.Shape().Dim(0), in.textKeep.Shape().Dim(1)
	}
	cls := m.weight("cls_token")
	g, dtype, batch, width := cls.Graph(), cls.DType(), out.batchSize, cfg.EmbedDim
	var parts, pads []*Node

	// CLS: learned, with no position or type embedding.
	parts = append(parts, BroadcastToDims(cls, batch, 1, width))
	pads = append(pads, Zeros(g, shapes.Make(dtypes.Bool, batch, 1)))

	// Image: dense patch embedding + fixed 2-D sin-cos + image type.
	if out.hasImage {
		x := dense(in.keptPatches, m.weight("image_embedding.kernel"), m.weight("image_embedding.bias"))
		table := constTable(g, dtype, sinCos2D(cfg.GridSize(), width), cfg.NumPatches(), width)
		x = Add(x, Gather(table, ExpandAxes(in.imageKeep, -1))) // [B, Ki, D]
		x = Add(x, m.weight("encoder_image_type_embedding"))
		x.AssertDims(batch, out.numKeptImage, width)
		parts = append(parts, x)
		pads = append(pads, Zeros(g, shapes.Make(dtypes.Bool, batch, out.numKeptImage)))
	}

	// Text: embedding table + fixed 1-D sin-cos + text type.
	if out.hasText {
		x := Gather(m.weight("text_embedding.embedding"), ExpandAxes(in.keptText, -1)) // [B, Kt, D]
		table := constTable(g, dtype, sinCos1D(cfg.TextLength, width), cfg.TextLength, width)
		x = Add(x, Gather(table, ExpandAxes(in.textKeep, -1)))
		x = Add(x, m.weight("encoder_text_type_embedding"))
		x.AssertDims(batch, out.numKeptText, width)
		parts = append(parts, x)
		pads = append(pads, in.keptTextPad)
	}

	x := Concatenate(parts, 1) // [B, 1+Ki+Kt, D]
	keyPad := Concatenate(pads, 1)
	out.tokens = m.transformer(x, keyPad, "encoder", cfg.Depth, cfg.NumHeads)
	out.tokens.AssertDims(batch, 1+out.numKeptImage+out.numKeptText, width)
	return out
}

// decode projects the encoder output to the decoder width, puts every kept
// token back at its position with the mask embedding in the hidden slots,
// adds the decoder's sin-cos and type embeddings and runs the decoder. It
// returns [B, 1+Np+Nt, Dd] after the decoder's final LayerNorm, with only the
// groups the sub-batch has.
func (m *m3aeGraph) decode(enc encoded, in decoderInput) *Node {
	cfg := m.cfg
	batch, width := enc.batchSize, cfg.DecoderEmbedDim
	x := dense(enc.tokens, m.weight("decoder_input_projection.kernel"), m.weight("decoder_input_projection.bias"))
	g, dtype := x.Graph(), x.DType()

	parts := []*Node{SliceAxis(x, 1, AxisRange(0, 1))} // CLS [B, 1, Dd]
	pads := []*Node{Zeros(g, shapes.Make(dtypes.Bool, batch, 1))}
	if enc.hasImage {
		kept := SliceAxis(x, 1, AxisRange(1, 1+enc.numKeptImage)) // [B, Ki, Dd]
		image := restoreSlots(kept, m.weight("image_mask_embedding"), in.imageRestore)
		table := constTable(g, dtype, sinCos2D(cfg.GridSize(), width), cfg.NumPatches(), width)
		image = Add(image, ExpandAxes(table, 0))
		image = Add(image, m.weight("decoder_image_type_embedding"))
		image.AssertDims(batch, cfg.NumPatches(), width)
		parts = append(parts, image)
		pads = append(pads, Zeros(g, shapes.Make(dtypes.Bool, batch, cfg.NumPatches())))
	}
	if enc.hasText {
		start := 1 + enc.numKeptImage
		kept := SliceAxis(x, 1, AxisRange(start, start+enc.numKeptText)) // [B, Kt, Dd]
		text := restoreSlots(kept, m.weight("text_mask_embedding"), in.textRestore)
		table := constTable(g, dtype, sinCos1D(cfg.TextLength, width), cfg.TextLength, width)
		text = Add(text, ExpandAxes(table, 0))
		text = Add(text, m.weight("decoder_text_type_embedding"))
		text.AssertDims(batch, cfg.TextLength, width)
		parts = append(parts, text)
		pads = append(pads, in.textPad)
	}

	y := Concatenate(parts, 1) // [B, 1+Np+Nt, Dd]
	keyPad := Concatenate(pads, 1)
	return m.transformer(y, keyPad, "decoder", cfg.DecoderDepth, cfg.DecoderNumHeads)
}

// restoreSlots returns [B, N, Dd]: slot j holds kept[b, restore[b, j]], or
// maskToken where restore[b, j] equals the number of kept tokens K. It
// appends the mask token to each example's kept tokens and gathers once.
func restoreSlots(kept, maskToken, restore *Node) *Node {
	dims := kept.Shape().Dimensions
	batch, numKept, width := dims[0], dims[1], dims[2]
	withMask := Concatenate([]*Node{kept, BroadcastToDims(maskToken, batch, 1, width)}, 1) // [B, K+1, Dd]
	flat := Reshape(withMask, batch*(numKept+1), width)
	return Gather(flat, flatRowIndex(restore, numKept+1, 0)) // [B, N, Dd]
}

// gatherPositions returns x[b, offset+positions[b, j]] for x [B, L, W] and
// positions [B, N]: [B, N, W].
func gatherPositions(x, positions *Node, offset int) *Node {
	dims := x.Shape().Dimensions
	flat := Reshape(x, dims[0]*dims[1], dims[2])
	return Gather(flat, flatRowIndex(positions, dims[1], offset))
}

// flatRowIndex turns per-example row indices idx [B, N] into indices into
// the [B*rowsPerExample, ...] flattening of a batch: [B, N, 1] holding
// b*rowsPerExample + offset + idx[b, j].
func flatRowIndex(idx *Node, rowsPerExample, offset int) *Node {
	dims := idx.Shape().Dimensions
	base := Iota(idx.Graph(), shapes.Make(idx.DType(), dims[0], 1), 0)
	base = AddScalar(MulScalar(base, rowsPerExample), offset)
	return ExpandAxes(Add(idx, base), -1)
}

// transformer runs depth pre-LayerNorm blocks and the final LayerNorm of the
// encoder or decoder named prefix.
func (m *m3aeGraph) transformer(x, keyPad *Node, prefix string, depth, numHeads int) *Node {
	for i := range depth {
		x = m.block(x, keyPad, fmt.Sprintf("%s.Block_%d", prefix, i), numHeads)
	}
	return layerNorm(x, m.weight(prefix+".LayerNorm_0.scale"), m.weight(prefix+".LayerNorm_0.bias"))
}

// block is one pre-LayerNorm transformer block:
// x + attention(LN(x)), then x + MLP(LN(x)) with a tanh-GELU MLP.
func (m *m3aeGraph) block(x, keyPad *Node, prefix string, numHeads int) *Node {
	w := m.weight
	h := layerNorm(x, w(prefix+".LayerNorm_0.scale"), w(prefix+".LayerNorm_0.bias"))
	h = multiHeadAttention(h, keyPad, attentionWeights{
		qkvKernel: w(prefix + ".Attention_0.Dense_0.kernel"), qkvBias: w(prefix + ".Attention_0.Dense_0.bias"),
		outKernel: w(prefix + ".Attention_0.Dense_1.kernel"), outBias: w(prefix + ".Attention_0.Dense_1.bias"),
	}, numHeads)
	x = Add(x, h)

	h = layerNorm(x, w(prefix+".LayerNorm_1.scale"), w(prefix+".LayerNorm_1.bias"))
	h = dense(h, w(prefix+".TransformerMLP_0.fc1.kernel"), w(prefix+".TransformerMLP_0.fc1.bias"))
	h = geluTanh(h)
	h = dense(h, w(prefix+".TransformerMLP_0.fc2.kernel"), w(prefix+".TransformerMLP_0.fc2.bias"))
	return Add(x, h)
}

// pixelHead maps decoder tokens [..., Dd] to patch pixels [..., p*p*C].
func (m *m3aeGraph) pixelHead(x *Node) *Node {
	return dense(x, m.weight("decoder_image_output.Dense_0.kernel"), m.weight("decoder_image_output.Dense_0.bias"))
}

// textHead maps decoder tokens [..., Dd] to vocabulary logits [..., V].
func (m *m3aeGraph) textHead(x *Node) *Node {
	return dense(x, m.weight("decoder_text_output.Dense_0.kernel"), m.weight("decoder_text_output.Dense_0.bias"))
}

// constTable returns a flat float32 table as a [rows, width] constant of
// dtype.
func constTable(g *Graph, dtype dtypes.DType, values []float32, rows, width int) *Node {
	t := ConstTensor(g, tensors.FromFlatDataAndDimensions(values, rows, width))
	if t.DType() != dtype {
		t = ConvertDType(t, dtype)
	}
	return t
}
