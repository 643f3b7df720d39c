//go:build !js && !wasip1

package core

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// forceSplit makes matMul split every product across workers goroutines
// (0 means GOMAXPROCS), however small, until the test ends.
func forceSplit(t *testing.T, workers int) {
	t.Helper()
	share, count := minShare, parallelWorkers
	minShare, parallelWorkers = 0, workers
	t.Cleanup(func() { minShare, parallelWorkers = share, count })
}

// TestMatMulSplitKeepsBits runs float32 and int8 layers on 1 to 5
// goroutines, by GOMAXPROCS and by an explicit count, and requires the bits
// of the reference loop every time.
func TestMatMulSplitKeepsBits(t *testing.T) {
	shapes := []struct{ rows, in, out int }{{1, 3, 9}, {5, 17, 40}, {7, 33, 129}, {16, 64, 1003}}
	rng := rand.New(rand.NewPCG(31, 32))
	for _, s := range shapes {
		x := uniformFloats(rng, s.rows*s.in, 3)
		w := uniformFloats(rng, s.in*s.out, 1)
		bias := uniformFloats(rng, s.out, 1)
		q, scale := randomInt8Kernel(rng, s.in, s.out)
		wantFloat32 := make([]float32, s.rows*s.out)
		referenceMatMul(wantFloat32, x, w, bias, s.rows, s.in, s.out)
		wantInt8 := make([]float32, s.rows*s.out)
		referenceMatMul(wantInt8, x, dequantizeColumns(q, scale, s.in, s.out), bias, s.rows, s.in, s.out)
		float32Layer := packDense(w, bias, s.in, s.out)
		int8Layer := packDenseInt8(q, scale, bias, s.in, s.out)

		for _, split := range []struct{ procs, workers int }{{1, 0}, {2, 0}, {1, 2}, {2, 3}, {2, 5}} {
			name := fmt.Sprintf("%dx%dx%d GOMAXPROCS %d workers %d", s.rows, s.in, s.out, split.procs, split.workers)
			t.Run(name, func(t *testing.T) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(split.procs))
				forceSplit(t, split.workers)
				var scratch matMulScratch
				got := make([]float32, s.rows*s.out)
				matMul(got, x, &float32Layer, s.rows, &scratch)
				compareBits(t, "float32 matMul", got, wantFloat32)
				clear(got)
				matMul(got, x, &int8Layer, s.rows, &scratch)
				compareBits(t, "int8 matMul", got, wantInt8)
			})
		}
	}
}

// TestMatMulWorkersBySize checks that a product gets one goroutine per
// minShareMultiplyAdds of work, at most GOMAXPROCS.
func TestMatMulWorkersBySize(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	tests := []struct {
		rows, in, out int
		want          int
	}{
		{16, 128, 30522, 3}, // 62.5M multiply-adds
		{81, 192, 768, 2},   // 11.9M, 2.8 shares
		{81, 192, 576, 2},   // 9.0M
		{1, 2048, 4096, 2},  // exactly two shares
		{1, 2048, 4095, 1},  // just under two shares
		{81, 192, 192, 1},   // 3.0M
		{21, 32, 96, 1},
	}
	for _, tt := range tests {
		if got := matMulWorkers(tt.rows, tt.in, tt.out); got != tt.want {
			t.Errorf("matMulWorkers(%dx%dx%d) = %d with GOMAXPROCS 3, want %d", tt.rows, tt.in, tt.out, got, tt.want)
		}
	}
}

// TestModelSplitKeepsOutputs runs a whole model with every product split
// across goroutines and compares every output with the unsplit run.
func TestModelSplitKeepsOutputs(t *testing.T) {
	cfg := microConfig(t)
	for _, quantized := range []bool{false, true} {
		var mf *ModelFile
		if quantized {
			mf = int8ModelFile(cfg, 9)
		} else {
			mf = perturbedModelFile(t, cfg, 9)
		}
		m, err := NewModel(mf)
		if err != nil {
			t.Fatal(err)
		}
		cases := oracleCases(t, cfg, 3)
		want := runGo(t, m, cases)

		t.Run(fmt.Sprintf("int8 %v", quantized), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
			forceSplit(t, 3)
			got := runGo(t, m, cases)
			for name, values := range want {
				compareBits(t, name, got[name], values)
			}
		})
	}
}

// TestMatMulSplitConcurrentCalls runs split products from several
// goroutines at once, each with its own scratch, as Models used from
// several goroutines do. The calls share the pool and must keep their bits.
func TestMatMulSplitConcurrentCalls(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	forceSplit(t, 3)
	const rows, in, out, callers = 9, 31, 77, 4
	rng := rand.New(rand.NewPCG(33, 34))
	x := uniformFloats(rng, rows*in, 3)
	q, scale := randomInt8Kernel(rng, in, out)
	bias := uniformFloats(rng, out, 1)
	layer := packDenseInt8(q, scale, bias, in, out)
	want := make([]float32, rows*out)
	referenceMatMul(want, x, dequantizeColumns(q, scale, in, out), bias, rows, in, out)

	results := make([][]float32, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			var scratch matMulScratch
			got := make([]float32, rows*out)
			for range 20 {
				matMul(got, x, &layer, rows, &scratch)
			}
			results[c] = got
		})
	}
	wg.Wait()
	for c, got := range results {
		compareBits(t, fmt.Sprintf("caller %d int8 matMul", c), got, want)
	}
}
