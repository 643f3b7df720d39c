package core

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestKeepLengthMatchesPython(t *testing.T) {
	// Expected values are Python's int(L * (1.0 - r)).
	tests := []struct {
		length int
		ratio  float64
		want   int
	}{
		{16, 0.75, 4}, {196, 0.75, 49}, {256, 0.75, 64}, {10, 0.3, 7}, {10, 0.7, 3},
		{3, 0.9, 0}, {7, 0.5, 3}, {16, 0, 16}, {16, 1, 0}, {100, 0.29, 71}, {49, 0.1, 44}, {5, 0.2, 4},
	}
	for _, tc := range tests {
		if got := keepLength(tc.length, tc.ratio); got != tc.want {
			t.Errorf("keepLength(%d, %v) = %d, want %d", tc.length, tc.ratio, got, tc.want)
		}
	}
}

func countHidden(mask []bool) int {
	n := 0
	for _, h := range mask {
		if h {
			n++
		}
	}
	return n
}

func TestRandomMasksCounts(t *testing.T) {
	cfg := microConfig(t) // Np = 16, Nt = 16
	tests := []struct {
		imageRatio, textRatio     float64
		wantHiddenImage, wantText int
	}{
		{0.75, 0.75, 12, 12},
		{0, 1, 0, 16},
		{1, 0, 16, 0},
		{0.5, 0.3, 8, 5},
	}
	for _, tc := range tests {
		m, err := RandomMasks(cfg, tc.imageRatio, tc.textRatio, 3)
		if err != nil {
			t.Fatalf("RandomMasks(%v, %v): %v", tc.imageRatio, tc.textRatio, err)
		}
		if len(m.Image) != cfg.NumPatches() || len(m.Text) != cfg.TextLength {
			t.Fatalf("RandomMasks(%v, %v) lengths = %d, %d, want %d, %d",
				tc.imageRatio, tc.textRatio, len(m.Image), len(m.Text), cfg.NumPatches(), cfg.TextLength)
		}
		if got := countHidden(m.Image); got != tc.wantHiddenImage {
			t.Errorf("RandomMasks(%v, %v) hides %d patches, want %d", tc.imageRatio, tc.textRatio, got, tc.wantHiddenImage)
		}
		if got := countHidden(m.Text); got != tc.wantText {
			t.Errorf("RandomMasks(%v, %v) hides %d text positions, want %d", tc.imageRatio, tc.textRatio, got, tc.wantText)
		}
	}
}

func TestRandomMasksSeeded(t *testing.T) {
	cfg := microConfig(t)
	a, _ := RandomMasks(cfg, 0.75, 0.75, 42)
	b, _ := RandomMasks(cfg, 0.75, 0.75, 42)
	c, _ := RandomMasks(cfg, 0.75, 0.75, 43)
	if !slices.Equal(a.Image, b.Image) || !slices.Equal(a.Text, b.Text) {
		t.Errorf("RandomMasks(seed 42) differs between calls")
	}
	if slices.Equal(a.Image, c.Image) && slices.Equal(a.Text, c.Text) {
		t.Errorf("RandomMasks(seed 42) = RandomMasks(seed 43), want different masks")
	}

	// The text noise comes after the image noise whatever the ratios, so
	// the image ratio cannot change the text mask.
	d, _ := RandomMasks(cfg, 0.25, 0.75, 42)
	if !slices.Equal(a.Text, d.Text) {
		t.Errorf("RandomMasks(image ratio 0.25).Text = %v, want %v (the image ratio 0.75 text mask)", d.Text, a.Text)
	}
}

// The algorithm is part of the product's reproducibility, so one draw is
// pinned: a change here changes every seeded mask.
func TestRandomMasksPinned(t *testing.T) {
	cfg := microConfig(t)
	m, err := RandomMasks(cfg, 0.75, 0.75, 7)
	if err != nil {
		t.Fatal(err)
	}
	visible := func(mask []bool) []int {
		var out []int
		for i, h := range mask {
			if !h {
				out = append(out, i)
			}
		}
		return out
	}
	if got, want := visible(m.Image), []int{0, 3, 13, 14}; !slices.Equal(got, want) {
		t.Errorf("RandomMasks(micro, 0.75, 0.75, 7) visible patches = %v, want %v", got, want)
	}
	if got, want := visible(m.Text), []int{0, 7, 13, 15}; !slices.Equal(got, want) {
		t.Errorf("RandomMasks(micro, 0.75, 0.75, 7) visible text = %v, want %v", got, want)
	}
}

func TestRandomMasksRejectsRatio(t *testing.T) {
	cfg := microConfig(t)
	for _, ratio := range []float64{-0.1, 1.5, math.NaN(), math.Inf(1)} {
		_, err := RandomMasks(cfg, ratio, 0.5, 1)
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("RandomMasks(image ratio %v) error = %v, want ErrInvalidInput", ratio, err)
			continue
		}
		if !strings.Contains(err.Error(), "image mask ratio") {
			t.Errorf("RandomMasks(image ratio %v) error = %q, want it to name the image mask ratio", ratio, err)
		}
		if _, err := RandomMasks(cfg, 0.5, ratio, 1); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("RandomMasks(text ratio %v) error = %v, want ErrInvalidInput", ratio, err)
		}
	}
	if _, err := RandomMasks(Config{}, 0.5, 0.5, 1); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("RandomMasks(Config{}) error = %v, want ErrInvalidConfig", err)
	}
}
