//go:build goexperiment.simd && go1.27 && wasm

package core

import "simd/archsimd"

// SIMD128 kernels of attention, GELU, LayerNorm, softmax and residual
// adds, with the lane rules of the matmul kernels: a lane computes one
// output element with the scalar kernel's float32 operations in the scalar
// kernel's order.

// attentionScores is attentionScoresScalar with a lane per key, 16 keys
// at a time while they last, then 8.
func attentionScores(row, q, keys []float32, scale float32) {
	columns := keyColumns(len(row))
	keys = keys[:len(q)*columns]
	s := archsimd.BroadcastFloat32x4(scale)
	j := 0
	for ; j+16 <= len(row); j += 16 {
		var a0, a1, a2, a3 archsimd.Float32x4
		for d, qd := range q {
			k := keys[d*columns+j : d*columns+j+16]
			v := archsimd.BroadcastFloat32x4(qd)
			a0 = a0.Add(v.Mul(archsimd.LoadFloat32x4(k[0:4])))
			a1 = a1.Add(v.Mul(archsimd.LoadFloat32x4(k[4:8])))
			a2 = a2.Add(v.Mul(archsimd.LoadFloat32x4(k[8:12])))
			a3 = a3.Add(v.Mul(archsimd.LoadFloat32x4(k[12:16])))
		}
		storeFloat32x4Pair(row, j, a0.Mul(s), a1.Mul(s))
		storeFloat32x4Pair(row, j+8, a2.Mul(s), a3.Mul(s))
	}
	for ; j < len(row); j += 8 {
		var a0, a1 archsimd.Float32x4
		for d, qd := range q {
			k := keys[d*columns+j : d*columns+j+8]
			v := archsimd.BroadcastFloat32x4(qd)
			a0 = a0.Add(v.Mul(archsimd.LoadFloat32x4(k[0:4])))
			a1 = a1.Add(v.Mul(archsimd.LoadFloat32x4(k[4:8])))
		}
		storeFloat32x4Pair(row, j, a0.Mul(s), a1.Mul(s))
	}
}

// weightedRowSum is weightedRowSumScalar with a lane per output dimension,
// 16 dimensions at a time while they last, then 4, then one.
func weightedRowSum(out, weights, v []float32, stride int) {
	d := 0
	for ; d+16 <= len(out); d += 16 {
		var a0, a1, a2, a3 archsimd.Float32x4
		for j, p := range weights {
			row := v[j*stride+d : j*stride+d+16]
			w := archsimd.BroadcastFloat32x4(p)
			a0 = a0.Add(w.Mul(archsimd.LoadFloat32x4(row[0:4])))
			a1 = a1.Add(w.Mul(archsimd.LoadFloat32x4(row[4:8])))
			a2 = a2.Add(w.Mul(archsimd.LoadFloat32x4(row[8:12])))
			a3 = a3.Add(w.Mul(archsimd.LoadFloat32x4(row[12:16])))
		}
		a0.Store(out[d : d+4])
		a1.Store(out[d+4 : d+8])
		a2.Store(out[d+8 : d+12])
		a3.Store(out[d+12 : d+16])
	}
	for ; d+4 <= len(out); d += 4 {
		var a archsimd.Float32x4
		for j, p := range weights {
			a = a.Add(archsimd.BroadcastFloat32x4(p).Mul(archsimd.LoadFloat32x4(v[j*stride+d : j*stride+d+4])))
		}
		a.Store(out[d : d+4])
	}
	if d < len(out) {
		weightedRowSumScalar(out[d:], weights, v[d:], stride)
	}
}

// geluInPlace is geluInPlaceScalar with a lane per element, 4 at a time,
// and the last len(x)%4 elements scalar. Each lane runs the operations of
// gelu32, tanh32 and exp32 in their order, as the AVX2 build's geluInPlace
// describes. The loop body is written out rather than called, because a
// call costs Go's wasm code a spill of every live value.
func geluInPlace(x []float32) {
	ones := archsimd.BroadcastFloat32x4(1) // the constant 1 in every lane
	two := archsimd.BroadcastFloat32x4(2)
	half := archsimd.BroadcastFloat32x4(0.5)
	var zero archsimd.Float32x4
	i := 0
	for ; i+4 <= len(x); i += 4 {
		lanes := x[i : i+4]
		v := archsimd.LoadFloat32x4(lanes)

		cube := v.Mul(v).Mul(v)
		inner := v.Add(archsimd.BroadcastFloat32x4(geluCubic).Mul(cube))
		y := archsimd.BroadcastFloat32x4(geluScale).Mul(inner)

		// tanh32(y): a = |y|, keeping -0 as tanh32 does.
		negative := y.Less(zero)
		a := zero.Sub(y).IfElse(negative, y)

		// exp32(2a).
		z := two.Mul(a)
		t := z.Mul(archsimd.BroadcastFloat32x4(exp32Log2E))
		n := t.Add(half).ConvertToInt32()
		nf := n.ConvertToFloat32()
		r := z.Sub(nf.Mul(archsimd.BroadcastFloat32x4(exp32Ln2Hi)))
		r = r.Sub(nf.Mul(archsimd.BroadcastFloat32x4(exp32Ln2Lo)))
		p := expTaylor32x4(r)
		e := p.Mul(n.Add(archsimd.BroadcastInt32x4(127)).ShiftAllLeft(23).ToBits().BitsToFloat32())

		th := ones.Sub(two.Div(e.Add(ones)))
		th = a.IfElse(a.Less(archsimd.BroadcastFloat32x4(tanhLinear)), th)
		th = ones.IfElse(a.Greater(archsimd.BroadcastFloat32x4(tanhSaturation)), th)
		th = zero.Sub(th).IfElse(negative, th)

		half.Mul(v).Mul(ones.Add(th)).Store(lanes)
	}
	geluInPlaceScalar(x[i:])
}

