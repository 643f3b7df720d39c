package native

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
)

// TestExpNonPositive compares the graph-built exp, softmax and tanh and the
// gradients of exp and tanh with float64 math on a grid that covers their
// range.
func TestExpNonPositive(t *testing.T) {
	backend := testBackend(t)
	var xs []float32
	for x := -100.0; x <= 0; x += 0.01 {
		xs = append(xs, float32(x))
	}
	outputs := MustExecOnceN(backend, func(x *Node) []*Node {
		y := expNonPositive(x)
		th := tanh(x)
		expGrad := Gradient(ReduceAllSum(y), x)[0]
		tanhGrad := Gradient(ReduceAllSum(th), x)[0]
		return []*Node{y, expGrad, th, tanh(Neg(x)), tanhGrad}
	}, xs)
	exps, grads := outputs[0].Value().([]float32), outputs[1].Value().([]float32)
	tanhs, negTanhs := outputs[2].Value().([]float32), outputs[3].Value().([]float32)
	tanhGrads := outputs[4].Value().([]float32)
	for i, x := range xs {
		want := math.Exp(max(float64(x), expMinInput))
		if rel := math.Abs(float64(exps[i])-want) / want; rel > 3e-7 {
			t.Errorf("expNonPositive(%g) = %g, want %g (relative error %.2g > 3e-7)", x, exps[i], want, rel)
		}
		if x > expMinInput {
			if rel := math.Abs(float64(grads[i])-want) / want; rel > 3e-6 {
				t.Errorf("gradient of expNonPositive at %g = %g, want %g (relative error %.2g > 3e-6)", x, grads[i], want, rel)
			}
		}
		wantTanh := math.Tanh(float64(x))
		if d := math.Abs(float64(tanhs[i]) - wantTanh); d > 2e-7 {
			t.Errorf("tanh(%g) = %g, want %g", x, tanhs[i], wantTanh)
		}
		if d := math.Abs(float64(tanhGrads[i]) - (1 - wantTanh*wantTanh)); d > 1e-6 {
			t.Errorf("gradient of tanh at %g = %g, want %g", x, tanhGrads[i], 1-wantTanh*wantTanh)
		}
		if d := math.Abs(float64(negTanhs[i]) + wantTanh); d > 2e-7 {
			t.Errorf("tanh(%g) = %g, want %g", -x, negTanhs[i], -wantTanh)
		}
	}

	probs := MustExecOnce(backend, func(x *Node) *Node { return softmax(x) }, [][]float32{{1, 2, 3}, {-50, 0, 50}}).Value().([][]float32)
	for i, row := range [][]float64{{1, 2, 3}, {-50, 0, 50}} {
		var sum float64
		for _, v := range row {
			sum += math.Exp(v - row[2])
		}
		for j, v := range row {
			want := math.Exp(v-row[2]) / sum
			if d := math.Abs(float64(probs[i][j]) - want); d > 1e-7 {
				t.Errorf("softmax(%v)[%d] = %g, want %g", row, j, probs[i][j], want)
			}
		}
	}
}
