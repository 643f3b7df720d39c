package core

import (
	"errors"
	"math"
	"testing"
)

// Mean pooling averages the unmasked encoder outputs of every image patch
// and non-pad text token; Reconstruct with no mask exposes those outputs.
func TestEmbedMeanPooling(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, 1)
	for _, c := range oracleCases(t, cfg, 1)[:4] {
		mean, err := m.Embed(c.in, PoolMean)
		if err != nil {
			t.Fatalf("Embed(%s, PoolMean): %v", c.name, err)
		}
		r, err := m.Reconstruct(c.in, Masks{})
		if err != nil {
			t.Fatal(err)
		}
		width := cfg.EmbedDim
		want := make([]float64, width)
		count := 0
		row := 1
		if c.in.hasImage() {
			for range cfg.NumPatches() {
				for d := range width {
					want[d] += float64(r.Encoded[row*width+d])
				}
				row++
				count++
			}
		}
		for _, id := range c.in.Tokens {
			if id != PadID {
				for d := range width {
					want[d] += float64(r.Encoded[row*width+d])
				}
				count++
			}
			row++
		}
		for d := range width {
			w := want[d] / float64(count)
			if math.Abs(float64(mean[d])-w) > 1e-6*math.Max(1, math.Abs(w)) {
				t.Errorf("Embed(%s, PoolMean)[%d] = %v, want %v", c.name, d, mean[d], w)
			}
		}

		cls, err := m.Embed(c.in, PoolCLS)
		if err != nil {
			t.Fatal(err)
		}
		for d := range width {
			if math.Float32bits(cls[d]) != math.Float32bits(r.Encoded[d]) {
				t.Fatalf("Embed(%s, PoolCLS)[%d] = %v, want %v (Reconstruct's unmasked CLS)", c.name, d, cls[d], r.Encoded[d])
			}
		}
	}
}

func TestEmbedRejects(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, 1)
	in := oracleCases(t, cfg, 1)[0].in
	if _, err := m.Embed(in, Pooling(7)); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("Embed(pooling 7) error = %v, want ErrInvalidInput", err)
	}
	allPads := Inputs{Tokens: make([]int32, cfg.TextLength)}
	if _, err := m.Embed(allPads, PoolMean); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("Embed(all pads, PoolMean) error = %v, want ErrInvalidInput", err)
	}
	if _, err := m.Embed(allPads, PoolCLS); err != nil {
		t.Errorf("Embed(all pads, PoolCLS) error = %v, want nil", err)
	}
}

func TestPoolingString(t *testing.T) {
	tests := []struct {
		pool Pooling
		want string
	}{{PoolCLS, "cls"}, {PoolMean, "mean"}, {Pooling(9), "Pooling(9)"}}
	for _, tc := range tests {
		if got := tc.pool.String(); got != tc.want {
			t.Errorf("Pooling(%d).String() = %q, want %q", int(tc.pool), got, tc.want)
		}
	}
}
