//go:build goexperiment.simd && amd64 && !go1.27

package core

import "simd/archsimd"

// AVX2 kernels for native amd64 builds with Go 1.26's simd/archsimd. Go
// 1.27 changed that API, so go1.27 builds use the scalar kernels on amd64.
// A lane is one output column. x[i, k] is broadcast to all 8 lanes and
// multiplied by row k of the panel, and the product is added to the
// accumulator. VMULPS and VADDPS round like the scalar float32(a * b) and
// +, while MulAdd would fuse them, so it is never used.
//
// Every kernel ends with VZEROUPPER (archsimd.ClearAVXUpperBits): Go's
// scalar float code uses SSE instructions, which run with false
// dependencies while the upper halves of the YMM registers are dirty.

// hasAVX2 is whether the CPU runs the AVX2 kernels. Without it, for
// instance on an x86-64-v1 machine, the scalar kernels run.
var hasAVX2 = archsimd.X86.AVX2()

// matMulKernel names the kernels that matMul runs on this machine.
func matMulKernel() string {
	if hasAVX2 {
		return "avx2"
	}
	return "scalar"
}

// matMulPanel is matMulPanelScalar on the AVX2 kernel where the CPU has it.
func matMulPanel(dst, x []float32, panel [][panelWidth]float32, bias *[panelWidth]float32, rows, out, col int) {
	if !hasAVX2 {
		matMulPanelScalar(dst, x, panel, bias, rows, out, col)
		return
	}
	in := len(panel)
	b := archsimd.LoadFloat32x8(bias)
	i := 0
	for ; i+4 <= rows; i += 4 {
		x0 := x[i*in : (i+1)*in]
		x1 := x[(i+1)*in : (i+2)*in]
		x2 := x[(i+2)*in : (i+3)*in]
		x3 := x[(i+3)*in : (i+4)*in]
		x0, x1, x2, x3 = x0[:len(panel)], x1[:len(panel)], x2[:len(panel)], x3[:len(panel)]
		a0, a1, a2, a3 := b, b, b, b
		for k := range panel {
			c := archsimd.LoadFloat32x8(&panel[k])
			a0 = a0.Add(archsimd.BroadcastFloat32x8(x0[k]).Mul(c))
			a1 = a1.Add(archsimd.BroadcastFloat32x8(x1[k]).Mul(c))
			a2 = a2.Add(archsimd.BroadcastFloat32x8(x2[k]).Mul(c))
			a3 = a3.Add(archsimd.BroadcastFloat32x8(x3[k]).Mul(c))
		}
		storeFloat32x8(dst[i*out:(i+1)*out], col, a0)
		storeFloat32x8(dst[(i+1)*out:(i+2)*out], col, a1)
		storeFloat32x8(dst[(i+2)*out:(i+3)*out], col, a2)
		storeFloat32x8(dst[(i+3)*out:(i+4)*out], col, a3)
	}
	for ; i < rows; i++ {
		x0 := x[i*in : (i+1)*in]
		x0 = x0[:len(panel)]
		a0 := b
		for k := range panel {
			a0 = a0.Add(archsimd.BroadcastFloat32x8(x0[k]).Mul(archsimd.LoadFloat32x8(&panel[k])))
		}
		storeFloat32x8(dst[i*out:(i+1)*out], col, a0)
	}
	archsimd.ClearAVXUpperBits()
}

