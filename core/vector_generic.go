//go:build !(goexperiment.simd && ((amd64 && !go1.27) || (wasm && go1.27)))

package core

// Builds without SIMD kernels run the scalar kernels of attention, GELU,
// LayerNorm, softmax and residual adds.

func attentionScores(row, q, keys []float32, scale float32) {
	attentionScoresScalar(row, q, keys, scale)
}

func weightedRowSum(out, weights, v []float32, stride int) {
	weightedRowSumScalar(out, weights, v, stride)
}

func geluInPlace(x []float32) { geluInPlaceScalar(x) }

func normalizeRow(out, row, scale, bias []float32, mean, rstd float32) {
	normalizeRowScalar(out, row, scale, bias, mean, rstd)
}

func expDiffInPlace(x []float32, m float32) { expDiffInPlaceScalar(x, m) }

func scaleInPlace(x []float32, s float32) { scaleInPlaceScalar(x, s) }

func addInPlace(dst, src []float32) { addInPlaceScalar(dst, src) }
