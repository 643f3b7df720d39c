//go:build goexperiment.simd && amd64 && !go1.27

package core

import "simd/archsimd"

// AVX2 kernels of attention, GELU, LayerNorm, softmax and residual adds,
// with the lane rules of the matmul kernels. A lane computes one output
// element with the scalar kernel's float32 operations in the scalar
// kernel's order, and every kernel ends with VZEROUPPER.

// attentionScores is attentionScoresScalar with a lane per key, 32 keys at
// a time while they last and then 8.
func attentionScores(row, q, keys []float32, scale float32) {
	if !hasAVX2 {
		attentionScoresScalar(row, q, keys, scale)
		return
	}
	columns := keyColumns(len(row))
	keys = keys[:len(q)*columns]
	s := archsimd.BroadcastFloat32x8(scale)
	j := 0
	for ; j+32 <= len(row); j += 32 {
		var a0, a1, a2, a3 archsimd.Float32x8
		for d, qd := range q {
			k := keys[d*columns+j : d*columns+j+32]
			v := archsimd.BroadcastFloat32x8(qd)
			a0 = a0.Add(v.Mul(archsimd.LoadFloat32x8((*[8]float32)(k[0:8]))))
			a1 = a1.Add(v.Mul(archsimd.LoadFloat32x8((*[8]float32)(k[8:16]))))
			a2 = a2.Add(v.Mul(archsimd.LoadFloat32x8((*[8]float32)(k[16:24]))))
			a3 = a3.Add(v.Mul(archsimd.LoadFloat32x8((*[8]float32)(k[24:32]))))
		}
		a0.Mul(s).Store((*[8]float32)(row[j : j+8]))
		a1.Mul(s).Store((*[8]float32)(row[j+8 : j+16]))
		a2.Mul(s).Store((*[8]float32)(row[j+16 : j+24]))
		a3.Mul(s).Store((*[8]float32)(row[j+24 : j+32]))
	}
	for ; j < len(row); j += 8 {
		var a archsimd.Float32x8
		for d, qd := range q {
			k := (*[8]float32)(keys[d*columns+j : d*columns+j+8])
			a = a.Add(archsimd.BroadcastFloat32x8(qd).Mul(archsimd.LoadFloat32x8(k)))
		}
		storeFloat32x8(row, j, a.Mul(s))
	}
	archsimd.ClearAVXUpperBits()
}

// weightedRowSum is weightedRowSumScalar with a lane per output dimension,
// 32 dimensions at a time while they last, then 8, then one.
func weightedRowSum(out, weights, v []float32, stride int) {
	if !hasAVX2 {
		weightedRowSumScalar(out, weights, v, stride)
		return
	}
	d := 0
	for ; d+32 <= len(out); d += 32 {
		var a0, a1, a2, a3 archsimd.Float32x8
		for j, p := range weights {
			row := v[j*stride+d : j*stride+d+32]
			w := archsimd.BroadcastFloat32x8(p)
			a0 = a0.Add(w.Mul(archsimd.LoadFloat32x8((*[8]float32)(row[0:8]))))
			a1 = a1.Add(w.Mul(archsimd.LoadFloat32x8((*[8]float32)(row[8:16]))))
			a2 = a2.Add(w.Mul(archsimd.LoadFloat32x8((*[8]float32)(row[16:24]))))
			a3 = a3.Add(w.Mul(archsimd.LoadFloat32x8((*[8]float32)(row[24:32]))))
		}
		a0.Store((*[8]float32)(out[d : d+8]))
		a1.Store((*[8]float32)(out[d+8 : d+16]))
		a2.Store((*[8]float32)(out[d+16 : d+24]))
		a3.Store((*[8]float32)(out[d+24 : d+32]))
	}
	for ; d+8 <= len(out); d += 8 {
		var a archsimd.Float32x8
		for j, p := range weights {
			row := (*[8]float32)(v[j*stride+d : j*stride+d+8])
			a = a.Add(archsimd.BroadcastFloat32x8(p).Mul(archsimd.LoadFloat32x8(row)))
		}
		a.Store((*[8]float32)(out[d : d+8]))
	}
	archsimd.ClearAVXUpperBits()
	if d < len(out) {
		weightedRowSumScalar(out[d:], weights, v[d:], stride)
	}
}

