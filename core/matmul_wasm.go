//go:build goexperiment.simd && go1.27 && wasm

package core

import "simd/archsimd"

// WebAssembly SIMD128 kernels for wasm builds with Go 1.27 and
// GOEXPERIMENT=simd. A lane is one output column, as in the AVX2 kernels:
// x[i, k] is broadcast to the 4 lanes, then f32x4.mul and f32x4.add round
// like the scalar float32(a * b) and +. WebAssembly's SIMD128 has no fused
// multiply-add (only the relaxed-SIMD proposal does), so no engine can fuse
// them. A module built this way fails to load in an engine without SIMD128,
// which is why the browser loads it only after feature detection.

// matMulKernel names the kernels that matMul runs on this machine.
func matMulKernel() string { return "simd128" }

// matMulPanel is matMulPanelScalar in register tiles of 3 rows by 8
// columns, two f32x4 vectors per row. Measured in GFLOP/s of process CPU
// time on a shared Xeon, at 21x192x576, 81x192x768 and 16x128x4096:
//
//	tile rows   Node 20 (V8)   wazero 1.12
//	3           19, 18, 16     7, 7, 6
//	4           18, 18, 17     7, 4, 6
//
// 2 rows ran slower on both. Go's wasm backend sends every loop back edge
// through the function's jump table, so the k loop takes 4 steps per pass.
// That made the tiny preset's forward pass 13 % faster in Node 20 (33.3 to
// 29.1 ms).
func matMulPanel(dst, x []float32, panel [][panelWidth]float32, bias *[panelWidth]float32, rows, out, col int) {
	in := len(panel)
	i := 0
	for ; i+3 <= rows; i += 3 {
		x0 := x[i*in : (i+1)*in]
		x1 := x[(i+1)*in : (i+2)*in]
		x2 := x[(i+2)*in : (i+3)*in]
		x0, x1, x2 = x0[:len(panel)], x1[:len(panel)], x2[:len(panel)]
		a0l, a0h := archsimd.LoadFloat32x4(bias[0:4]), archsimd.LoadFloat32x4(bias[4:8])
		a1l, a1h := a0l, a0h
		a2l, a2h := a0l, a0h
		var cl, ch archsimd.Float32x4
		k := 0
		for ; k+4 <= len(panel); k += 4 {
			cl, ch = loadPanelRow(panel, k)
			a0l, a0h = addProducts2(a0l, a0h, x0[k], cl, ch)
			a1l, a1h = addProducts2(a1l, a1h, x1[k], cl, ch)
			a2l, a2h = addProducts2(a2l, a2h, x2[k], cl, ch)
			cl, ch = loadPanelRow(panel, k+1)
			a0l, a0h = addProducts2(a0l, a0h, x0[k+1], cl, ch)
			a1l, a1h = addProducts2(a1l, a1h, x1[k+1], cl, ch)
			a2l, a2h = addProducts2(a2l, a2h, x2[k+1], cl, ch)
			cl, ch = loadPanelRow(panel, k+2)
			a0l, a0h = addProducts2(a0l, a0h, x0[k+2], cl, ch)
			a1l, a1h = addProducts2(a1l, a1h, x1[k+2], cl, ch)
			a2l, a2h = addProducts2(a2l, a2h, x2[k+2], cl, ch)
			cl, ch = loadPanelRow(panel, k+3)
			a0l, a0h = addProducts2(a0l, a0h, x0[k+3], cl, ch)
			a1l, a1h = addProducts2(a1l, a1h, x1[k+3], cl, ch)
			a2l, a2h = addProducts2(a2l, a2h, x2[k+3], cl, ch)
		}
		for ; k < len(panel); k++ {
			cl, ch = loadPanelRow(panel, k)
			a0l, a0h = addProducts2(a0l, a0h, x0[k], cl, ch)
			a1l, a1h = addProducts2(a1l, a1h, x1[k], cl, ch)
			a2l, a2h = addProducts2(a2l, a2h, x2[k], cl, ch)
		}
		storeFloat32x4Pair(dst[i*out:(i+1)*out], col, a0l, a0h)
		storeFloat32x4Pair(dst[(i+1)*out:(i+2)*out], col, a1l, a1h)
		storeFloat32x4Pair(dst[(i+2)*out:(i+3)*out], col, a2l, a2h)
	}
	for ; i < rows; i++ {
		x0 := x[i*in : (i+1)*in]
		x0 = x0[:len(panel)]
		al, ah := archsimd.LoadFloat32x4(bias[0:4]), archsimd.LoadFloat32x4(bias[4:8])
		for k := range panel {
			cl, ch := loadPanelRow(panel, k)
			al, ah = addProducts2(al, ah, x0[k], cl, ch)
		}
		storeFloat32x4Pair(dst[i*out:(i+1)*out], col, al, ah)
	}
}