// matMulPanelPair runs matMulPanel over the adjacent panels w0 and w1,
// columns col..col+15, in register tiles of 3 rows by 16 columns, so each
// broadcast of x feeds two products. Tiles of 4 rows need 8 accumulators,
// 2 weight vectors and 4 broadcasts, one more than the 15 vector registers
// that Go's amd64 ABI leaves free, and the compiler spilled. They ran 48
// GFLOP/s against 61 for 3 rows (84x192x768, thread CPU time, one core of a
// shared Xeon with AVX-512, Go 1.26.8).
func matMulPanelPair(dst, x []float32, w0, w1 [][panelWidth]float32, bias0, bias1 *[panelWidth]float32, rows, out, col int) {
	if !hasAVX2 {
		matMulPanelScalar(dst, x, w0, bias0, rows, out, col)
		matMulPanelScalar(dst, x, w1, bias1, rows, out, col+panelWidth)
		return
	}
	in := len(w0)
	w1 = w1[:len(w0)]
	i := 0
	for ; i+3 <= rows; i += 3 {
		x0 := x[i*in : (i+1)*in]
		x1 := x[(i+1)*in : (i+2)*in]
		x2 := x[(i+2)*in : (i+3)*in]
		x0, x1, x2 = x0[:len(w0)], x1[:len(w0)], x2[:len(w0)]
		// Loading the biases here rather than once per call keeps them out
		// of registers during the k loop.
		a00, a01 := archsimd.LoadFloat32x8(bias0), archsimd.LoadFloat32x8(bias1)
		a10, a11 := a00, a01
		a20, a21 := a00, a01
		for k := range w0 {
			c0 := archsimd.LoadFloat32x8(&w0[k])
			c1 := archsimd.LoadFloat32x8(&w1[k])
			v := archsimd.BroadcastFloat32x8(x0[k])
			a00 = a00.Add(v.Mul(c0))
			a01 = a01.Add(v.Mul(c1))
			v = archsimd.BroadcastFloat32x8(x1[k])
			a10 = a10.Add(v.Mul(c0))
			a11 = a11.Add(v.Mul(c1))
			v = archsimd.BroadcastFloat32x8(x2[k])
			a20 = a20.Add(v.Mul(c0))
			a21 = a21.Add(v.Mul(c1))
		}
		row := dst[i*out : (i+1)*out]
		storeFloat32x8(row, col, a00)
		storeFloat32x8(row, col+panelWidth, a01)
		row = dst[(i+1)*out : (i+2)*out]
		storeFloat32x8(row, col, a10)
		storeFloat32x8(row, col+panelWidth, a11)
		row = dst[(i+2)*out : (i+3)*out]
		storeFloat32x8(row, col, a20)
		storeFloat32x8(row, col+panelWidth, a21)
	}
	for ; i < rows; i++ {
		x0 := x[i*in : (i+1)*in]
		x0 = x0[:len(w0)]
		a0, a1 := archsimd.LoadFloat32x8(bias0), archsimd.LoadFloat32x8(bias1)
		for k := range w0 {
			v := archsimd.BroadcastFloat32x8(x0[k])
			a0 = a0.Add(v.Mul(archsimd.LoadFloat32x8(&w0[k])))
			a1 = a1.Add(v.Mul(archsimd.LoadFloat32x8(&w1[k])))
		}
		row := dst[i*out : (i+1)*out]
		storeFloat32x8(row, col, a0)
		storeFloat32x8(row, col+panelWidth, a1)
	}
	archsimd.ClearAVXUpperBits()
}

// storeFloat32x8 writes the lanes of v to row[col:col+8], leaving out the
// lanes at or past len(row).
func storeFloat32x8(row []float32, col int, v archsimd.Float32x8) {
	if col+panelWidth <= len(row) {
		v.Store((*[panelWidth]float32)(row[col : col+panelWidth]))
		return
	}
	var lanes [panelWidth]float32
	v.Store(&lanes)
	copy(row[col:], lanes[:len(row)-col])
}

// dequantizePanel is dequantizePanelScalar on AVX2 where the CPU has it:
// sign-extend 8 int8 values to int32, convert them to float32, which is
// exact, and multiply by the scales, which rounds like the scalar product.
func dequantizePanel(tile [][panelWidth]float32, q []int8, scale *[panelWidth]float32) {
	rows := len(q) / panelWidth
	if !hasAVX2 || rows == 0 {
		dequantizePanelScalar(tile, q, scale)
		return
	}
	tile = tile[:rows]
	s := archsimd.LoadFloat32x8(scale)
	// A load takes 16 bytes, rows k and k+1, so the last row goes alone.
	for k := range rows - 1 {
		v := archsimd.LoadInt8x16((*[2 * panelWidth]int8)(q[k*panelWidth : (k+2)*panelWidth]))
		v.ExtendLo8ToInt32().ConvertToFloat32().Mul(s).Store(&tile[k])
	}
	archsimd.ClearAVXUpperBits()
	dequantizePanelScalar(tile[rows-1:], q[(rows-1)*panelWidth:], scale)
}