// geluInPlace is geluInPlaceScalar with a lane per element, 8 at a time,
// and the last len(x)%8 elements scalar. Each lane runs the operations of
// gelu32, tanh32 and exp32 in their order. tanh32 takes one of three
// branches by |y|, so every lane computes the exp32 branch and a mask then
// picks 1, |y| or that result. Where the exp32 result is picked, its
// argument 2|y| lies in [5e-4, 18.2], so exp32 takes neither its overflow
// nor its underflow branch and 2^n is a normal float32. The loop body is
// written out rather than called, as in expDiffInPlace.
func geluInPlace(x []float32) {
	if !hasAVX2 {
		geluInPlaceScalar(x)
		return
	}
	ones := archsimd.BroadcastFloat32x8(1) // the constant 1 in every lane
	two := archsimd.BroadcastFloat32x8(2)
	half := archsimd.BroadcastFloat32x8(0.5)
	var zero archsimd.Float32x8
	i := 0
	for ; i+8 <= len(x); i += 8 {
		lanes := (*[8]float32)(x[i : i+8])
		v := archsimd.LoadFloat32x8(lanes)

		cube := v.Mul(v).Mul(v)
		inner := v.Add(archsimd.BroadcastFloat32x8(geluCubic).Mul(cube))
		y := archsimd.BroadcastFloat32x8(geluScale).Mul(inner)

		// tanh32(y): a = |y|, keeping -0 as tanh32 does.
		negative := y.Less(zero)
		a := zero.Sub(y).Merge(y, negative)

		// exp32(2a).
		z := two.Mul(a)
		t := z.Mul(archsimd.BroadcastFloat32x8(exp32Log2E))
		n := t.Add(half).ConvertToInt32()
		nf := n.ConvertToFloat32()
		r := z.Sub(nf.Mul(archsimd.BroadcastFloat32x8(exp32Ln2Hi)))
		r = r.Sub(nf.Mul(archsimd.BroadcastFloat32x8(exp32Ln2Lo)))
		p := expTaylor32x8(r)
		e := p.Mul(n.Add(archsimd.BroadcastInt32x8(127)).ShiftAllLeft(23).AsFloat32x8())

		th := ones.Sub(two.Div(e.Add(ones)))
		th = a.Merge(th, a.Less(archsimd.BroadcastFloat32x8(tanhLinear)))
		th = ones.Merge(th, a.Greater(archsimd.BroadcastFloat32x8(tanhSaturation)))
		th = zero.Sub(th).Merge(th, negative)

		half.Mul(v).Mul(ones.Add(th)).Store(lanes)
	}
	archsimd.ClearAVXUpperBits()
	geluInPlaceScalar(x[i:])
}

// normalizeRow is normalizeRowScalar with a lane per element, 8 at a time,
// and the last len(row)%8 elements scalar.
func normalizeRow(out, row, scale, bias []float32, mean, rstd float32) {
	if !hasAVX2 {
		normalizeRowScalar(out, row, scale, bias, mean, rstd)
		return
	}
	out = out[:len(row)]
	scale = scale[:len(row)]
	bias = bias[:len(row)]
	m := archsimd.BroadcastFloat32x8(mean)
	r := archsimd.BroadcastFloat32x8(rstd)
	k := 0
	for ; k+8 <= len(row); k += 8 {
		v := archsimd.LoadFloat32x8((*[8]float32)(row[k : k+8]))
		s := archsimd.LoadFloat32x8((*[8]float32)(scale[k : k+8]))
		b := archsimd.LoadFloat32x8((*[8]float32)(bias[k : k+8]))
		v.Sub(m).Mul(r).Mul(s).Add(b).Store((*[8]float32)(out[k : k+8]))
	}
	archsimd.ClearAVXUpperBits()
	normalizeRowScalar(out[k:], row[k:], scale[k:], bias[k:], mean, rstd)
}

