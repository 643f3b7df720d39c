//go:build goexperiment.simd && amd64 && !go1.27

package core

import "simd/archsimd"

// AVX-512 and AVX2 kernels for native amd64 builds with Go 1.26's
// simd/archsimd. Go 1.27 changed that API, so go1.27 builds use the scalar
// kernels on amd64. A lane is one output column. x[i, k] is broadcast to
// every lane and multiplied by row k of the panel, and the product is added
// to the accumulator. VMULPS and VADDPS round like the scalar
// float32(a * b) and +, while MulAdd would fuse them, so it is never used.
//
// Every kernel ends with VZEROUPPER (archsimd.ClearAVXUpperBits): Go's
// scalar float code uses SSE instructions, which run with false
// dependencies while the upper halves of the vector registers are dirty.
//
// Go's register allocator gives a kernel 15 vector registers, AVX-512's
// extra 16 unused, and each broadcast of x takes a shuffle on the port that
// also runs AVX-512 arithmetic. So the tiles keep one broadcast per two
// vector products where the registers allow: 4 rows by 32 columns (2
// panels) in AVX-512, 3 rows by 16 columns in AVX2.

// hasAVX2 is whether the CPU runs the AVX2 kernels, and hasAVX512 the
// AVX-512 ones. Without AVX2, for instance on an x86-64-v1 machine, the
// scalar kernels run.
var (
	hasAVX2   = archsimd.X86.AVX2()
	hasAVX512 = archsimd.X86.AVX512()
)

// matMulKernel names the kernels that matMul runs on this machine.
func matMulKernel() string {
	switch {
	case hasAVX512:
		return "avx512"
	case hasAVX2:
		return "avx2"
	}
	return "scalar"
}

// matMulPanel is matMulPanelScalar on the widest kernel the CPU runs.
func matMulPanel(dst, x []float32, panel [][panelWidth]float32, bias *[panelWidth]float32, rows, out, col int) {
	switch {
	case hasAVX512:
		matMulPanelAVX512(dst, x, panel, bias, rows, out, col)
	case hasAVX2:
		matMulPanelAVX2(dst, x, panel, bias, rows, out, col)
	default:
		matMulPanelScalar(dst, x, panel, bias, rows, out, col)
	}
}

// matMulPanelPair runs matMulPanel over the adjacent panels w0 and w1,
// columns col..col+31, in one pass in AVX-512.
func matMulPanelPair(dst, x []float32, w0, w1 [][panelWidth]float32, bias0, bias1 *[panelWidth]float32, rows, out, col int) {
	if hasAVX512 {
		matMulPanelPairAVX512(dst, x, w0, w1, bias0, bias1, rows, out, col)
		return
	}
	matMulPanel(dst, x, w0, bias0, rows, out, col)
	matMulPanel(dst, x, w1, bias1, rows, out, col+panelWidth)
}

// matMulPanelPairAVX512 computes the two panels in register tiles of 4
// rows by 32 columns: 8 accumulators, 2 weight vectors and a broadcast.
func matMulPanelPairAVX512(dst, x []float32, w0, w1 [][panelWidth]float32, bias0, bias1 *[panelWidth]float32, rows, out, col int) {
	in := len(w0)
	w1 = w1[:len(w0)]
	i := 0
	for ; i+4 <= rows; i += 4 {
		x0 := x[i*in : (i+1)*in]
		x1 := x[(i+1)*in : (i+2)*in]
		x2 := x[(i+2)*in : (i+3)*in]
		x3 := x[(i+3)*in : (i+4)*in]
		x0, x1, x2, x3 = x0[:len(w0)], x1[:len(w0)], x2[:len(w0)], x3[:len(w0)]
		a00, a01 := archsimd.LoadFloat32x16(bias0), archsimd.LoadFloat32x16(bias1)
		a10, a11 := a00, a01
		a20, a21 := a00, a01
		a30, a31 := a00, a01
		for k := range w0 {
			c0 := archsimd.LoadFloat32x16(&w0[k])
			c1 := archsimd.LoadFloat32x16(&w1[k])
			v := archsimd.BroadcastFloat32x16(x0[k])
			a00 = a00.Add(v.Mul(c0))
			a01 = a01.Add(v.Mul(c1))
			v = archsimd.BroadcastFloat32x16(x1[k])
			a10 = a10.Add(v.Mul(c0))
			a11 = a11.Add(v.Mul(c1))
			v = archsimd.BroadcastFloat32x16(x2[k])
			a20 = a20.Add(v.Mul(c0))
			a21 = a21.Add(v.Mul(c1))
			v = archsimd.BroadcastFloat32x16(x3[k])
			a30 = a30.Add(v.Mul(c0))
			a31 = a31.Add(v.Mul(c1))
		}
		row := dst[i*out : (i+1)*out]
		storeFloat32x16(row, col, a00)
		storeFloat32x16(row, col+panelWidth, a01)
		row = dst[(i+1)*out : (i+2)*out]
		storeFloat32x16(row, col, a10)
		storeFloat32x16(row, col+panelWidth, a11)
		row = dst[(i+2)*out : (i+3)*out]
		storeFloat32x16(row, col, a20)
		storeFloat32x16(row, col+panelWidth, a21)
		row = dst[(i+3)*out : (i+4)*out]
		storeFloat32x16(row, col, a30)
		storeFloat32x16(row, col+panelWidth, a31)
	}
	archsimd.ClearAVXUpperBits()
	if i < rows {
		matMulPanelAVX512(dst[i*out:], x[i*in:], w0, bias0, rows-i, out, col)
		matMulPanelAVX512(dst[i*out:], x[i*in:], w1, bias1, rows-i, out, col+panelWidth)
	}
}

