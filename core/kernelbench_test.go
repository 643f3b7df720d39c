package core

import (
	"errors"
	"math"
	"testing"
)

// denseBenchmarkTolerance bounds the difference between Run's float32
// output and a float64 reference of the same product, relative to the sum
// of the magnitudes of the terms (at most 64 terms here).
const denseBenchmarkTolerance = 1e-5

// referenceDense returns x·w + bias in float64 and, per output element, the
// sum of the magnitudes of its terms.
func referenceDense(x, w, bias []float32, rows, in, out int) (values, magnitudes []float64) {
	values = make([]float64, rows*out)
	magnitudes = make([]float64, rows*out)
	for i := range rows {
		for j := range out {
			sum, size := float64(bias[j]), math.Abs(float64(bias[j]))
			for k := range in {
				term := float64(x[i*in+k]) * float64(w[k*out+j])
				sum += term
				size += math.Abs(term)
			}
			values[i*out+j], magnitudes[i*out+j] = sum, size
		}
	}
	return values, magnitudes
}

func TestDenseBenchmarkComputesLayer(t *testing.T) {
	shapes := []struct{ rows, in, out int }{{1, 1, 1}, {3, 5, 7}, {21, 64, 30}}
	for _, s := range shapes {
		for _, quantized := range []bool{false, true} {
			b, err := NewDenseBenchmark(s.rows, s.in, s.out, quantized, 3)
			if err != nil {
				t.Fatalf("NewDenseBenchmark(%d, %d, %d, quantized %v): %v", s.rows, s.in, s.out, quantized, err)
			}
			w := b.kernel
			if quantized {
				w = dequantizeColumns(b.q, b.scale, s.in, s.out)
			}
			want, magnitudes := referenceDense(b.x, w, b.bias, s.rows, s.in, s.out)

			b.Run()
			got := b.Output()
			if len(got) != s.rows*s.out {
				t.Fatalf("%dx%dx%d quantized %v: Output has %d values, want %d", s.rows, s.in, s.out, quantized, len(got), s.rows*s.out)
			}
			for i := range got {
				if diff := math.Abs(float64(got[i]) - want[i]); diff > denseBenchmarkTolerance*magnitudes[i] {
					t.Errorf("%dx%dx%d quantized %v: Output()[%d] = %v, want %v within %g", s.rows, s.in, s.out, quantized, i, got[i], want[i], denseBenchmarkTolerance*magnitudes[i])
				}
			}
			if want := 2 * float64(s.rows*s.in*s.out); b.FLOPs() != want {
				t.Errorf("%dx%dx%d: FLOPs() = %v, want %v", s.rows, s.in, s.out, b.FLOPs(), want)
			}
		}
	}
}

func TestDenseBenchmarkInt8UsesInt8Kernel(t *testing.T) {
	b, err := NewDenseBenchmark(4, 8, 12, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	if b.kernel != nil {
		t.Error("int8 benchmark has float32 weights, want only int8 values and scales")
	}
	for i, v := range b.q {
		if v < -Int8MaxLevel {
			t.Fatalf("q[%d] = %d, want at least -%d", i, v, Int8MaxLevel)
		}
	}
	for j, s := range b.scale {
		if !(s > 0) {
			t.Fatalf("scale[%d] = %v, want positive", j, s)
		}
	}
}

func TestDenseBenchmarkNamesKernel(t *testing.T) {
	b, err := NewDenseBenchmark(2, 3, 4, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := b.Kernel(), matMulKernel(); got != want || got == "" {
		t.Errorf("Kernel() = %q, want %q, the kernel matMul runs", got, want)
	}
}

func TestDenseBenchmarkRejectsBadSizes(t *testing.T) {
	tests := []struct{ rows, in, out int }{
		{0, 4, 4}, {4, 0, 4}, {4, 4, -1}, {1 << 16, 1 << 16, 1},
	}
	for _, tt := range tests {
		_, err := NewDenseBenchmark(tt.rows, tt.in, tt.out, false, 1)
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("NewDenseBenchmark(%d, %d, %d) error = %v, want ErrInvalidInput", tt.rows, tt.in, tt.out, err)
		}
	}
}
