package core

import "math"

// Float32 kernels of the forward pass. Every kernel writes into a
// caller-owned dst, allocates nothing and sums in one fixed order, so
// outputs are bit-identical on every target.
//
// The Go specification lets a compiler fuse x*y + z into one FMA
// instruction, and it does so on arm64, ppc64, s390x, riscv64 and on amd64
// built with GOAMD64=v3. A fused result rounds once where the wasm build
// rounds twice, so every multiply-add here is written acc += float32(a * b).
// According to the specification, an explicit conversion rounds to the
// target type and so forbids the fusion. Fusion also reaches across inlined calls, so a
// product passed to a function, returned or stored is converted too.
// TestNoFusedMultiplyAdd disassembles arm64 and amd64 v3 builds to check.
//
// Kernels panic on buffers that are too short, which is a programming
// error because callers size their buffers from the Config.

// layerNormEps is the epsilon of every LayerNorm, flax's default.
const layerNormEps = 1e-6

// maskedScore replaces the attention score of a padding key before the
// softmax. The official M3AE code uses -1e7 rather than -Inf, and exp32
// turns it into an exact 0.
const maskedScore = -1e7

// layerNorm sets each row of dst[rows, width] to the normalized row of
// x[rows, width], scaled and shifted: (x - mean) / sqrt(var + eps) * scale
// + bias, with the biased variance over the row as flax computes it. dst
// may be x.
func layerNorm(dst, x, scale, bias []float32, rows, width int) {
	scale = scale[:width]
	bias = bias[:width]
	n := float32(width)
	for i := range rows {
		row := x[i*width : i*width+width]
		out := dst[i*width : i*width+width]

		var sum float32
		for _, v := range row {
			sum += v
		}
		mean := sum / n

		var squares float32
		for _, v := range row {
			d := v - mean
			squares += float32(d * d)
		}
		rstd := 1 / float32(math.Sqrt(float64(squares/n+layerNormEps)))

		normalizeRow(out, row, scale, bias, mean, rstd)
	}
}

// normalizeRowScalar sets out[k] = (row[k]-mean)*rstd*scale[k] + bias[k]
// for every k of row, rounding to float32 after each operation. out may be
// row.
func normalizeRowScalar(out, row, scale, bias []float32, mean, rstd float32) {
	out = out[:len(row)]
	scale = scale[:len(row)]
	bias = bias[:len(row)]
	for k, v := range row {
		out[k] = float32(float32((v-mean)*rstd)*scale[k]) + bias[k]
	}
}

// addInPlaceScalar sets dst[i] += src[i] for every i of src.
func addInPlaceScalar(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] += v
	}
}

// geluInPlaceScalar applies gelu32 to every element of x.
func geluInPlaceScalar(x []float32) {
	for i, v := range x {
		x[i] = gelu32(v)
	}
}

// GELU tanh approximation constants: sqrt(2/pi) and the cubic coefficient.
const (
	geluScale = 0.7978845608028654
	geluCubic = 0.044715
)

// gelu32 returns the tanh approximation of GELU that flax's nn.gelu uses
// by default: 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))).
func gelu32(x float32) float32 {
	cube := x * x * x
	inner := x + float32(geluCubic*cube)
	return 0.5 * x * (1 + tanh32(float32(geluScale*inner)))
}

// softmaxInPlace replaces x with exp(x - max) / sum(exp(x - max)). The
// sum adds the exponentials in index order, and the kernels that compute
// them and scale by 1/sum run one lane per element.
func softmaxInPlace(x []float32) {
	maxValue := x[0]
	for _, v := range x[1:] {
		if v > maxValue {
			maxValue = v
		}
	}
	expDiffInPlace(x, maxValue)
	var sum float32
	for _, e := range x {
		sum += e
	}
	scaleInPlace(x, 1/sum)
}

// expDiffInPlaceScalar sets x[i] = exp32(x[i] - m). Every x[i] - m is at
// most 0 or NaN when m is the maximum of x, which the SIMD versions rely
// on.
func expDiffInPlaceScalar(x []float32, m float32) {
	for i, v := range x {
		x[i] = exp32(v - m)
	}
}

// scaleInPlaceScalar sets x[i] *= s.
func scaleInPlaceScalar(x []float32, s float32) {
	for i, v := range x {
		x[i] = v * s
	}
}