// matMulPanelAVX512 computes one panel in register tiles of 6 rows by 16
// columns, then the last rows one at a time.
func matMulPanelAVX512(dst, x []float32, panel [][panelWidth]float32, bias *[panelWidth]float32, rows, out, col int) {
	in := len(panel)
	i := 0
	for ; i+6 <= rows; i += 6 {
		x0 := x[i*in : (i+1)*in]
		x1 := x[(i+1)*in : (i+2)*in]
		x2 := x[(i+2)*in : (i+3)*in]
		x3 := x[(i+3)*in : (i+4)*in]
		x4 := x[(i+4)*in : (i+5)*in]
		x5 := x[(i+5)*in : (i+6)*in]
		x0, x1, x2 = x0[:len(panel)], x1[:len(panel)], x2[:len(panel)]
		x3, x4, x5 = x3[:len(panel)], x4[:len(panel)], x5[:len(panel)]
		a0 := archsimd.LoadFloat32x16(bias)
		a1, a2, a3, a4, a5 := a0, a0, a0, a0, a0
		for k := range panel {
			c := archsimd.LoadFloat32x16(&panel[k])
			a0 = a0.Add(archsimd.BroadcastFloat32x16(x0[k]).Mul(c))
			a1 = a1.Add(archsimd.BroadcastFloat32x16(x1[k]).Mul(c))
			a2 = a2.Add(archsimd.BroadcastFloat32x16(x2[k]).Mul(c))
			a3 = a3.Add(archsimd.BroadcastFloat32x16(x3[k]).Mul(c))
			a4 = a4.Add(archsimd.BroadcastFloat32x16(x4[k]).Mul(c))
			a5 = a5.Add(archsimd.BroadcastFloat32x16(x5[k]).Mul(c))
		}
		storeFloat32x16(dst[i*out:(i+1)*out], col, a0)
		storeFloat32x16(dst[(i+1)*out:(i+2)*out], col, a1)
		storeFloat32x16(dst[(i+2)*out:(i+3)*out], col, a2)
		storeFloat32x16(dst[(i+3)*out:(i+4)*out], col, a3)
		storeFloat32x16(dst[(i+4)*out:(i+5)*out], col, a4)
		storeFloat32x16(dst[(i+5)*out:(i+6)*out], col, a5)
	}
	for ; i < rows; i++ {
		x0 := x[i*in : (i+1)*in]
		x0 = x0[:len(panel)]
		a0 := archsimd.LoadFloat32x16(bias)
		for k := range panel {
			a0 = a0.Add(archsimd.BroadcastFloat32x16(x0[k]).Mul(archsimd.LoadFloat32x16(&panel[k])))
		}
		storeFloat32x16(dst[i*out:(i+1)*out], col, a0)
	}
	archsimd.ClearAVXUpperBits()
}

