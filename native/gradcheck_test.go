package native

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
)

const (
	// finiteDifferenceStep is h of the central difference
	// (f(x+h) - f(x-h)) / 2h, in float64.
	finiteDifferenceStep = 1e-6
	// gradientTolerance bounds |analytic - numeric| / max(1, |numeric|).
	gradientTolerance = 1e-6
)

// scalarFn builds a scalar float64 function of the differentiable inputs.
type scalarFn func(g *Graph, inputs []*Node) *Node

// checkGradient compares GoMLX's gradient of fn at inputs (float64 tensors)
// with central finite differences, at up to maxPerInput elements of each
// input picked at random.
func checkGradient(t *testing.T, backend compute.Backend, name string, fn scalarFn, inputs []*tensors.Tensor, maxPerInput int) {
	t.Helper()
	value := MustNewExec(backend, func(nodes []*Node) *Node { return fn(nodes[0].Graph(), nodes) })
	grads := MustNewExec(backend, func(nodes []*Node) []*Node {
		return Gradient(fn(nodes[0].Graph(), nodes), nodes...)
	})
	args := make([]any, len(inputs))
	for i, in := range inputs {
		args[i] = in
	}
	analytic := grads.MustCall(args...)

	rng := rand.New(rand.NewPCG(1, 2))
	for i, in := range inputs {
		flat := tensors.MustCopyFlatData[float64](in)
		want := tensors.MustCopyFlatData[float64](analytic[i])
		picks := rng.Perm(len(flat))
		if len(picks) > maxPerInput {
			picks = picks[:maxPerInput]
		}
		for _, j := range picks {
			at := func(delta float64) float64 {
				perturbed := append([]float64(nil), flat...)
				perturbed[j] += delta
				call := append([]any(nil), args...)
				call[i] = tensors.FromFlatDataAndDimensions(perturbed, in.Shape().Dimensions...)
				return tensors.ToScalar[float64](value.MustCall1(call...))
			}
			numeric := (at(finiteDifferenceStep) - at(-finiteDifferenceStep)) / (2 * finiteDifferenceStep)
			if diff := math.Abs(want[j]-numeric) / math.Max(1, math.Abs(numeric)); diff > gradientTolerance || math.IsNaN(diff) {
				t.Errorf("%s: gradient of input %d element %d = %.9g, want %.9g by finite differences", name, i, j, want[j], numeric)
			}
		}
	}
}

// randomTensor returns a float64 tensor of dims with values in [-scale, scale).
func randomTensor(rng *rand.Rand, scale float64, dims ...int) *tensors.Tensor {
	size := 1
	for _, d := range dims {
		size *= d
	}
	values := make([]float64, size)
	for i := range values {
		values[i] = scale * (2*rng.Float64() - 1)
	}
	return tensors.FromFlatDataAndDimensions(values, dims...)
}

// weightedSum returns sum(x * w) for a fixed random w, so every output
// element of x reaches the scalar with its own weight.
func weightedSum(x *Node, seed uint64) *Node {
	w := randomTensor(rand.New(rand.NewPCG(seed, 0)), 1, x.Shape().Dimensions...)
	return ReduceAllSum(Mul(x, ConstTensor(x.Graph(), w)))
}

func TestGradientLayerNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 0))
	checkGradient(t, testBackend(t), "layerNorm", func(g *Graph, in []*Node) *Node {
		return weightedSum(layerNorm(in[0], in[1], in[2]), 1)
	}, []*tensors.Tensor{randomTensor(rng, 2, 2, 3, 8), randomTensor(rng, 1, 8), randomTensor(rng, 1, 8)}, 20)
}

func TestGradientGelu(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 0))
	checkGradient(t, testBackend(t), "geluTanh", func(g *Graph, in []*Node) *Node {
		return weightedSum(geluTanh(in[0]), 2)
	}, []*tensors.Tensor{randomTensor(rng, 4, 3, 7)}, 21)
}

func TestGradientAttentionWithPadding(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 0))
	const batch, length, width, heads = 2, 5, 8, 2
	// Example 0 masks keys 3 and 4, example 1 masks none.
	pad := tensors.FromFlatDataAndDimensions([]bool{false, false, false, true, true, false, false, false, false, false}, batch, length)
	checkGradient(t, testBackend(t), "multiHeadAttention", func(g *Graph, in []*Node) *Node {
		out := multiHeadAttention(in[0], ConstTensor(g, pad), attentionWeights{
			qkvKernel: in[1], qkvBias: in[2], outKernel: in[3], outBias: in[4],
		}, heads)
		return weightedSum(out, 3)
	}, []*tensors.Tensor{
		randomTensor(rng, 1, batch, length, width),
		randomTensor(rng, 0.5, width, 3*width), randomTensor(rng, 0.5, 3*width),
		randomTensor(rng, 0.5, width, width), randomTensor(rng, 0.5, width),
	}, 25)
}

func TestGradientImageMSE(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 0))
	target := randomTensor(rng, 1, 2, 3, 4)
	checkGradient(t, testBackend(t), "imageMSE", func(g *Graph, in []*Node) *Node {
		return weightedSum(imageMSE(in[0], ConstTensor(g, target)), 4)
	}, []*tensors.Tensor{randomTensor(rng, 1, 2, 3, 4)}, 24)
}

func TestGradientTextLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 0))
	targets := tensors.FromFlatDataAndDimensions([]int32{3, 0, 6, 1}, 4)
	// The last row is padding: weight 0, no gradient.
	weight := tensors.FromFlatDataAndDimensions([]float64{0.5, 0.5, 1, 0}, 4)
	checkGradient(t, testBackend(t), "textLossSum", func(g *Graph, in []*Node) *Node {
		return textLossSum(in[0], ConstTensor(g, targets), ConstTensor(g, weight))
	}, []*tensors.Tensor{randomTensor(rng, 3, 4, 7)}, 28)
}

func TestGradientRestoreAndGather(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 0))
	// Two kept tokens per example, four slots; value 2 takes the mask token.
	restore := tensors.FromFlatDataAndDimensions([]int32{2, 0, 2, 1, 1, 2, 0, 2}, 2, 4)
	hidden := tensors.FromFlatDataAndDimensions([]int32{0, 2, 1, 3}, 2, 2)
	checkGradient(t, testBackend(t), "restoreSlots+gatherPositions", func(g *Graph, in []*Node) *Node {
		slots := restoreSlots(in[0], in[1], ConstTensor(g, restore)) // [2, 4, 3]
		withCLS := Concatenate([]*Node{in[2], slots}, 1)             // [2, 5, 3]
		return weightedSum(gatherPositions(withCLS, ConstTensor(g, hidden), 1), 6)
	}, []*tensors.Tensor{randomTensor(rng, 1, 2, 2, 3), randomTensor(rng, 1, 1, 1, 3), randomTensor(rng, 1, 2, 1, 3)}, 12)
}

func shapeF64(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float64, dims...) }
func shapeF32(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float32, dims...) }
