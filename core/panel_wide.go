//go:build goexperiment.simd && amd64 && !go1.27

package core

// panelWidth is the number of output columns in one panel. The AVX-512
// kernels read a panel row as one 512-bit vector and the AVX2 kernels as
// two 256-bit ones.
const panelWidth = 16
