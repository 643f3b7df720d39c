package core

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestAttentionTransposedKeepsBits runs attention with the scratch that
// transposes the keys and with n elements only, which reads the keys in
// place, and requires the same bits from both, for head widths that leave
// every SIMD tail and for pads.
func TestAttentionTransposedKeepsBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	for _, s := range []struct{ n, numHeads, headDim int }{
		{1, 1, 1}, {3, 2, 4}, {7, 1, 5}, {9, 2, 8}, {17, 3, 24}, {33, 2, 32}, {81, 3, 64}, {40, 1, 37},
	} {
		width := s.numHeads * s.headDim
		qkv := uniformFloats(rng, s.n*3*width, 2)
		keyPad := make([]bool, s.n)
		for j := range keyPad {
			keyPad[j] = j > 0 && rng.IntN(4) == 0
		}
		name := fmt.Sprintf("n %d, %d heads of %d", s.n, s.numHeads, s.headDim)

		want := make([]float32, s.n*width)
		wantWeights := make([]float32, s.numHeads*s.n*s.n)
		attention(want, qkv, make([]float32, s.n), keyPad, s.n, s.numHeads, s.headDim, wantWeights)

		got := make([]float32, s.n*width)
		gotWeights := make([]float32, s.numHeads*s.n*s.n)
		probs := make([]float32, attentionScratchSize(s.n, s.headDim))
		attention(got, qkv, probs, keyPad, s.n, s.numHeads, s.headDim, gotWeights)
		compareBits(t, "attention("+name+") outputs", got, want)
		compareBits(t, "attention("+name+") weights", gotWeights, wantWeights)

		clear(got)
		attention(got, qkv, probs, keyPad, s.n, s.numHeads, s.headDim, nil)
		compareBits(t, "attention("+name+", no weights) outputs", got, want)
	}
}

// TestAttentionKernelsMatchScalar compares the score and weighted-sum
// kernels of this build (SIMD where built) with the scalar ones.
func TestAttentionKernelsMatchScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, n := range []int{1, 5, 8, 13, 32, 41, 81} {
		for _, headDim := range []int{1, 3, 4, 8, 17, 24, 32, 40, 64} {
			name := fmt.Sprintf("n %d, Dh %d", n, headDim)
			q := uniformFloats(rng, headDim, 2)
			keys := uniformFloats(rng, headDim*keyColumns(n), 2)
			want := make([]float32, n)
			attentionScoresScalar(want, q, keys, 0.125)
			got := make([]float32, n)
			attentionScores(got, q, keys, 0.125)
			compareBits(t, "attentionScores("+name+")", got, want)

			const stride = 3 * 67
			weights := uniformFloats(rng, n, 1)
			v := uniformFloats(rng, n*stride, 2)
			wantOut := make([]float32, headDim)
			weightedRowSumScalar(wantOut, weights, v, stride)
			gotOut := make([]float32, headDim)
			weightedRowSum(gotOut, weights, v, stride)
			compareBits(t, "weightedRowSum("+name+")", gotOut, wantOut)
		}
	}
}

// geluSpecialInputs are the edges of gelu32's branches: the tanh argument
// crosses tanhLinear and tanhSaturation near them, and zeros, subnormals,
// infinities and huge values take the saturated paths.
var geluSpecialInputs = []float32{
	0, float32(math.Copysign(0, -1)), 1e-45, -1e-45, 1e-38, -1e-38, 3.1e-4, -3.1e-4, 3.2e-4, -3.2e-4,
	1, -1, 2.5, -2.5, 4.5, -4.5, 5, -5, 5.5, -5.5, 9.1, -9.1, 11.4, -11.4, 20, -20, 88, -88,
	1e10, -1e10, 3e38, -3e38, float32(math.Inf(1)), float32(math.Inf(-1)),
}

func TestGeluInPlaceMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	var x []float32
	for _, v := range geluSpecialInputs {
		// Neighbors of each edge, so both sides of every comparison run.
		for _, u := range []float32{v, math.Nextafter32(v, float32(math.Inf(1))), math.Nextafter32(v, float32(math.Inf(-1)))} {
			x = append(x, u)
		}
	}
	x = append(x, uniformFloats(rng, 4000, 8)...)
	x = append(x, uniformFloats(rng, 4000, 0.01)...)
	x = append(x, float32(math.NaN()))
	for _, length := range []int{len(x), len(x) - 1, len(x) - 3, 7, 1, 0} {
		want := append([]float32(nil), x[:length]...)
		geluInPlaceScalar(want)
		got := append([]float32(nil), x[:length]...)
		geluInPlace(got)
		for i := range want {
			nan := math.IsNaN(float64(want[i]))
			if nan != math.IsNaN(float64(got[i])) || !nan && math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Errorf("geluInPlace(%d values)[%d] on %v = %v (bits %08x), want %v (bits %08x)", length, i, x[i],
					got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
		}
	}
}

