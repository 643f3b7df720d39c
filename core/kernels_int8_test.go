package core

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomInt8Kernel returns values in [-127, 127] and positive column
// scales of about 0.01, as a quantized xavier kernel has.
func randomInt8Kernel(rng *rand.Rand, in, out int) ([]int8, []float32) {
	q := make([]int8, in*out)
	for i := range q {
		q[i] = int8(rng.IntN(2*Int8MaxLevel+1) - Int8MaxLevel)
	}
	scale := make([]float32, out)
	for j := range scale {
		scale[j] = float32(0.002 + 0.02*rng.Float64())
	}
	return q, scale
}

// dequantizeColumns is the reference dequantization of an int8 kernel:
// element (k, j) is float32(q[k*out+j]) * scale[j].
func dequantizeColumns(q []int8, scale []float32, in, out int) []float32 {
	w := make([]float32, in*out)
	for k := range in {
		for j := range out {
			w[k*out+j] = float32(q[k*out+j]) * scale[j]
		}
	}
	return w
}

// TestMatMulInt8MatchesDequantized checks an int8 layer against the
// reference: dequantize the whole kernel, then run it as a float32 layer.
// The int8 layer dequantizes into a tile with the same float32 products,
// so the comparison is exact.
func TestMatMulInt8MatchesDequantized(t *testing.T) {
	shapes := []struct{ rows, in, out int }{
		{1, 1, 1}, {1, 5, 4}, {2, 3, 4}, {3, 5, 7}, {4, 8, 8}, {5, 17, 9}, {7, 33, 30}, {16, 32, 30522 % 64},
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, s := range shapes {
		for _, withBias := range []bool{true, false} {
			x := uniformFloats(rng, s.rows*s.in, 2)
			q, scale := randomInt8Kernel(rng, s.in, s.out)
			var bias []float32
			if withBias {
				bias = uniformFloats(rng, s.out, 1)
			}
			want := make([]float32, s.rows*s.out)
			matMulFlax(want, x, dequantizeColumns(q, scale, s.in, s.out), bias, s.rows, s.in, s.out)

			got := make([]float32, s.rows*s.out)
			matMulInt8Flax(got, x, q, scale, bias, s.rows, s.in, s.out)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Errorf("int8 matMul(%dx%dx%d, bias %v)[%d] = %v, want %v (bits of the float32 layer with the dequantized kernel)",
						s.rows, s.in, s.out, withBias, i, got[i], want[i])
					break
				}
			}
		}
	}
}

func TestMatMulInt8ZeroRows(t *testing.T) {
	matMulInt8Flax(nil, nil, make([]int8, 6), make([]float32, 3), nil, 0, 2, 3) // must not panic
}

func TestDequantizeRow(t *testing.T) {
	q := []int8{-127, -1, 0, 1, 64, 127}
	const scale = float32(0.0123)
	got := make([]float32, len(q))
	dequantizeRow(got, q, scale)
	for i, v := range q {
		if want := float32(v) * scale; math.Float32bits(got[i]) != math.Float32bits(want) {
			t.Errorf("dequantizeRow(%d, %v)[%d] = %v, want %v", v, scale, i, got[i], want)
		}
	}
}

// BenchmarkMatMulInt8 compares the float32 kernel with the int8 one at the
// tiny preset's shapes:
//
//	go test ./core -run '^$' -bench MatMulInt8
func BenchmarkMatMulInt8(b *testing.B) {
	shapes := []struct {
		name          string
		rows, in, out int
	}{
		{"81x192x576", 81, 192, 576},     // tiny encoder qkv, all 81 tokens
		{"81x192x768", 81, 192, 768},     // tiny encoder fc1
		{"81x768x192", 81, 768, 192},     // tiny encoder fc2
		{"21x192x576", 21, 192, 576},     // tiny encoder qkv, 21 kept tokens
		{"16x128x30522", 16, 128, 30522}, // tiny text head
	}
	rng := rand.New(rand.NewPCG(13, 14))
	for _, s := range shapes {
		x := uniformFloats(rng, s.rows*s.in, 1)
		q, scale := randomInt8Kernel(rng, s.in, s.out)
		w := dequantizeColumns(q, scale, s.in, s.out)
		bias := uniformFloats(rng, s.out, 1)
		dst := make([]float32, s.rows*s.out)
		float32Layer := packDense(w, bias, s.in, s.out)
		int8Layer := packDenseInt8(q, scale, bias, s.in, s.out)
		var scratch matMulScratch
		flops := 2 * float64(s.rows*s.in*s.out)
		b.Run("float32/"+s.name, func(b *testing.B) {
			for b.Loop() {
				matMul(dst, x, &float32Layer, s.rows, &scratch)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run("int8/"+s.name, func(b *testing.B) {
			for b.Loop() {
				matMul(dst, x, &int8Layer, s.rows, &scratch)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
