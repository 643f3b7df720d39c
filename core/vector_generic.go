//go:build !(goexperiment.simd && ((amd64 && !go1.27) || (wasm && go1.27)))

package core

// Builds without SIMD kernels run the scalar kernels of attention and GELU.

func attentionScores(row, q, keys []float32, scale float32) {
	attentionScoresScalar(row, q, keys, scale)
}

func weightedRowSum(out, weights, v []float32, stride int) {
	weightedRowSumScalar(out, weights, v, stride)
}

func geluInPlace(x []float32) { geluInPlaceScalar(x) }
