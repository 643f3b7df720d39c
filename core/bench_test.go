package core

import "testing"

// Benchmarks of the forward pass on random weights, one example per call:
//
//	go test ./core -run '^$' -bench 'MatMul|Embed|Reconstruct' -benchmem

func benchModel(b *testing.B, preset string) (*Model, Inputs, Masks) {
	b.Helper()
	cfg, err := Preset(preset)
	if err != nil {
		b.Fatal(err)
	}
	m := newTestModel(b, cfg, 1)
	c := oracleCases(b, cfg, 1)[0] // image and text, default mask ratios
	return m, c.in, c.masks
}

func benchmarkEmbed(b *testing.B, preset string) {
	m, in, _ := benchModel(b, preset)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Embed(in, PoolCLS); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkReconstruct(b *testing.B, preset string) {
	m, in, masks := benchModel(b, preset)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Reconstruct(in, masks); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEmbed(b *testing.B) {
	b.Run("micro", func(b *testing.B) { benchmarkEmbed(b, "micro") })
	b.Run("tiny", func(b *testing.B) { benchmarkEmbed(b, "tiny") })
}

func BenchmarkReconstruct(b *testing.B) {
	b.Run("micro", func(b *testing.B) { benchmarkReconstruct(b, "micro") })
	b.Run("tiny", func(b *testing.B) { benchmarkReconstruct(b, "tiny") })
}

func BenchmarkMatMul(b *testing.B) {
	shapes := []struct {
		name          string
		rows, in, out int
	}{
		{"81x192x768", 81, 192, 768},     // tiny encoder fc1
		{"16x128x30522", 16, 128, 30522}, // tiny text head
	}
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			x := make([]float32, s.rows*s.in)
			w := make([]float32, s.in*s.out)
			bias := make([]float32, s.out)
			dst := make([]float32, s.rows*s.out)
			for i := range x {
				x[i] = float32(i%7) * 0.1
			}
			for i := range w {
				w[i] = float32(i%5) * 0.1
			}
			layer := packDense(w, bias, s.in, s.out)
			var scratch matMulScratch
			for b.Loop() {
				matMul(dst, x, &layer, s.rows, &scratch)
			}
			flops := 2 * float64(s.rows*s.in*s.out) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