// expDiffInPlace is expDiffInPlaceScalar with a lane per element, 8 at a
// time, and the last len(x)%8 elements scalar. Each lane follows exp32 for
// an argument that is at most 0 or NaN: the rounding of negative n, the
// underflow to 0 below exp32Underflow (-Inf included) and NaN passed
// through. Arguments above 0, which softmax never makes, would need
// exp32's other branches.
//
// The loop body is written out rather than called: around a call, Go
// reloads m with a legacy SSE instruction while the YMM upper halves are
// dirty, and that made the loop 3x slower than scalar exp32 on a Xeon.
func expDiffInPlace(x []float32, m float32) {
	if !hasAVX2 {
		expDiffInPlaceScalar(x, m)
		return
	}
	var zero archsimd.Float32x8
	var zeroInt archsimd.Int32x8
	shift := archsimd.BroadcastFloat32x8(m)
	half := archsimd.BroadcastFloat32x8(0.5)
	i := 0
	for ; i+8 <= len(x); i += 8 {
		lanes := (*[8]float32)(x[i : i+8])
		z := archsimd.LoadFloat32x8(lanes).Sub(shift)

		// exp32(z): n = -int32(-t + 0.5), as exp32 rounds a negative t.
		t := z.Mul(archsimd.BroadcastFloat32x8(exp32Log2E))
		n := zeroInt.Sub(zero.Sub(t).Add(half).ConvertToInt32())
		nf := n.ConvertToFloat32()
		r := z.Sub(nf.Mul(archsimd.BroadcastFloat32x8(exp32Ln2Hi)))
		r = r.Sub(nf.Mul(archsimd.BroadcastFloat32x8(exp32Ln2Lo)))
		p := expTaylor32x8(r)
		e := p.Mul(n.Add(archsimd.BroadcastInt32x8(127)).ShiftAllLeft(23).AsFloat32x8())
		e = zero.Merge(e, z.Less(archsimd.BroadcastFloat32x8(exp32Underflow)))
		z.Merge(e, z.IsNaN()).Store(lanes)
	}
	archsimd.ClearAVXUpperBits()
	expDiffInPlaceScalar(x[i:], m)
}

// scaleInPlace is scaleInPlaceScalar with a lane per element, 8 at a time,
// and the last len(x)%8 elements scalar.
func scaleInPlace(x []float32, s float32) {
	if !hasAVX2 {
		scaleInPlaceScalar(x, s)
		return
	}
	factor := archsimd.BroadcastFloat32x8(s)
	i := 0
	for ; i+8 <= len(x); i += 8 {
		lanes := (*[8]float32)(x[i : i+8])
		archsimd.LoadFloat32x8(lanes).Mul(factor).Store(lanes)
	}
	archsimd.ClearAVXUpperBits()
	scaleInPlaceScalar(x[i:], s)
}

// addInPlace is addInPlaceScalar with a lane per element, 8 at a time, and
// the last len(src)%8 elements scalar.
func addInPlace(dst, src []float32) {
	if !hasAVX2 {
		addInPlaceScalar(dst, src)
		return
	}
	dst = dst[:len(src)]
	i := 0
	for ; i+8 <= len(src); i += 8 {
		d := (*[8]float32)(dst[i : i+8])
		archsimd.LoadFloat32x8(d).Add(archsimd.LoadFloat32x8((*[8]float32)(src[i : i+8]))).Store(d)
	}
	archsimd.ClearAVXUpperBits()
	addInPlaceScalar(dst[i:], src[i:])
}

// storeFloat32x8 writes the lanes of v to row[col:col+8], leaving out the
// lanes at or past len(row).
func storeFloat32x8(row []float32, col int, v archsimd.Float32x8) {
	if col+8 <= len(row) {
		v.Store((*[8]float32)(row[col : col+8]))
		return
	}
	var lanes [8]float32
	v.Store(&lanes)
	copy(row[col:], lanes[:len(row)-col])
}

// expTaylor32x8 returns exp32's Taylor series of e^r to degree 7 in each
// lane, with exp32's operations in their order. It is small enough for Go
// to inline, so the kernels' loops make no call.
func expTaylor32x8(r archsimd.Float32x8) archsimd.Float32x8 {
	ones := archsimd.BroadcastFloat32x8(1)
	p := archsimd.BroadcastFloat32x8(1.0 / 5040)
	p = p.Mul(r).Add(archsimd.BroadcastFloat32x8(1.0 / 720))
	p = p.Mul(r).Add(archsimd.BroadcastFloat32x8(1.0 / 120))
	p = p.Mul(r).Add(archsimd.BroadcastFloat32x8(1.0 / 24))
	p = p.Mul(r).Add(archsimd.BroadcastFloat32x8(1.0 / 6))
	p = p.Mul(r).Add(archsimd.BroadcastFloat32x8(0.5))
	p = p.Mul(r).Add(ones)
	return p.Mul(r).Add(ones)
}
