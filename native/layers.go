package native

import (
	"math"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
)

const (
	// layerNormEpsilon is M3AE's LayerNorm epsilon (flax's default). GoMLX's
	// norm.LayerNorm defaults to 1e-3, which is why the layer is written here.
	layerNormEpsilon = 1e-6
	// attentionMaskValue replaces the score of a masked (pad) key before the
	// softmax, as the official M3AE attention does.
	attentionMaskValue = -1e7
	// geluCubicCoefficient is the cubic term of the tanh approximation of GELU.
	geluCubicCoefficient = 0.044715
)

// dense returns x·kernel + bias for x [..., in], kernel [in, out] and bias
// [out]: the flax Dense layout.
func dense(x, kernel, bias *Node) *Node {
	y := DotGeneral(x, []int{x.Rank() - 1}, nil, kernel, []int{0}, nil) // [..., out]
	return Add(y, ExpandLeftToRank(bias, y.Rank()))
}

// layerNorm normalizes x over its last axis with epsilon 1e-6, then scales
// and shifts it: (x - mean) / sqrt(var + 1e-6) * scale + bias.
func layerNorm(x, scale, bias *Node) *Node {
	mean := ReduceAndKeep(x, ReduceMean, -1)
	centered := Sub(x, mean)
	variance := ReduceAndKeep(Square(centered), ReduceMean, -1)
	normalized := Div(centered, Sqrt(AddScalar(variance, layerNormEpsilon))) // Rsqrt has no gradient in GoMLX v0.28.2.
	return Add(Mul(normalized, ExpandLeftToRank(scale, x.Rank())), ExpandLeftToRank(bias, x.Rank()))
}

// geluTanh is the tanh approximation of GELU that M3AE uses (flax's
// nn.gelu default): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
// GoMLX's activation.Gelu is the exact erf form.
func geluTanh(x *Node) *Node {
	cube := Mul(Mul(x, x), x)
	inner := MulScalar(Add(x, MulScalar(cube, geluCubicCoefficient)), math.Sqrt(2/math.Pi))
	return Mul(MulScalar(x, 0.5), OnePlus(tanh(inner)))
}

// attentionWeights are one attention layer's parameters: qkv [D, 3D] whose
// output holds q, k and v one after the other, each split into H heads of Dh,
// and the output projection [D, D].
type attentionWeights struct {
	qkvKernel, qkvBias *Node
	outKernel, outBias *Node
}

// multiHeadAttention is self-attention over x [B, L, D] with H heads. keyPad
// [B, L] is true at pad positions: their scores are set to -1e7 before the
// softmax, so no query attends to them. Scores are scaled by 1/sqrt(Dh).
func multiHeadAttention(x, keyPad *Node, w attentionWeights, numHeads int) *Node {
	dims := x.Shape().Dimensions
	batch, length, width := dims[0], dims[1], dims[2]
	headDim := width / numHeads

	// The layouts suit GoMLX's Go backend, whose batched matmul wants one
	// leading batch axis and the left operand's contracting axis last. With
	// q and v as [B, H, L, Dh] and k as [B, H, Dh, L], both products are
	// plain batched matmuls. Einsums on [B, L, H, Dh] make the backend
	// transpose around each product instead: a forward and backward pass of
	// a B64, L81, D128, 4-head layer took 1.24-1.36 s of CPU that way and
	// 1.03-1.10 s this way (2-core AMD EPYC, GOEXPERIMENT=simd).
	qkv := dense(x, w.qkvKernel, w.qkvBias)
	qkv = Reshape(qkv, batch, length, 3, numHeads, headDim)
	qkv = TransposeAllAxes(qkv, 2, 0, 3, 1, 4) // [3, B, H, L, Dh]
	q := Reshape(SliceAxis(qkv, 0, AxisElem(0)), batch, numHeads, length, headDim)
	k := Reshape(SliceAxis(qkv, 0, AxisElem(1)), batch, numHeads, length, headDim)
	v := Reshape(SliceAxis(qkv, 0, AxisElem(2)), batch, numHeads, length, headDim)
	kT := TransposeAllAxes(k, 0, 1, 3, 2) // [B, H, Dh, L]

	scores := DotGeneral(q, []int{3}, []int{0, 1}, kT, []int{2}, []int{0, 1}) // [B, H, L, L]
	scores = MulScalar(scores, 1/math.Sqrt(float64(headDim)))
	padded := BroadcastToDims(Reshape(keyPad, batch, 1, 1, length), batch, numHeads, length, length)
	scores = Where(padded, scalarLike(scores, attentionMaskValue), scores)
	probs := softmax(scores)

	out := DotGeneral(probs, []int{3}, []int{0, 1}, v, []int{2}, []int{0, 1}) // [B, H, L, Dh]
	out = TransposeAllAxes(out, 0, 2, 1, 3)                                   // [B, L, H, Dh]
	out = Reshape(out, batch, length, width)
	out.AssertDims(batch, length, width)
	return dense(out, w.outKernel, w.outBias)
}

// scalarLike returns a scalar constant of value with x's dtype.
func scalarLike(x *Node, value float64) *Node {
	return Scalar(x.Graph(), x.DType(), value)
}
