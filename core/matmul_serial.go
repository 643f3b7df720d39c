//go:build js || wasip1

package core

// Go runs js and wasip1 programs on one thread, so matMul never splits
// there. Browser pages get parallelism from several Web Workers instead.

func matMulWorkers(rows, in, out int) int { return 1 }

// splitState is empty because matMul never splits on this target.
type splitState struct{}

func (*splitState) run(dst, x []float32, d *dense, rows int, s *matMulScratch, workers int) {
	matMulPanels(dst, x, d, rows, 0, len(d.bias), s, 0, 1)
}
