package core

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// referenceMatMul is the plain loop that every matMul kernel must match bit
// for bit: per output element, the bias, then + float32(x*w) over k in
// ascending order. w is [in, out] in flax's layout and a nil bias counts
// as zeros.
func referenceMatMul(dst, x, w, bias []float32, rows, in, out int) {
	for i := range rows {
		for j := range out {
			var acc float32
			if bias != nil {
				acc = bias[j]
			}
			for k := range in {
				acc += float32(x[i*in+k] * w[k*out+j])
			}
			dst[i*out+j] = acc
		}
	}
}

// oddMatMulShapes cover every row tail of the 4-row and 2-row tiles, every
// column tail of the 8-column panels and 16-column panel pairs, one input,
// and shapes of the tiny preset.
var oddMatMulShapes = []struct{ rows, in, out int }{
	{1, 1, 1}, {1, 1, 8}, {1, 3, 17}, {2, 5, 16}, {3, 7, 15}, {4, 2, 9}, {5, 9, 24},
	{6, 11, 31}, {7, 13, 33}, {8, 1, 40}, {9, 17, 7}, {13, 64, 47}, {21, 48, 192},
	{16, 128, 1003},
}

// compareBits reports the first element where got and want differ in bits.
func compareBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("%s[%d] = %v (bits %08x), want %v (bits %08x)",
				what, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			return
		}
	}
}

func TestMatMulMatchesReferenceBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, s := range oddMatMulShapes {
		for _, withBias := range []bool{true, false} {
			name := fmt.Sprintf("%dx%dx%d bias %v", s.rows, s.in, s.out, withBias)
			x := uniformFloats(rng, s.rows*s.in, 3)
			w := uniformFloats(rng, s.in*s.out, 1)
			var bias []float32
			if withBias {
				bias = uniformFloats(rng, s.out, 1)
			}
			want := make([]float32, s.rows*s.out)
			referenceMatMul(want, x, w, bias, s.rows, s.in, s.out)

			got := make([]float32, s.rows*s.out)
			matMulFlax(got, x, w, bias, s.rows, s.in, s.out)
			compareBits(t, "float32 matMul("+name+")", got, want)

			q, scale := randomInt8Kernel(rng, s.in, s.out)
			referenceMatMul(want, x, dequantizeColumns(q, scale, s.in, s.out), bias, s.rows, s.in, s.out)
			matMulInt8Flax(got, x, q, scale, bias, s.rows, s.in, s.out)
			compareBits(t, "int8 matMul("+name+")", got, want)
		}
	}
}

// TestMatMulPanelKernelsMatchScalar compares the kernels that this build
// dispatches to (SIMD where built and supported) with the scalar panel
// kernel on the same packed panels.
func TestMatMulPanelKernelsMatchScalar(t *testing.T) {
	checkPanelKernelsMatchScalar(t)
}

// checkPanelKernelsMatchScalar is TestMatMulPanelKernelsMatchScalar, for
// the kernels that the build and the CPU flags of the moment select.
func checkPanelKernelsMatchScalar(t *testing.T) {
	t.Helper()
	rng := rand.New(rand.NewPCG(23, 24))
	for _, s := range oddMatMulShapes {
		name := fmt.Sprintf("%dx%dx%d on %s", s.rows, s.in, s.out, matMulKernel())
		x := uniformFloats(rng, s.rows*s.in, 3)
		d := packDense(uniformFloats(rng, s.in*s.out, 1), uniformFloats(rng, s.out, 1), s.in, s.out)
		want := make([]float32, s.rows*s.out)
		for p := range numPanels(s.out) {
			matMulPanelScalar(want, x, d.panels[p*s.in:(p+1)*s.in], &d.bias[p], s.rows, s.out, p*panelWidth)
		}

		got := make([]float32, s.rows*s.out)
		for p := range numPanels(s.out) {
			matMulPanel(got, x, d.panels[p*s.in:(p+1)*s.in], &d.bias[p], s.rows, s.out, p*panelWidth)
		}
		compareBits(t, "matMulPanel("+name+")", got, want)

		clear(got)
		p := 0
		for ; p+2 <= numPanels(s.out); p += 2 {
			matMulPanelPair(got, x, d.panels[p*s.in:(p+1)*s.in], d.panels[(p+1)*s.in:(p+2)*s.in],
				&d.bias[p], &d.bias[p+1], s.rows, s.out, p*panelWidth)
		}
		if p < numPanels(s.out) {
			matMulPanel(got, x, d.panels[p*s.in:(p+1)*s.in], &d.bias[p], s.rows, s.out, p*panelWidth)
		}
		compareBits(t, "matMulPanelPair("+name+")", got, want)

		q, scale := randomInt8Kernel(rng, s.in, s.out)
		d8 := packDenseInt8(q, scale, nil, s.in, s.out)
		wantTile := make([][panelWidth]float32, s.in)
		gotTile := make([][panelWidth]float32, s.in)
		for p := range numPanels(s.out) {
			dequantizePanelScalar(wantTile, d8.panelInt8(p), &d8.scale[p])
			dequantizePanel(gotTile, d8.panelInt8(p), &d8.scale[p])
			for k := range wantTile {
				compareBits(t, fmt.Sprintf("dequantizePanel(%s, panel %d, row %d)", name, p, k), gotTile[k][:], wantTile[k][:])
			}
		}
	}
}

// TestMatMulSpecialValues checks that infinities, NaNs, signed zeros and
// subnormal products take the same path through every kernel as through
// the reference loop.
func TestMatMulSpecialValues(t *testing.T) {
	const rows, in, out = 5, 6, 19
	rng := rand.New(rand.NewPCG(25, 26))
	x := uniformFloats(rng, rows*in, 1)
	w := uniformFloats(rng, in*out, 1)
	bias := uniformFloats(rng, out, 1)
	x[0] = float32(math.Inf(1))
	x[in+1] = float32(math.Copysign(0, -1))
	x[2*in+2] = 1e-30
	w[3] = float32(math.NaN())
	w[out+4] = 1e-20
	bias[5] = float32(math.Copysign(0, -1))
	want := make([]float32, rows*out)
	referenceMatMul(want, x, w, bias, rows, in, out)
	got := make([]float32, rows*out)
	matMulFlax(got, x, w, bias, rows, in, out)
	for i := range want {
		nan := math.IsNaN(float64(want[i]))
		if nan != math.IsNaN(float64(got[i])) || !nan && math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("matMul(special values)[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestMatMulRejectsShortBuffers(t *testing.T) {
	d := packDense(make([]float32, 6), nil, 2, 3)
	defer func() {
		if recover() == nil {
			t.Error("matMul(2 rows into a 5-value dst) did not panic")
		}
	}()
	matMul(make([]float32, 5), make([]float32, 4), &d, 2, &matMulScratch{})
}
