package core

// Kernels of int8 models. They keep the float32 kernels' rules: dst first,
// no allocation, one fixed summation order and every product rounded with
// an explicit float32 conversion, so the bits are the same on every target.
//
// matMul runs an int8 layer by dequantizing two panels of its packed int8
// kernel into a float32 tile of the goroutine at work and
// running the float32 kernel over that tile. So its output has exactly the
// bits of the float32 layer with the dequantized kernel. Measured in
// GFLOP/s of thread CPU time with Go 1.26.8's AVX2 kernels on one core of
// a shared Xeon, against dequantizing each weight vector inside the k loop
// of every 3-row tile (and against float32 weights):
//
//	shape          float32  int8 tiles  int8 in the loop
//	81x192x768        57        51            40
//	21x192x576        56        44            39
//	15x128x30512      44        39            38
//
// An earlier scalar design that summed x*float32(q) and multiplied by the
// column scale at the end ran up to 2x slower than tiles, and it changes
// the bits. BenchmarkMatMulInt8 compares float32 and int8 weights.

// dequantizePanelScalar sets tile[k][lane] to float32(q[k*panelWidth+lane]) *
// scale[lane] for every row k of the int8 panel q: one panel of an int8
// kernel, dequantized.
func dequantizePanelScalar(tile [][panelWidth]float32, q []int8, scale *[panelWidth]float32) {
	tile = tile[:len(q)/panelWidth]
	for k := range tile {
		qk, t := (*[panelWidth]int8)(q[k*panelWidth:(k+1)*panelWidth]), &tile[k]
		for lane, v := range qk {
			t[lane] = float32(float32(v) * scale[lane])
		}
	}
}

// dequantizeRow sets dst[i] = float32(q[i]) * scale for every i of q.
func dequantizeRow(dst []float32, q []int8, scale float32) {
	dst = dst[:len(q)]
	for i, v := range q {
		dst[i] = float32(float32(v) * scale)
	}
}
