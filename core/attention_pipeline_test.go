package core_test

import (
	"math"
	"slices"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
)

func TestPipelineEmbedWithAttention(t *testing.T) {
	p := newMicroPipeline(t)
	img := loadEmoji(t)
	cfg := p.Config()

	got, err := p.EmbedWithAttention(img, "grinning face", core.PoolCLS)
	if err != nil {
		t.Fatal(err)
	}
	want, err := p.Embed(img, "grinning face", core.PoolCLS)
	if err != nil {
		t.Fatal(err)
	}
	for d := range want {
		if math.Float32bits(got.Embedding[d]) != math.Float32bits(want[d]) {
			t.Fatalf("embedding[%d] = %v, want Embed's %v", d, got.Embedding[d], want[d])
		}
	}
	if wantTokens := []string{"grinning", "face"}; !slices.Equal(got.Tokens, wantTokens) {
		t.Errorf("tokens = %q, want %q", got.Tokens, wantTokens)
	}
	if got.Image == nil || got.Image.Bounds().Dx() != cfg.ImageSize || got.Image.Bounds().Dy() != cfg.ImageSize {
		t.Fatalf("image = %v, want %dx%d", got.Image, cfg.ImageSize, cfg.ImageSize)
	}
	if k := got.Attention.NumTokens(); k != 1+cfg.NumPatches()+cfg.TextLength {
		t.Errorf("K = %d, want 1 + Np + Nt = %d", k, 1+cfg.NumPatches()+cfg.TextLength)
	}

	cls, patches, text := got.Attention.ByPosition(got.Attention.Rollout()[:got.Attention.NumTokens()])
	sum := float64(cls)
	for _, v := range patches {
		sum += float64(v)
	}
	for _, v := range text {
		sum += float64(v)
	}
	if math.Abs(sum-1) > 1e-5 {
		t.Errorf("rollout CLS row sums to %v, want 1", sum)
	}
	for pos := len(got.Tokens); pos < len(text); pos++ {
		if text[pos] != 0 {
			t.Errorf("rollout weight on pad position %d = %v, want 0", pos, text[pos])
		}
	}

	textOnly, err := p.EmbedWithAttention(nil, "red apple", core.PoolMean)
	if err != nil {
		t.Fatal(err)
	}
	if textOnly.Image != nil {
		t.Error("text-only call returned an image")
	}
	if len(textOnly.Tokens) != 2 {
		t.Errorf("text-only tokens = %q, want 2", textOnly.Tokens)
	}
}