// matMulPanelPair is matMulPanel over the adjacent panels w0 and w1, in
// register tiles of 2 rows by 16 columns: 8 accumulators, 4 weight vectors
// and one broadcast, within the 16 vector registers of x86-64. Against
// matMulPanel on each panel, it made the tiny preset's forward pass 9 %
// faster in Node 20 (28.5 to 26.4 ms), and tiles of 3 rows by 16 columns,
// which need 17 registers, 20 % slower. Its k loop takes 8 steps per pass,
// which gained another 5 % over 4 (24.8 to 23.7 ms).
func matMulPanelPair(dst, x []float32, w0, w1 [][panelWidth]float32, bias0, bias1 *[panelWidth]float32, rows, out, col int) {
	in := len(w0)
	w1 = w1[:len(w0)]
	i := 0
	for ; i+2 <= rows; i += 2 {
		x0 := x[i*in : (i+1)*in]
		x1 := x[(i+1)*in : (i+2)*in]
		x0, x1 = x0[:len(w0)], x1[:len(w0)]
		a00, a01 := archsimd.LoadFloat32x4(bias0[0:4]), archsimd.LoadFloat32x4(bias0[4:8])
		a02, a03 := archsimd.LoadFloat32x4(bias1[0:4]), archsimd.LoadFloat32x4(bias1[4:8])
		a10, a11, a12, a13 := a00, a01, a02, a03
		var c0, c1, c2, c3 archsimd.Float32x4
		k := 0
		for ; k+8 <= len(w0); k += 8 {
			c0, c1 = loadPanelRow(w0, k)
			c2, c3 = loadPanelRow(w1, k)
			a00, a01, a02, a03 = addProducts4(a00, a01, a02, a03, x0[k], c0, c1, c2, c3)
			a10, a11, a12, a13 = addProducts4(a10, a11, a12, a13, x1[k], c0, c1, c2, c3)
			c0, c1 = loadPanelRow(w0, k+1)
			c2, c3 = loadPanelRow(w1, k+1)
			a00, a01, a02, a03 = addProducts4(a00, a01, a02, a03, x0[k+1], c0, c1, c2, c3)
			a10, a11, a12, a13 = addProducts4(a10, a11, a12, a13, x1[k+1], c0, c1, c2, c3)
			c0, c1 = loadPanelRow(w0, k+2)
			c2, c3 = loadPanelRow(w1, k+2)
			a00, a01, a02, a03 = addProducts4(a00, a01, a02, a03, x0[k+2], c0, c1, c2, c3)
			a10, a11, a12, a13 = addProducts4(a10, a11, a12, a13, x1[k+2], c0, c1, c2, c3)
			c0, c1 = loadPanelRow(w0, k+3)
			c2, c3 = loadPanelRow(w1, k+3)
			a00, a01, a02, a03 = addProducts4(a00, a01, a02, a03, x0[k+3], c0, c1, c2, c3)
			a10, a11, a12, a13 = addProducts4(a10, a11, a12, a13, x1[k+3], c0, c1, c2, c3)
			c0, c1 = loadPanelRow(w0, k+4)
			c2, c3 = loadPanelRow(w1, k+4)
			a00, a01, a02, a03 = addProducts4(a00, a01, a02, a03, x0[k+4], c0, c1, c2, c3)
			a10, a11, a12, a13 = addProducts4(a10, a11, a12, a13, x1[k+4], c0, c1, c2, c3)
			c0, c1 = loadPanelRow(w0, k+5)
			c2, c3 = loadPanelRow(w1, k+5)
			a00, a01, a02, a03 = addProducts4(a00, a01, a02, a03, x0[k+5], c0, c1, c2, c3)
			a10, a11, a12, a13 = addProducts4(a10, a11, a12, a13, x1[k+5], c0, c1, c2, c3)
			c0, c1 = loadPanelRow(w0, k+6)
			c2, c3 = loadPanelRow(w1, k+6)
			a00, a01, a02, a03 = addProducts4(a00, a01, a02, a03, x0[k+6], c0, c1, c2, c3)
			a10, a11, a12, a13 = addProducts4(a10, a11, a12, a13, x1[k+6], c0, c1, c2, c3)
			c0, c1 = loadPanelRow(w0, k+7)
			c2, c3 = loadPanelRow(w1, k+7)
			a00, a01, a02, a03 = addProducts4(a00, a01, a02, a03, x0[k+7], c0, c1, c2, c3)
			a10, a11, a12, a13 = addProducts4(a10, a11, a12, a13, x1[k+7], c0, c1, c2, c3)
		}
		for ; k < len(w0); k++ {
			c0, c1 = loadPanelRow(w0, k)
			c2, c3 = loadPanelRow(w1, k)
			a00, a01, a02, a03 = addProducts4(a00, a01, a02, a03, x0[k], c0, c1, c2, c3)
			a10, a11, a12, a13 = addProducts4(a10, a11, a12, a13, x1[k], c0, c1, c2, c3)
		}
		row := dst[i*out : (i+1)*out]
		storeFloat32x4Pair(row, col, a00, a01)
		storeFloat32x4Pair(row, col+panelWidth, a02, a03)
		row = dst[(i+1)*out : (i+2)*out]
		storeFloat32x4Pair(row, col, a10, a11)
		storeFloat32x4Pair(row, col+panelWidth, a12, a13)
	}
	if i < rows {
		matMulPanel(dst[i*out:], x[i*in:], w0, bias0, rows-i, out, col)
		matMulPanel(dst[i*out:], x[i*in:], w1, bias1, rows-i, out, col+panelWidth)
	}
}

