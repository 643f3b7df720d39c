//go:build !(goexperiment.simd && amd64 && !go1.27)

package core

// panelWidth is the number of output columns in one panel: 8, two 128-bit
// SIMD128 vectors. The scalar kernels pass over a panel once per group of 4
// columns. With 16-column panels, whose rows fill a 64-byte cache line,
// each pass moved twice the cache lines, and the tiny preset's scalar
// forward pass in Node 20 took 122 ms against 107 ms.
const panelWidth = 8
