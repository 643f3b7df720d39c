//go:build goexperiment.simd && amd64 && !go1.27

package core

import (
	"fmt"
	"testing"
)

// TestMatMulAVX2KernelsMatchScalar runs the panel kernel checks with the
// AVX-512 kernels turned off, so that a CPU with AVX-512 tests the AVX2
// kernels as well.
func TestMatMulAVX2KernelsMatchScalar(t *testing.T) {
	if !hasAVX2 {
		t.Skip("the CPU has no AVX2")
	}
	saved := hasAVX512
	hasAVX512 = false
	defer func() { hasAVX512 = saved }()
	checkPanelKernelsMatchScalar(t)
}

// BenchmarkMatMulAVX512AgainstAVX2 times matMul on the same layers with
// the AVX-512 kernels and with the AVX2 ones, alternately, so that both
// see the same machine load:
//
//	GOEXPERIMENT=simd GOMAXPROCS=1 go test -run '^$' -bench MatMulAVX512AgainstAVX2 ./core
func BenchmarkMatMulAVX512AgainstAVX2(b *testing.B) {
	if !hasAVX512 {
		b.Skip("the CPU has no AVX-512")
	}
	shapes := []struct{ rows, in, out int }{
		{81, 192, 768},   // tiny encoder fc1
		{16, 128, 30522}, // tiny text head
	}
	for _, s := range shapes {
		for _, avx512 := range []bool{true, false, true, false} {
			kernel := "avx2"
			if avx512 {
				kernel = "avx512"
			}
			b.Run(fmt.Sprintf("%dx%dx%d/%s", s.rows, s.in, s.out, kernel), func(b *testing.B) {
				saved := hasAVX512
				hasAVX512 = avx512
				defer func() { hasAVX512 = saved }()
				x := make([]float32, s.rows*s.in)
				for i := range x {
					x[i] = float32(i%7) * 0.1
				}
				layer := packDense(make([]float32, s.in*s.out), make([]float32, s.out), s.in, s.out)
				dst := make([]float32, s.rows*s.out)
				var scratch matMulScratch
				for b.Loop() {
					matMul(dst, x, &layer, s.rows, &scratch)
				}
				b.ReportMetric(2*float64(s.rows*s.in*s.out)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
