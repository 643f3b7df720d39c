package core

import (
	"fmt"
	"math/rand/v2"
)

// DenseBenchmark is one dense layer with random weights and input, in the
// float32 or int8 layout that Model uses, together with its output buffer.
// It exists so that benchmarks outside this package (cmd/m3ae-bench and its
// wasm build) time the exact matmul kernels of the forward pass. It is not
// part of the model API and may change with the kernels.
type DenseBenchmark struct {
	rows, in, out int
	x             []float32 // [rows, in]
	kernel        []float32 // [in, out], nil for int8 weights
	q             []int8    // [in, out], nil for float32 weights
	scale         []float32 // [out] column scales of q
	bias          []float32 // [out]
	layer         dense     // the kernel and bias packed as Model packs them
	scratch       matMulScratch
	dst           []float32 // [rows, out]
}

// NewDenseBenchmark returns a layer of in inputs and out outputs applied to
// rows input rows, with values drawn from a generator seeded with seed.
// With quantized set, the kernel is stored as int8 values with one float32
// scale per output column, as in an int8 model file, and Run uses the int8
// kernel.
func NewDenseBenchmark(rows, in, out int, quantized bool, seed uint64) (*DenseBenchmark, error) {
	if rows < 1 || in < 1 || out < 1 {
		return nil, fmt.Errorf("%w: dense benchmark of %d rows, %d inputs and %d outputs: each must be at least 1",
			ErrInvalidInput, rows, in, out)
	}
	for _, size := range []struct {
		name  string
		value int64
	}{
		{"rows x in", int64(rows) * int64(in)},
		{"in x out", int64(in) * int64(out)},
		{"rows x out", int64(rows) * int64(out)},
	} {
		if size.value > MaxTensorElements {
			return nil, fmt.Errorf("%w: dense benchmark of %d rows, %d inputs and %d outputs: %s is %d, over the limit of %d (MaxTensorElements)",
				ErrInvalidInput, rows, in, out, size.name, size.value, MaxTensorElements)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	uniform := func(n int) []float32 {
		values := make([]float32, n)
		for i := range values {
			values[i] = uniformSigned(rng)
		}
		return values
	}

	b := &DenseBenchmark{
		rows: rows, in: in, out: out,
		x:    uniform(rows * in),
		bias: uniform(out),
		dst:  make([]float32, rows*out),
	}
	if !quantized {
		b.kernel = uniform(in * out)
		b.layer = packDense(b.kernel, b.bias, in, out)
		return b, nil
	}
	b.q = make([]int8, in*out)
	for i := range b.q {
		b.q[i] = int8(rng.IntN(2*Int8MaxLevel+1) - Int8MaxLevel)
	}
	b.scale = make([]float32, out)
	for j := range b.scale {
		// A scale in [0.001, 0.011), in steps of 1e-9.
		b.scale[j] = float32(float64(1_000_000+rng.IntN(10_000_000)) / 1e9)
	}
	b.layer = packDenseInt8(b.q, b.scale, b.bias, in, out)
	return b, nil
}

// Run computes the layer's output once with the kernel that Model.linear
// runs for these weights, on as many goroutines as Model would use.
func (b *DenseBenchmark) Run() {
	matMul(b.dst, b.x, &b.layer, b.rows, &b.scratch)
}

// Kernel returns the name of the matmul kernel that Run uses on this
// machine and build, such as avx2 or scalar.
func (b *DenseBenchmark) Kernel() string { return matMulKernel() }

// FLOPs returns the floating-point operations of one Run, 2*rows*in*out,
// counting each multiply-add as two.
func (b *DenseBenchmark) FLOPs() float64 {
	return 2 * float64(b.rows) * float64(b.in) * float64(b.out)
}

// Output returns the [rows, out] result of the latest Run. The slice is
// the benchmark's buffer, overwritten by the next Run.
func (b *DenseBenchmark) Output() []float32 { return b.dst }

// uniformSigned returns float32(2*rng.Float64() - 1), a value in [-1, 1).
// Float64's uint64 conversion and the multiply-add compile to fused
// instructions on arm64 and amd64 v3. Their results are exact, but
// TestNoFusedMultiplyAdd flags every fused instruction in the package, so
// this computes with integers and one division.
func uniformSigned(rng *rand.Rand) float32 {
	m := int64(rng.Uint64() << 11 >> 11) // Float64's 53 random bits
	return float32(float64(m-1<<52) / (1 << 52))
}