// attention computes multi-head self-attention over n tokens. qkv[n, 3*width]
// is the output of the qkv dense layer: row i holds q, then k, then v, each
// [H, Dh] with head h at columns h*Dh..(h+1)*Dh-1 of its third. Keys with
// keyPad[j] true get maskedScore before the softmax. dst[n, width] receives
// the heads' outputs concatenated, head h at columns h*Dh..(h+1)*Dh-1.
//
// probs is scratch of at least n elements. With attentionScratchSize(n, Dh)
// elements, each head's keys are first transposed into it, so that the
// scores of several keys are computed side by side, in SIMD lanes where
// built. Both ways give the same bits, because each score still sums its
// products over the head's dimensions in ascending order.
//
// weights, when not nil, receives every query's probabilities [H, n, n],
// element (h, i, j) at (h*n+i)*n + j. The softmax then runs in that row in
// place of probs, so the outputs keep the same bits and nothing is copied.
// A nil weights costs one comparison per query and head.
func attention(dst, qkv, probs []float32, keyPad []bool, n, numHeads, headDim int, weights []float32) {
	width := numHeads * headDim
	stride := 3 * width
	scale := float32(1 / math.Sqrt(float64(headDim)))
	var keys []float32 // [Dh, keyColumns(n)], the keys of one head transposed
	if len(probs) >= attentionScratchSize(n, headDim) {
		keys = probs[n:attentionScratchSize(n, headDim)]
	}
	probs = probs[:n]
	keyPad = keyPad[:n]
	if weights != nil {
		_ = weights[numHeads*n*n-1]
	}

	for h := range numHeads {
		qOffset := h * headDim
		kOffset := width + h*headDim
		vOffset := 2*width + h*headDim
		if keys != nil {
			transposeKeys(keys, qkv, n, stride, kOffset, headDim)
		}
		for i := range n {
			row := probs
			if weights != nil {
				row = weights[(h*n+i)*n : (h*n+i+1)*n]
			}
			row = row[:n]

			// Scores of query i against every key: q·k * Dh^-0.5.
			q := qkv[i*stride+qOffset : i*stride+qOffset+headDim]
			if keys != nil {
				attentionScores(row, q, keys, scale)
			} else {
				attentionScoresDirect(row, q, qkv, stride, kOffset, scale)
			}
			for j, pad := range keyPad {
				if pad {
					row[j] = maskedScore
				}
			}
			softmaxInPlace(row)

			// Weighted sum of the values, keys in ascending order.
			out := dst[i*width+qOffset : i*width+qOffset+headDim]
			weightedRowSum(out, row, qkv[vOffset:], stride)
		}
	}
}

// attentionScratchSize returns the length of attention's probs scratch for
// n tokens and head width headDim that lets it transpose the keys:
// n probabilities, then [headDim, keyColumns(n)] keys.
func attentionScratchSize(n, headDim int) int {
	return n + headDim*keyColumns(n)
}

// keyColumns returns n rounded up to a multiple of 8, the row length of
// the transposed keys, so that every block of 8 keys is whole.
func keyColumns(n int) int { return (n + 7) &^ 7 }

// transposeKeys sets keys[d*keyColumns(n) + j] to dimension d of key j of
// one head, qkv[j*stride + offset + d], and the padding columns j >= n to
// zero.
func transposeKeys(keys, qkv []float32, n, stride, offset, headDim int) {
	columns := keyColumns(n)
	keys = keys[:headDim*columns]
	for j := range n {
		k := qkv[j*stride+offset : j*stride+offset+headDim]
		for d, v := range k {
			keys[d*columns+j] = v
		}
	}
	for d := range headDim {
		clear(keys[d*columns+n : (d+1)*columns])
	}
}

// attentionScoresScalar sets row[j] to float32(q·k_j * scale) for every key
// j of the transposed keys [len(q), keyColumns(len(row))], four keys side
// by side. Each dot product starts from 0 and adds float32(q[d]*k_j[d]) in
// ascending d, as attentionScoresDirect does.
func attentionScoresScalar(row, q, keys []float32, scale float32) {
	columns := keyColumns(len(row))
	keys = keys[:len(q)*columns]
	var block [4]float32
	for j := 0; j < len(row); j += 4 {
		var a0, a1, a2, a3 float32
		for d, qd := range q {
			k := keys[d*columns+j : d*columns+j+4 : d*columns+j+4]
			a0 += float32(qd * k[0])
			a1 += float32(qd * k[1])
			a2 += float32(qd * k[2])
			a3 += float32(qd * k[3])
		}
		block = [4]float32{float32(a0 * scale), float32(a1 * scale), float32(a2 * scale), float32(a3 * scale)}
		copy(row[j:], block[:])
	}
}

