package onnx

import (
	"fmt"
	"math"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Constants of the forward pass, the core's values.
const (
	// layerNormEps is the epsilon of every LayerNorm, flax's default.
	layerNormEps = 1e-6
	// maskedScore replaces the attention score of a padding key before the
	// softmax, as the official M3AE code does. Its exp is an exact 0.
	maskedScore = -1e7
	// geluScale and geluCubic are sqrt(2/pi) and the cubic coefficient of
	// the tanh approximation of GELU.
	geluScale = 0.7978845608028654
	geluCubic = 0.044715
)

// builder adds the M3AE forward pass to a graph, one layer at a time, with
// the weights of one model file. Every tensor in the graph has a leading
// batch axis.
type builder struct {
	g     *graph
	mf    *core.ModelFile
	cfg   core.Config
	specs map[string]core.ParamSpec
	// params maps a parameter name to its initializer, so a weight is
	// stored once however often the graph reads it.
	params map[string]string
	// batch is a 1-D int64 tensor [1] holding the batch size.
	batch string
	// err is the first error met while building. Later layers still add
	// nodes, and the caller checks err once at the end.
	err error
}

func newBuilder(mf *core.ModelFile) *builder {
	specs := make(map[string]core.ParamSpec)
	for _, spec := range core.ParamSpecs(mf.Config) {
		specs[spec.Name] = spec
	}
	return &builder{
		g:      newGraph(),
		mf:     mf,
		cfg:    mf.Config,
		specs:  specs,
		params: make(map[string]string),
	}
}

// param returns the initializer of the parameter called name, stored as
// float32 with the parameter's shape. An int8 tensor is dequantized with
// the core's rule, float32(q) * scale, its scale taken per column for a
// dense kernel and per row for the text embedding table.
func (b *builder) param(name string) string {
	if init, ok := b.params[name]; ok {
		return init
	}
	spec, ok := b.specs[name]
	if !ok {
		b.fail(fmt.Errorf("parameter %q is not part of the architecture", name))
		return name
	}
	values, err := b.float32Values(spec)
	if err != nil {
		b.fail(err)
		return name
	}
	init := b.g.float32Initializer(name, spec.Shape, values)
	b.params[name] = init
	return init
}

func (b *builder) float32Values(spec core.ParamSpec) ([]float32, error) {
	t, err := b.mf.Tensor(spec.Name)
	if err != nil {
		return nil, err
	}
	if t.DType == core.F32 {
		return t.F32, nil
	}
	q, scale, err := b.mf.Int8(spec.Name)
	if err != nil {
		return nil, err
	}
	rows, cols := spec.Shape[0], spec.Shape[1]
	perRow := spec.Int8Granularity() == core.Int8PerRow
	values := make([]float32, rows*cols)
	for r := range rows {
		for c := range cols {
			// Per-row tables have one scale per row, so scale[c] would
			// read past its end when the table has fewer rows than columns.
			var s float32
			if perRow {
				s = scale[r]
			} else {
				s = scale[c]
			}
			values[r*cols+c] = float32(float32(q[r*cols+c]) * s)
		}
	}
	return values, nil
}

func (b *builder) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// constFloat32 stores a float constant of the given shape under name.
func (b *builder) constFloat32(name string, dims []int, data []float32) string {
	return b.g.float32Initializer(name, dims, data)
}

// setBatch records the batch size, axis 0 of input.
func (b *builder) setBatch(input string) {
	b.batch = b.g.opWith("Shape", []string{input}, intAttribute("start", 0), intAttribute("end", 1))
}

// broadcastRows expands a learned [1, 1, width] vector to [batch, rows,
// width].
func (b *builder) broadcastRows(vector string, rows, width int) string {
	g := b.g
	shape := g.opWith("Concat", []string{b.batch, g.constInt64(int64(rows), int64(width))}, intAttribute("axis", 0))
	return g.op("Expand", vector, shape)
}

// dense returns x·kernel + bias for the dense layer called prefix.
func (b *builder) dense(x, prefix string) string {
	g := b.g
	product := g.op("MatMul", x, b.param(prefix+".kernel"))
	return g.op("Add", product, b.param(prefix+".bias"))
}

// layerNorm normalizes the last axis of x with the LayerNorm called prefix.
func (b *builder) layerNorm(x, prefix string) string {
	return b.g.opWith("LayerNormalization",
		[]string{x, b.param(prefix + ".scale"), b.param(prefix + ".bias")},
		intAttribute("axis", -1), floatAttribute("epsilon", layerNormEps))
}

// gelu returns the tanh approximation of GELU that the core computes,
// 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))).
func (b *builder) gelu(x string) string {
	g := b.g
	cube := g.op("Mul", g.op("Mul", x, x), x)
	inner := g.op("Add", x, g.op("Mul", cube, g.scalarFloat32(geluCubic)))
	tanh := g.op("Tanh", g.op("Mul", inner, g.scalarFloat32(geluScale)))
	half := g.op("Mul", x, g.scalarFloat32(0.5))
	return g.op("Mul", half, g.op("Add", tanh, g.scalarFloat32(1)))
}

// transformer applies the blocks and the final LayerNorm of the encoder
// (prefix "encoder") or decoder to x [batch, L, width]. keyMask is a bool
// [batch, 1, 1, L] tensor, true for keys that attention must ignore, or ""
// when no key is masked.
func (b *builder) transformer(x, prefix string, depth, width, numHeads int, keyMask string) string {
	for i := range depth {
		b.g.scope = fmt.Sprintf("%s.Block_%d", prefix, i)
		x = b.block(x, b.g.scope, width, numHeads, keyMask)
	}
	b.g.scope = prefix
	x = b.layerNorm(x, prefix+".LayerNorm_0")
	b.g.scope = ""
	return x
}

// block is one pre-LayerNorm transformer block:
// x += proj(attention(qkv(LayerNorm_0(x)))); x += fc2(gelu(fc1(LayerNorm_1(x)))).
func (b *builder) block(x, prefix string, width, numHeads int, keyMask string) string {
	g := b.g
	headDim := width / numHeads

	// Attention sublayer. The qkv output [batch, L, 3*width] holds q, k and
	// v, each [H, Dh] with head h at columns h*Dh..(h+1)*Dh-1 of its third.
	normed := b.layerNorm(x, prefix+".LayerNorm_0")
	qkv := b.dense(normed, prefix+".Attention_0.Dense_0")
	split := g.op("Reshape", qkv, g.constInt64(0, 0, 3, int64(numHeads), int64(headDim)))
	split = g.opWith("Transpose", []string{split}, intsAttribute("perm", 2, 0, 3, 1, 4)) // [3, batch, H, L, Dh]
	q := g.opWith("Gather", []string{split, g.scalarInt64(0)}, intAttribute("axis", 0))
	k := g.opWith("Gather", []string{split, g.scalarInt64(1)}, intAttribute("axis", 0))
	v := g.opWith("Gather", []string{split, g.scalarInt64(2)}, intAttribute("axis", 0))

	// Scores q·k * Dh^-0.5 [batch, H, L, L], masked keys replaced by
	// maskedScore, then a softmax over the keys.
	keysT := g.opWith("Transpose", []string{k}, intsAttribute("perm", 0, 1, 3, 2))
	scores := g.op("MatMul", q, keysT)
	scale := float32(1 / math.Sqrt(float64(headDim)))
	scores = g.op("Mul", scores, g.scalarFloat32(scale))
	if keyMask != "" {
		scores = g.op("Where", keyMask, g.scalarFloat32(maskedScore), scores)
	}
	probs := g.opWith("Softmax", []string{scores}, intAttribute("axis", -1))

	// Heads [batch, H, L, Dh] concatenated back to [batch, L, width].
	heads := g.op("MatMul", probs, v)
	heads = g.opWith("Transpose", []string{heads}, intsAttribute("perm", 0, 2, 1, 3))
	heads = g.op("Reshape", heads, g.constInt64(0, 0, int64(width)))
	x = g.op("Add", x, b.dense(heads, prefix+".Attention_0.Dense_1"))

	// MLP sublayer.
	normed = b.layerNorm(x, prefix+".LayerNorm_1")
	hidden := b.gelu(b.dense(normed, prefix+".TransformerMLP_0.fc1"))
	return g.op("Add", x, b.dense(hidden, prefix+".TransformerMLP_0.fc2"))
}

// imageTokens embeds every patch of patches [batch, Np, p*p*C] and adds
// the 2-D position and the encoder image type embeddings: [batch, Np, D].
func (b *builder) imageTokens(patches string) string {
	g, cfg := b.g, b.cfg
	x := b.dense(patches, "image_embedding")
	position := b.constFloat32("encoder_image_position_embedding",
		[]int{cfg.NumPatches(), cfg.EmbedDim}, core.ImagePositionEmbedding(cfg.GridSize(), cfg.EmbedDim))
	x = g.op("Add", x, position)
	return g.op("Add", x, b.param("encoder_image_type_embedding"))
}

// textTokens looks up the embedding of every id of tokens [batch, Nt] and
// adds the 1-D position and the encoder text type embeddings:
// [batch, Nt, D].
func (b *builder) textTokens(tokens string) string {
	g, cfg := b.g, b.cfg
	x := g.opWith("Gather", []string{b.param("text_embedding.embedding"), tokens}, intAttribute("axis", 0))
	position := b.constFloat32("encoder_text_position_embedding",
		[]int{cfg.TextLength, cfg.EmbedDim}, core.TextPositionEmbedding(cfg.TextLength, cfg.EmbedDim))
	x = g.op("Add", x, position)
	return g.op("Add", x, b.param("encoder_text_type_embedding"))
}

// padding returns a float [batch, Nt] tensor that is 1 where tokens holds
// the pad id and 0 elsewhere.
func (b *builder) padding(tokens string) string {
	g := b.g
	isPad := g.op("Equal", tokens, g.scalarInt32(core.PadID))
	return g.opWith("Cast", []string{isPad}, intAttribute("to", dataTypeFloat))
}

// keyMask returns the [batch, L] float padding of a whole sequence and its
// bool [batch, 1, 1, L] attention mask, from the padding [batch, N] of its
// last N rows. prefix is a 1-D int64 tensor [1] holding the number of rows
// before them, which are never padding.
func (b *builder) keyMask(prefix, padding string) (full, mask string) {
	g := b.g
	pads := g.opWith("Concat", []string{g.constInt64(0), prefix, g.constInt64(0, 0)}, intAttribute("axis", 0))
	full = g.op("Pad", padding, pads)
	mask = g.opWith("Cast", []string{full}, intAttribute("to", dataTypeBool))
	mask = g.op("Unsqueeze", mask, g.constInt64(1, 2))
	return full, mask
}

// rowIndex expands keep [batch, K] int64 to [batch, K, width], the index
// tensor of GatherElements and ScatterElements that selects whole rows
// along axis 1.
func (b *builder) rowIndex(keep string, width int) string {
	g := b.g
	shape := g.opWith("Concat", []string{g.op("Shape", keep), g.constInt64(int64(width))}, intAttribute("axis", 0))
	return g.op("Expand", g.op("Unsqueeze", keep, g.constInt64(2)), shape)
}

// gatherRows returns rows keep [batch, K] int64 of x [batch, N, width]:
// [batch, K, width].
func (b *builder) gatherRows(x, keep string, width int) string {
	return b.g.opWith("GatherElements", []string{x, b.rowIndex(keep, width)}, intAttribute("axis", 1))
}

// scatterRows returns x [batch, N, width] with rows keep [batch, K] int64
// replaced by the rows of updates [batch, K, width].
func (b *builder) scatterRows(x, keep, updates string, width int) string {
	return b.g.opWith("ScatterElements", []string{x, b.rowIndex(keep, width), updates}, intAttribute("axis", 1))
}

// sliceRows returns rows start..end-1 of x along axis 1. start and end are
// 1-D int64 tensors [1].
func (b *builder) sliceRows(x, start, end string) string {
	g := b.g
	return g.op("Slice", x, start, end, g.constInt64(1))
}

// concatRows joins parts along axis 1, or returns the only part.
func (b *builder) concatRows(parts []string) string {
	if len(parts) == 1 {
		return parts[0]
	}
	return b.g.opWith("Concat", parts, intAttribute("axis", 1))
}
