//go:build !(goexperiment.simd && ((amd64 && !go1.27) || (wasm && go1.27)))

package core

// Builds without a SIMD kernel: the scalar kernels only.

// matMulKernel names the kernels that matMul runs on this machine.
func matMulKernel() string { return "scalar" }

func matMulPanel(dst, x []float32, panel [][panelWidth]float32, bias *[panelWidth]float32, rows, out, col int) {
	matMulPanelScalar(dst, x, panel, bias, rows, out, col)
}

func matMulPanelPair(dst, x []float32, w0, w1 [][panelWidth]float32, bias0, bias1 *[panelWidth]float32, rows, out, col int) {
	matMulPanelScalar(dst, x, w0, bias0, rows, out, col)
	matMulPanelScalar(dst, x, w1, bias1, rows, out, col+panelWidth)
}

func dequantizePanel(tile [][panelWidth]float32, q []int8, scale *[panelWidth]float32) {
	dequantizePanelScalar(tile, q, scale)
}
