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
// 2 rows ran slower on both.
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
		for k := range panel {
			wk := &panel[k]
			cl, ch := archsimd.LoadFloat32x4(wk[0:4]), archsimd.LoadFloat32x4(wk[4:8])
			v := archsimd.BroadcastFloat32x4(x0[k])
			a0l = a0l.Add(v.Mul(cl))
			a0h = a0h.Add(v.Mul(ch))
			v = archsimd.BroadcastFloat32x4(x1[k])
			a1l = a1l.Add(v.Mul(cl))
			a1h = a1h.Add(v.Mul(ch))
			v = archsimd.BroadcastFloat32x4(x2[k])
			a2l = a2l.Add(v.Mul(cl))
			a2h = a2h.Add(v.Mul(ch))
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
			wk := &panel[k]
			v := archsimd.BroadcastFloat32x4(x0[k])
			al = al.Add(v.Mul(archsimd.LoadFloat32x4(wk[0:4])))
			ah = ah.Add(v.Mul(archsimd.LoadFloat32x4(wk[4:8])))
		}
		storeFloat32x4Pair(dst[i*out:(i+1)*out], col, al, ah)
	}
}

// matMulPanelPair runs matMulPanel on each panel, because register tiles
// of 16 columns would need more than 16 vector registers.
func matMulPanelPair(dst, x []float32, w0, w1 [][panelWidth]float32, bias0, bias1 *[panelWidth]float32, rows, out, col int) {
	matMulPanel(dst, x, w0, bias0, rows, out, col)
	matMulPanel(dst, x, w1, bias1, rows, out, col+panelWidth)
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
