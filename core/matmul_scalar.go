package core

// Scalar panel kernels, used where no SIMD kernel is built or the CPU lacks
// the vector instructions. Each runs register tiles of 2 rows by 4
// columns, which measured fastest for scalar Go on wasm, over the left and
// then the right half of the panel.

// matMulPanelScalar sets the columns col..col+7 (those below out) of every
// row of dst[rows, out] to bias + x[rows, in] · panel, with in = len(panel).
func matMulPanelScalar(dst, x []float32, panel [][panelWidth]float32, bias *[panelWidth]float32, rows, out, col int) {
	in := len(panel)
	var acc [panelWidth]float32
	i := 0
	for ; i+2 <= rows; i += 2 {
		x0 := x[i*in : (i+1)*in]
		x1 := x[(i+1)*in : (i+2)*in]
		x0 = x0[:len(panel)]
		x1 = x1[:len(panel)]

		// Columns 0..3.
		a00, a01, a02, a03 := bias[0], bias[1], bias[2], bias[3]
		a10, a11, a12, a13 := a00, a01, a02, a03
		for k := range panel {
			v0, v1 := x0[k], x1[k]
			wk := &panel[k]
			c0, c1, c2, c3 := wk[0], wk[1], wk[2], wk[3]
			a00 += float32(v0 * c0)
			a01 += float32(v0 * c1)
			a02 += float32(v0 * c2)
			a03 += float32(v0 * c3)
			a10 += float32(v1 * c0)
			a11 += float32(v1 * c1)
			a12 += float32(v1 * c2)
			a13 += float32(v1 * c3)
		}
		acc[0], acc[1], acc[2], acc[3] = a00, a01, a02, a03
		b00, b01, b02, b03 := a10, a11, a12, a13

		// Columns 4..7.
		a00, a01, a02, a03 = bias[4], bias[5], bias[6], bias[7]
		a10, a11, a12, a13 = a00, a01, a02, a03
		for k := range panel {
			v0, v1 := x0[k], x1[k]
			wk := &panel[k]
			c0, c1, c2, c3 := wk[4], wk[5], wk[6], wk[7]
			a00 += float32(v0 * c0)
			a01 += float32(v0 * c1)
			a02 += float32(v0 * c2)
			a03 += float32(v0 * c3)
			a10 += float32(v1 * c0)
			a11 += float32(v1 * c1)
			a12 += float32(v1 * c2)
			a13 += float32(v1 * c3)
		}
		acc[4], acc[5], acc[6], acc[7] = a00, a01, a02, a03
		storePanelRow(dst[i*out:(i+1)*out], col, &acc)
		acc = [panelWidth]float32{b00, b01, b02, b03, a10, a11, a12, a13}
		storePanelRow(dst[(i+1)*out:(i+2)*out], col, &acc)
	}
	if i < rows {
		matMulPanelRowScalar(dst[i*out:(i+1)*out], x[i*in:(i+1)*in], panel, bias, col)
	}
}

// matMulPanelRowScalar computes one row of matMulPanelScalar: dstRow[out]
// and xRow[in].
func matMulPanelRowScalar(dstRow, xRow []float32, panel [][panelWidth]float32, bias *[panelWidth]float32, col int) {
	xRow = xRow[:len(panel)]
	a0, a1, a2, a3 := bias[0], bias[1], bias[2], bias[3]
	a4, a5, a6, a7 := bias[4], bias[5], bias[6], bias[7]
	for k, v := range xRow {
		wk := &panel[k]
		a0 += float32(v * wk[0])
		a1 += float32(v * wk[1])
		a2 += float32(v * wk[2])
		a3 += float32(v * wk[3])
		a4 += float32(v * wk[4])
		a5 += float32(v * wk[5])
		a6 += float32(v * wk[6])
		a7 += float32(v * wk[7])
	}
	acc := [panelWidth]float32{a0, a1, a2, a3, a4, a5, a6, a7}
	storePanelRow(dstRow, col, &acc)
}