// sameBitsOrNaN reports whether got and want are both NaN or have the same
// bits, since NaN payloads may differ between instruction sets.
func sameBitsOrNaN(got, want float32) bool {
	nan := math.IsNaN(float64(want))
	if nan || math.IsNaN(float64(got)) {
		return nan == math.IsNaN(float64(got))
	}
	return math.Float32bits(got) == math.Float32bits(want)
}

// softmaxSpecialInputs are the edges of exp32 for arguments at most 0: its
// underflow threshold, subnormal results flushed to 0, rounding of n at
// half-integers of log2(e)*x, and the values that softmax feeds it.
var softmaxSpecialInputs = []float32{
	0, float32(math.Copysign(0, -1)), -1e-45, -1e-38, -0.3465736, -0.3465737, -0.5, -1, -10,
	-86, -87, exp32Underflow, -87.4, -88, -100, -1e10, float32(math.Inf(-1)),
	float32(math.NaN()),
}

func TestExpDiffInPlaceMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	var x []float32
	for _, v := range softmaxSpecialInputs {
		for _, u := range []float32{v, math.Nextafter32(v, 0), math.Nextafter32(v, float32(math.Inf(-1)))} {
			x = append(x, u)
		}
	}
	for _, v := range uniformFloats(rng, 4000, 90) {
		x = append(x, -float32(math.Abs(float64(v))))
	}
	for _, m := range []float32{0, 3.5, -2, float32(math.Inf(1))} {
		shifted := make([]float32, len(x))
		for i, v := range x {
			shifted[i] = v + m // x[i] - m is then x[i] or close to it, at most 0
		}
		for _, length := range []int{len(x), len(x) - 1, len(x) - 3, 7, 1, 0} {
			want := append([]float32(nil), shifted[:length]...)
			expDiffInPlaceScalar(want, m)
			got := append([]float32(nil), shifted[:length]...)
			expDiffInPlace(got, m)
			for i := range want {
				if !sameBitsOrNaN(got[i], want[i]) {
					t.Errorf("expDiffInPlace(%d values, m %v)[%d] on %v = %v (bits %08x), want %v (bits %08x)", length, m, i,
						shifted[i], got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
		}
	}
}

func TestSoftmaxSpecialRowsKeepBits(t *testing.T) {
	rows := [][]float32{
		{float32(math.NaN()), 1, 2},
		{1, float32(math.NaN()), 2, 3, 4, 5, 6, 7, 8},
		{float32(math.Inf(1)), 1, float32(math.Inf(1)), -3, 0, 0, 0, 0, 0},
		{float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1))},
		{maskedScore, maskedScore, 0.5, maskedScore, -0.25, 0, 1e-30, -1e-30, 40},
	}
	for r, row := range rows {
		want := append([]float32(nil), row...)
		expDiffInPlaceScalar(want, maxOf(want))
		got := append([]float32(nil), row...)
		expDiffInPlace(got, maxOf(got))
		for i := range want {
			if !sameBitsOrNaN(got[i], want[i]) {
				t.Errorf("row %d: expDiffInPlace[%d] on %v = %v, want %v", r, i, row[i], got[i], want[i])
			}
		}
	}
}

// maxOf returns the maximum of x as softmaxInPlace takes it.
func maxOf(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

func TestElementwiseKernelsMatchScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(49, 50))
	for _, n := range []int{0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 64, 131} {
		row := uniformFloats(rng, n, 4)
		scale := uniformFloats(rng, n, 2)
		bias := uniformFloats(rng, n, 1)
		if n > 2 {
			row[1] = float32(math.Inf(1))
			row[2] = 1e-40
		}
		want := make([]float32, n)
		normalizeRowScalar(want, row, scale, bias, 0.3, 1.7)
		got := make([]float32, n)
		normalizeRow(got, row, scale, bias, 0.3, 1.7)
		compareBits(t, fmt.Sprintf("normalizeRow(%d)", n), got, want)
		inPlace := append([]float32(nil), row...)
		normalizeRow(inPlace, inPlace, scale, bias, 0.3, 1.7)
		compareBits(t, fmt.Sprintf("normalizeRow(%d, in place)", n), inPlace, want)

		want = append([]float32(nil), row...)
		scaleInPlaceScalar(want, 0.1)
		got = append([]float32(nil), row...)
		scaleInPlace(got, 0.1)
		compareBits(t, fmt.Sprintf("scaleInPlace(%d)", n), got, want)

		want = append([]float32(nil), row...)
		addInPlaceScalar(want, bias)
		got = append([]float32(nil), row...)
		addInPlace(got, bias)
		compareBits(t, fmt.Sprintf("addInPlace(%d)", n), got, want)
	}
}
