package core

// Kernels of int8 models. They keep the float32 kernels' rules: dst first,
// no allocation, one fixed summation order and every product rounded with
// an explicit float32 conversion, so the bits are the same on every target.
//
// matMulInt8 dequantizes a strip of four kernel columns into a float32 tile
// and multiplies with it, so its output has exactly the bits of matMul on
// the dequantized kernel. The other design, summing x*float32(q) and
// multiplying by the column scale at the end, converts every weight once
// per row pair instead of once per call. Measured with go1.26.8 on 2 shared
// amd64 cores (best of 4 runs of 40 calls each, ms per call, at the tiny
// preset's shapes rows x in x out):
//
//	shape          float32  int8 tiles  int8 scale at end
//	81x192x576        7.7        7.5          8.6
//	81x192x768       11.0        8.4          8.6
//	81x768x192        6.8        8.0         14.7
//	21x192x576        1.6        1.7          2.4
//	16x128x30522     65         79           85
//
// So the tiles run at about float32 speed and the other design up to 2x
// slower. BenchmarkMatMulInt8 measures the first two columns.

// matMulInt8 sets dst[rows, out] = x[rows, in] · W + bias[out] for the int8
// kernel W = q[in, out] (element (k, j) at k*out + j) with column scales
// scale[out], W[k, j] = float32(q[k, j]) * scale[j]. A nil bias counts as
// zeros. tile is scratch of at least 4*in values. The output has the bits of
// matMul(dst, x, W, bias, rows, in, out) with W dequantized first: each
// element starts from its bias and adds the products over k in ascending
// order.
func matMulInt8(dst, x []float32, q []int8, scale, bias, tile []float32, rows, in, out int) {
	if rows == 0 || out == 0 {
		return
	}
	_ = dst[rows*out-1]
	_ = x[rows*in-1]
	_ = q[in*out-1]
	scale = scale[:out]
	tile = tile[:4*in]

	// Column strips of 4: dequantize the strip into tile [in, 4], then run
	// matMul's 2x4 register tiles over it for every row pair.
	j := 0
	for ; j+4 <= out; j += 4 {
		dequantizeStrip(tile, q, scale, in, out, j)
		b0, b1, b2, b3 := biasAt(bias, j), biasAt(bias, j+1), biasAt(bias, j+2), biasAt(bias, j+3)
		i := 0
		for ; i+2 <= rows; i += 2 {
			x0 := x[i*in : i*in+in]
			x1 := x[(i+1)*in : (i+1)*in+in]
			x1 = x1[:len(x0)]
			a00, a01, a02, a03 := b0, b1, b2, b3
			a10, a11, a12, a13 := b0, b1, b2, b3
			for k, v0 := range x0 {
				v1 := x1[k]
				wk := tile[4*k : 4*k+4 : 4*k+4]
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
			d0 := dst[i*out+j : i*out+j+4]
			d0[0], d0[1], d0[2], d0[3] = a00, a01, a02, a03
			d1 := dst[(i+1)*out+j : (i+1)*out+j+4]
			d1[0], d1[1], d1[2], d1[3] = a10, a11, a12, a13
		}
		if i < rows {
			xi := x[i*in : i*in+in]
			a0, a1, a2, a3 := b0, b1, b2, b3
			for k, v := range xi {
				wk := tile[4*k : 4*k+4 : 4*k+4]
				a0 += float32(v * wk[0])
				a1 += float32(v * wk[1])
				a2 += float32(v * wk[2])
				a3 += float32(v * wk[3])
			}
			d := dst[i*out+j : i*out+j+4]
			d[0], d[1], d[2], d[3] = a0, a1, a2, a3
		}
	}

	// The last out%4 columns, one at a time through tile[:in].
	for ; j < out; j++ {
		column := tile[:in]
		s, p := scale[j], j
		for k := range column {
			column[k] = float32(float32(q[p]) * s)
			p += out
		}
		for i := range rows {
			acc := biasAt(bias, j)
			for k, v := range x[i*in : i*in+in] {
				acc += float32(v * column[k])
			}
			dst[i*out+j] = acc
		}
	}
}

// dequantizeStrip sets tile[in, 4] to columns j..j+3 of the int8 kernel
// q[in, out] with column scales scale.
func dequantizeStrip(tile []float32, q []int8, scale []float32, in, out, j int) {
	s0, s1, s2, s3 := scale[j], scale[j+1], scale[j+2], scale[j+3]
	p := j
	for k := range in {
		qk := q[p : p+4 : p+4]
		t := tile[4*k : 4*k+4 : 4*k+4]
		t[0] = float32(float32(qk[0]) * s0)
		t[1] = float32(float32(qk[1]) * s1)
		t[2] = float32(float32(qk[2]) * s2)
		t[3] = float32(float32(qk[3]) * s3)
		p += out
	}
}

// dequantizeRow sets dst[i] = float32(q[i]) * scale for every i of q.
func dequantizeRow(dst []float32, q []int8, scale float32) {
	dst = dst[:len(q)]
	for i, v := range q {
		dst[i] = float32(float32(v) * scale)
	}
}