// normalizeRow is normalizeRowScalar with a lane per element, 4 at a time,
// and the last len(row)%4 elements scalar.
func normalizeRow(out, row, scale, bias []float32, mean, rstd float32) {
	out = out[:len(row)]
	scale = scale[:len(row)]
	bias = bias[:len(row)]
	m := archsimd.BroadcastFloat32x4(mean)
	r := archsimd.BroadcastFloat32x4(rstd)
	k := 0
	for ; k+4 <= len(row); k += 4 {
		v := archsimd.LoadFloat32x4(row[k : k+4])
		s := archsimd.LoadFloat32x4(scale[k : k+4])
		b := archsimd.LoadFloat32x4(bias[k : k+4])
		v.Sub(m).Mul(r).Mul(s).Add(b).Store(out[k : k+4])
	}
	normalizeRowScalar(out[k:], row[k:], scale[k:], bias[k:], mean, rstd)
}

// expDiffInPlace is expDiffInPlaceScalar with a lane per element, 4 at a
// time, and the last len(x)%4 elements scalar, on the terms of the AVX2
// build's expDiffInPlace: arguments at most 0 or NaN. The loop body is
// written out rather than called, because a call costs Go's wasm code a
// spill of every live value.
func expDiffInPlace(x []float32, m float32) {
	var zero archsimd.Float32x4
	shift := archsimd.BroadcastFloat32x4(m)
	half := archsimd.BroadcastFloat32x4(0.5)
	i := 0
	for ; i+4 <= len(x); i += 4 {
		lanes := x[i : i+4]
		z := archsimd.LoadFloat32x4(lanes).Sub(shift)

		// exp32(z): n = -int32(-t + 0.5), as exp32 rounds a negative t.
		t := z.Mul(archsimd.BroadcastFloat32x4(exp32Log2E))
		n := zero.Sub(t).Add(half).ConvertToInt32().Neg()
		nf := n.ConvertToFloat32()
		r := z.Sub(nf.Mul(archsimd.BroadcastFloat32x4(exp32Ln2Hi)))
		r = r.Sub(nf.Mul(archsimd.BroadcastFloat32x4(exp32Ln2Lo)))
		p := expTaylor32x4(r)
		e := p.Mul(n.Add(archsimd.BroadcastInt32x4(127)).ShiftAllLeft(23).ToBits().BitsToFloat32())
		e = zero.IfElse(z.Less(archsimd.BroadcastFloat32x4(exp32Underflow)), e)
		z.IfElse(z.NotEqual(z), e).Store(lanes)
	}
	expDiffInPlaceScalar(x[i:], m)
}

// scaleInPlace is scaleInPlaceScalar with a lane per element, 4 at a time,
// and the last len(x)%4 elements scalar.
func scaleInPlace(x []float32, s float32) {
	factor := archsimd.BroadcastFloat32x4(s)
	i := 0
	for ; i+4 <= len(x); i += 4 {
		lanes := x[i : i+4]
		archsimd.LoadFloat32x4(lanes).Mul(factor).Store(lanes)
	}
	scaleInPlaceScalar(x[i:], s)
}

// addInPlace is addInPlaceScalar with a lane per element, 4 at a time, and
// the last len(src)%4 elements scalar.
func addInPlace(dst, src []float32) {
	dst = dst[:len(src)]
	i := 0
	for ; i+4 <= len(src); i += 4 {
		d := dst[i : i+4]
		archsimd.LoadFloat32x4(d).Add(archsimd.LoadFloat32x4(src[i : i+4])).Store(d)
	}
	addInPlaceScalar(dst[i:], src[i:])
}

// expTaylor32x4 returns exp32's Taylor series of e^r to degree 7 in each
// lane, with exp32's operations in their order. It is small enough for Go
// to inline, so the kernels' loops make no call.
func expTaylor32x4(r archsimd.Float32x4) archsimd.Float32x4 {
	ones := archsimd.BroadcastFloat32x4(1)
	p := archsimd.BroadcastFloat32x4(1.0 / 5040)
	p = p.Mul(r).Add(archsimd.BroadcastFloat32x4(1.0 / 720))
	p = p.Mul(r).Add(archsimd.BroadcastFloat32x4(1.0 / 120))
	p = p.Mul(r).Add(archsimd.BroadcastFloat32x4(1.0 / 24))
	p = p.Mul(r).Add(archsimd.BroadcastFloat32x4(1.0 / 6))
	p = p.Mul(r).Add(archsimd.BroadcastFloat32x4(0.5))
	p = p.Mul(r).Add(ones)
	return p.Mul(r).Add(ones)
}
