//go:build goexperiment.simd && amd64 && !go1.27

package core

import "testing"

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