// loadPanelRow returns row k of panel as two vectors, columns 0..3 and
// 4..7.
func loadPanelRow(panel [][panelWidth]float32, k int) (lo, hi archsimd.Float32x4) {
	row := &panel[k]
	return archsimd.LoadFloat32x4(row[0:4]), archsimd.LoadFloat32x4(row[4:8])
}

// addProducts2 returns a0 + v*c0 and a1 + v*c1 with v broadcast to every
// lane, each product rounded before the add.
func addProducts2(a0, a1 archsimd.Float32x4, v float32, c0, c1 archsimd.Float32x4) (archsimd.Float32x4, archsimd.Float32x4) {
	b := archsimd.BroadcastFloat32x4(v)
	return a0.Add(b.Mul(c0)), a1.Add(b.Mul(c1))
}

// addProducts4 is addProducts2 for four accumulators.
func addProducts4(a0, a1, a2, a3 archsimd.Float32x4, v float32, c0, c1, c2, c3 archsimd.Float32x4) (archsimd.Float32x4, archsimd.Float32x4, archsimd.Float32x4, archsimd.Float32x4) {
	b := archsimd.BroadcastFloat32x4(v)
	return a0.Add(b.Mul(c0)), a1.Add(b.Mul(c1)), a2.Add(b.Mul(c2)), a3.Add(b.Mul(c3))
}

// storeFloat32x4Pair writes the 8 lanes of lo and hi to row[col:col+8],
// leaving out the lanes at or past len(row).
func storeFloat32x4Pair(row []float32, col int, lo, hi archsimd.Float32x4) {
	if col+panelWidth <= len(row) {
		lo.Store(row[col : col+4])
		hi.Store(row[col+4 : col+8])
		return
	}
	var lanes [panelWidth]float32
	lo.Store(lanes[0:4])
	hi.Store(lanes[4:8])
	copy(row[col:], lanes[:len(row)-col])
}

// dequantizePanel is dequantizePanelScalar in SIMD128: each 16-byte load
// holds rows k and k+1, whose int8 values are sign-extended to int32,
// converted to float32, which is exact, and multiplied by the scales,
// which rounds like the scalar product.
func dequantizePanel(tile [][panelWidth]float32, q []int8, scale *[panelWidth]float32) {
	rows := len(q) / panelWidth
	tile = tile[:rows]
	sl, sh := archsimd.LoadFloat32x4(scale[0:4]), archsimd.LoadFloat32x4(scale[4:8])
	k := 0
	for ; k+2 <= rows; k += 2 {
		v := archsimd.LoadInt8x16(q[k*panelWidth : (k+2)*panelWidth])
		lo, hi := v.ExtendLo8ToInt16(), v.ExtendHi8ToInt16()
		t0, t1 := &tile[k], &tile[k+1]
		lo.ExtendLo4ToInt32().ConvertToFloat32().Mul(sl).Store(t0[0:4])
		lo.ExtendHi4ToInt32().ConvertToFloat32().Mul(sh).Store(t0[4:8])
		hi.ExtendLo4ToInt32().ConvertToFloat32().Mul(sl).Store(t1[0:4])
		hi.ExtendHi4ToInt32().ConvertToFloat32().Mul(sh).Store(t1[4:8])
	}
	if k < rows {
		dequantizePanelScalar(tile[k:], q[k*panelWidth:], scale)
	}
}