// attentionScoresDirect sets row[j] to float32(q·k_j * scale) for every key
// j, reading key j at qkv[j*stride+offset:], four keys side by side.
func attentionScoresDirect(row, q, qkv []float32, stride, offset int, scale float32) {
	headDim := len(q)
	j := 0
	for ; j+4 <= len(row); j += 4 {
		k0 := qkv[j*stride+offset : j*stride+offset+headDim]
		k1 := qkv[(j+1)*stride+offset : (j+1)*stride+offset+headDim]
		k2 := qkv[(j+2)*stride+offset : (j+2)*stride+offset+headDim]
		k3 := qkv[(j+3)*stride+offset : (j+3)*stride+offset+headDim]
		k0, k1, k2, k3 = k0[:len(q)], k1[:len(q)], k2[:len(q)], k3[:len(q)]
		var a0, a1, a2, a3 float32
		for d, qd := range q {
			a0 += float32(qd * k0[d])
			a1 += float32(qd * k1[d])
			a2 += float32(qd * k2[d])
			a3 += float32(qd * k3[d])
		}
		row[j], row[j+1], row[j+2], row[j+3] = float32(a0*scale), float32(a1*scale), float32(a2*scale), float32(a3*scale)
	}
	for ; j < len(row); j++ {
		k := qkv[j*stride+offset : j*stride+offset+headDim]
		k = k[:len(q)]
		var dot float32
		for d, qd := range q {
			dot += float32(qd * k[d])
		}
		row[j] = float32(dot * scale)
	}
}

// weightedRowSumScalar sets out[d] to the sum over j of
// float32(weights[j] * v[j*stride+d]), starting from 0 and adding in
// ascending j.
func weightedRowSumScalar(out, weights, v []float32, stride int) {
	clear(out)
	for j, p := range weights {
		row := v[j*stride : j*stride+len(out)]
		for d, vd := range row {
			out[d] += float32(p * vd)
		}
	}
}

// Constants of exp32. ln 2 = exp32Ln2Hi + exp32Ln2Lo, where exp32Ln2Hi has
// 9 significant bits, so n*exp32Ln2Hi is exact for |n| < 2^15.
const (
	exp32Log2E = 1.44269504088896341
	exp32Ln2Hi = 0.693359375
	exp32Ln2Lo = -2.12194440054690583e-4
	// exp32Underflow is ln of the smallest normal float32. Below it exp32
	// returns 0, flushing results that would be subnormal.
	exp32Underflow = -87.33654475
	// exp32Overflow is ln of the largest float32. Above it exp32 returns +Inf.
	exp32Overflow = 88.72283905
)

// exp32 returns e^x in float32 within a few ulps, using only float32
// arithmetic so that every target gives the same bits (math.Exp has an
// assembly version on amd64 and arm64). Inputs below exp32Underflow give 0.
func exp32(x float32) float32 {
	switch {
	case x != x:
		return x
	case x < exp32Underflow:
		return 0
	case x > exp32Overflow:
		return float32(math.Inf(1))
	}

	// x = n*ln2 + r with |r| <= ln2/2, so e^x = 2^n * e^r.
	t := float32(x * exp32Log2E)
	var n int32
	if t < 0 {
		n = -int32(-t + 0.5)
	} else {
		n = int32(t + 0.5)
	}
	nf := float32(n)
	r := x - float32(nf*exp32Ln2Hi)
	r -= float32(nf * exp32Ln2Lo)

	// Taylor series of e^r to degree 7, whose truncation error is below 6e-9
	// relative for |r| <= 0.35.
	p := float32(1.0 / 5040)
	p = float32(p*r) + 1.0/720
	p = float32(p*r) + 1.0/120
	p = float32(p*r) + 1.0/24
	p = float32(p*r) + 1.0/6
	p = float32(p*r) + 0.5
	p = float32(p*r) + 1
	p = float32(p*r) + 1

	if n > 127 {
		// 2^n itself overflows float32, so scale in two steps.
		return float32(p*math.Float32frombits(uint32(127+127)<<23)) * 2
	}
	return float32(p * math.Float32frombits(uint32(n+127)<<23))
}

// Thresholds of tanh32. Above tanhSaturation, tanh(x) rounds to 1 in
// float32, and below tanhLinear it rounds to x.
const (
	tanhSaturation = 9.1
	tanhLinear     = 2.5e-4
)

// tanh32 returns tanh(x) in float32 as 1 - 2/(e^(2|x|) + 1) with the sign
// of x, within 2e-7 absolute error.
func tanh32(x float32) float32 {
	a := x
	if a < 0 {
		a = -a
	}
	var t float32
	switch {
	case a > tanhSaturation:
		t = 1
	case a < tanhLinear:
		t = a
	default:
		t = 1 - 2/(exp32(float32(2*a))+1)
	}
	if x < 0 {
		return -t
	}
	return t
}