// matMulPanelAVX2 computes one panel in register tiles of 3 rows by 16
// columns, so each broadcast of x feeds two products. Tiles of 4 rows need
// 8 accumulators, 2 weight vectors and 4 broadcasts, one more than the 15
// vector registers that Go's amd64 ABI leaves free, and the compiler
// spilled. They ran 48 GFLOP/s against 61 for 3 rows (84x192x768, thread
// CPU time, one core of a shared Xeon with AVX-512, Go 1.26.8).
func matMulPanelAVX2(dst, x []float32, panel [][panelWidth]float32, bias *[panelWidth]float32, rows, out, col int) {
	in := len(panel)
	lo, hi := (*[8]float32)(bias[0:8]), (*[8]float32)(bias[8:16])
	i := 0
	for ; i+3 <= rows; i += 3 {
		x0 := x[i*in : (i+1)*in]
		x1 := x[(i+1)*in : (i+2)*in]
		x2 := x[(i+2)*in : (i+3)*in]
		x0, x1, x2 = x0[:len(panel)], x1[:len(panel)], x2[:len(panel)]
		// Loading the biases here rather than once per call keeps them out
		// of registers during the k loop.
		a00, a01 := archsimd.LoadFloat32x8(lo), archsimd.LoadFloat32x8(hi)
		a10, a11 := a00, a01
		a20, a21 := a00, a01
		for k := range panel {
			wk := &panel[k]
			c0 := archsimd.LoadFloat32x8((*[8]float32)(wk[0:8]))
			c1 := archsimd.LoadFloat32x8((*[8]float32)(wk[8:16]))
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
		storeFloat32x8Pair(dst[i*out:(i+1)*out], col, a00, a01)
		storeFloat32x8Pair(dst[(i+1)*out:(i+2)*out], col, a10, a11)
		storeFloat32x8Pair(dst[(i+2)*out:(i+3)*out], col, a20, a21)
	}
	for ; i < rows; i++ {
		x0 := x[i*in : (i+1)*in]
		x0 = x0[:len(panel)]
		a0, a1 := archsimd.LoadFloat32x8(lo), archsimd.LoadFloat32x8(hi)
		for k := range panel {
			wk := &panel[k]
			v := archsimd.BroadcastFloat32x8(x0[k])
			a0 = a0.Add(v.Mul(archsimd.LoadFloat32x8((*[8]float32)(wk[0:8]))))
			a1 = a1.Add(v.Mul(archsimd.LoadFloat32x8((*[8]float32)(wk[8:16]))))
		}
		storeFloat32x8Pair(dst[i*out:(i+1)*out], col, a0, a1)
	}
	archsimd.ClearAVXUpperBits()
}

// storeFloat32x16 writes the lanes of v to row[col:col+16], leaving out the
// lanes at or past len(row).
func storeFloat32x16(row []float32, col int, v archsimd.Float32x16) {
	if col+panelWidth <= len(row) {
		v.Store((*[panelWidth]float32)(row[col : col+panelWidth]))
		return
	}
	var lanes [panelWidth]float32
	v.Store(&lanes)
	copy(row[col:], lanes[:len(row)-col])
}

// storeFloat32x8Pair writes the lanes of lo and then hi to
// row[col:col+16], leaving out the lanes at or past len(row).
func storeFloat32x8Pair(row []float32, col int, lo, hi archsimd.Float32x8) {
	if col+panelWidth <= len(row) {
		lo.Store((*[8]float32)(row[col : col+8]))
		hi.Store((*[8]float32)(row[col+8 : col+16]))
		return
	}
	var lanes [panelWidth]float32
	lo.Store((*[8]float32)(lanes[0:8]))
	hi.Store((*[8]float32)(lanes[8:16]))
	copy(row[col:], lanes[:len(row)-col])
}

// dequantizePanel is dequantizePanelScalar in AVX-512 or AVX2 where the CPU
// has them: sign-extend a row's 16 int8 values to int32, convert them to
// float32, which is exact, and multiply by the scales, which rounds like
// the scalar product.
func dequantizePanel(tile [][panelWidth]float32, q []int8, scale *[panelWidth]float32) {
	rows := len(q) / panelWidth
	tile = tile[:rows]
	switch {
	case hasAVX512:
		s := archsimd.LoadFloat32x16(scale)
		for k := range tile {
			v := archsimd.LoadInt8x16((*[panelWidth]int8)(q[k*panelWidth : (k+1)*panelWidth]))
			v.ExtendToInt32().ConvertToFloat32().Mul(s).Store(&tile[k])
		}
	case hasAVX2:
		lo := archsimd.LoadFloat32x8((*[8]float32)(scale[0:8]))
		hi := archsimd.LoadFloat32x8((*[8]float32)(scale[8:16]))
		for k := range tile {
			v := archsimd.LoadInt8x16((*[panelWidth]int8)(q[k*panelWidth : (k+1)*panelWidth])).ExtendToInt16()
			t := &tile[k]
			v.GetLo().ExtendToInt32().ConvertToFloat32().Mul(lo).Store((*[8]float32)(t[0:8]))
			v.GetHi().ExtendToInt32().ConvertToFloat32().Mul(hi).Store((*[8]float32)(t[8:16]))
		}
	default:
		dequantizePanelScalar(tile, q, scale)
		return
	}
	archsimd.ClearAVXUpperBits()
}
