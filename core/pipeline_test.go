package core_test

import (
	"bytes"
	"errors"
	"image"
	"os"
	"slices"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
)

// newMicroPipeline builds a micro-preset Pipeline with seeded random
// weights and the real BERT vocabulary, through a written model file so the
// reader is part of the path.
func newMicroPipeline(t testing.TB) *core.Pipeline {
	t.Helper()
	cfg, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	mf, err := core.InitModelFile(cfg, bertvocab.Tokens(), core.CC12MNorm, 7)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := core.WriteModelFile(&buf, mf); err != nil {
		t.Fatal(err)
	}
	p, err := core.Load(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// loadEmoji decodes testdata/images/emoji64.png, written by
// `go run testdata/images/gen.go`.
func loadEmoji(t testing.TB) image.Image {
	t.Helper()
	data, err := os.ReadFile("../testdata/images/emoji64.png")
	if err != nil {
		t.Fatal(err)
	}
	img, err := core.DecodeImage(data)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPipelineEmbedModalities(t *testing.T) {
	p := newMicroPipeline(t)
	img := loadEmoji(t)
	width := p.Config().EmbedDim
	cases := []struct {
		name string
		img  image.Image
		text string
		pool core.Pooling
	}{
		{"image", img, "", core.PoolCLS},
		{"text", nil, "grinning face", core.PoolCLS},
		{"both", img, "grinning face", core.PoolCLS},
		{"both mean", img, "grinning face", core.PoolMean},
	}
	for _, c := range cases {
		got, err := p.Embed(c.img, c.text, c.pool)
		if err != nil {
			t.Errorf("Embed(%s) error: %v", c.name, err)
			continue
		}
		if len(got) != width {
			t.Errorf("len(Embed(%s)) = %d, want %d", c.name, len(got), width)
		}
	}
}

func TestPipelineEmbedBlankTextIsImageOnly(t *testing.T) {
	p := newMicroPipeline(t)
	img := loadEmoji(t)
	imageOnly, err := p.Embed(img, "", core.PoolCLS)
	if err != nil {
		t.Fatal(err)
	}
	blank, err := p.Embed(img, " \t\n", core.PoolCLS)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(imageOnly, blank) {
		t.Errorf("Embed(image, blank caption) differs from Embed(image, \"\")")
	}
}

func TestPipelineRejectsEmptyInput(t *testing.T) {
	p := newMicroPipeline(t)
	if _, err := p.Embed(nil, "  ", core.PoolCLS); !errors.Is(err, core.ErrInvalidInput) {
		t.Errorf("Embed(nil, blank) error = %v, want ErrInvalidInput", err)
	}
	if _, err := p.Reconstruct(nil, "", core.DefaultReconstructOptions()); !errors.Is(err, core.ErrInvalidInput) {
		t.Errorf("Reconstruct(nil, \"\") error = %v, want ErrInvalidInput", err)
	}
}

func TestPipelineRejectsBadOptions(t *testing.T) {
	p := newMicroPipeline(t)
	img := loadEmoji(t)
	cases := []struct {
		name string
		opts core.ReconstructOptions
	}{
		{"negative top-k", core.ReconstructOptions{TopK: -1}},
		{"huge top-k", core.ReconstructOptions{TopK: 1000}},
		{"image ratio over 1", core.ReconstructOptions{ImageMaskRatio: 1.5}},
		{"text ratio negative", core.ReconstructOptions{TextMaskRatio: -0.1}},
		{"short image mask", core.ReconstructOptions{Masks: &core.Masks{Image: []bool{true}}}},
	}
	for _, c := range cases {
		if _, err := p.Reconstruct(img, "cat", c.opts); !errors.Is(err, core.ErrInvalidInput) {
			t.Errorf("Reconstruct(%s) error = %v, want ErrInvalidInput", c.name, err)
		}
	}
}

func TestPipelineReconstructImages(t *testing.T) {
	p := newMicroPipeline(t)
	cfg := p.Config()
	opts := core.DefaultReconstructOptions()
	opts.Seed = 3
	got, err := p.Reconstruct(loadEmoji(t), "grinning face with big eyes", opts)
	if err != nil {
		t.Fatal(err)
	}
	if got.Image == nil {
		t.Fatal("Reconstruct(image, text).Image = nil, want images")
	}
	bounds := image.Rect(0, 0, cfg.ImageSize, cfg.ImageSize)
	for name, img := range map[string]*image.RGBA{
		"Original":      got.Image.Original,
		"Masked":        got.Image.Masked,
		"Reconstructed": got.Image.Reconstructed,
	} {
		if img.Bounds() != bounds {
			t.Errorf("%s.Bounds() = %v, want %v", name, img.Bounds(), bounds)
		}
	}

	// Visible patches are pasted back unchanged; hidden ones are painted
	// in the masked image.
	grid, patch := cfg.GridSize(), cfg.PatchSize
	hiddenCount := 0
	for n, hidden := range got.Masks.Image {
		x, y := (n%grid)*patch, (n/grid)*patch
		original := got.Image.Original.RGBAAt(x, y)
		if hidden {
			hiddenCount++
			if c := got.Image.Masked.RGBAAt(x, y); c != core.MaskedPatchColor {
				t.Errorf("Masked at hidden patch %d = %v, want %v", n, c, core.MaskedPatchColor)
			}
			continue
		}
		if c := got.Image.Reconstructed.RGBAAt(x, y); c != original {
			t.Errorf("Reconstructed at visible patch %d = %v, want original %v", n, c, original)
		}
		if c := got.Image.Masked.RGBAAt(x, y); c != original {
			t.Errorf("Masked at visible patch %d = %v, want original %v", n, c, original)
		}
	}
	wantHidden := cfg.NumPatches() - int(float64(cfg.NumPatches())*(1-opts.ImageMaskRatio))
	if hiddenCount != wantHidden {
		t.Errorf("hidden patches = %d, want %d", hiddenCount, wantHidden)
	}
}

func TestPipelineReconstructText(t *testing.T) {
	p := newMicroPipeline(t)
	opts := core.DefaultReconstructOptions()
	opts.TopK = 3
	hideAll := make([]bool, p.Config().TextLength)
	for i := range hideAll {
		hideAll[i] = true
	}
	opts.Masks = &core.Masks{Text: hideAll}
	got, err := p.Reconstruct(nil, "grinning face", opts)
	if err != nil {
		t.Fatal(err)
	}
	if got.Image != nil {
		t.Errorf("Reconstruct(text only).Image = %v, want nil", got.Image)
	}
	wantTokens := []string{"grinning", "face"}
	if !slices.Equal(got.Text.Tokens, wantTokens) {
		t.Errorf("Text.Tokens = %q, want %q", got.Text.Tokens, wantTokens)
	}
	if len(got.Text.Predictions) != len(wantTokens) {
		t.Fatalf("len(Text.Predictions) = %d, want %d", len(got.Text.Predictions), len(wantTokens))
	}
	for i, prediction := range got.Text.Predictions {
		if prediction.Original != wantTokens[i] {
			t.Errorf("Predictions[%d].Original = %q, want %q", i, prediction.Original, wantTokens[i])
		}
		if len(prediction.Candidates) != opts.TopK {
			t.Errorf("len(Predictions[%d].Candidates) = %d, want %d", i, len(prediction.Candidates), opts.TopK)
		}
		for _, candidate := range prediction.Candidates {
			if candidate.Token != p.Tokenizer().Token(candidate.ID) {
				t.Errorf("candidate %d token = %q, want %q", candidate.ID, candidate.Token, p.Tokenizer().Token(candidate.ID))
			}
		}
	}
}

func TestPipelineReconstructSeeded(t *testing.T) {
	p := newMicroPipeline(t)
	img := loadEmoji(t)
	run := func(seed uint64) *core.PipelineReconstruction {
		opts := core.DefaultReconstructOptions()
		opts.Seed = seed
		got, err := p.Reconstruct(img, "red apple", opts)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first, again, other := run(1), run(1), run(2)
	if !slices.Equal(first.Image.Reconstructed.Pix, again.Image.Reconstructed.Pix) {
		t.Error("Reconstruct with the same seed gave different images")
	}
	if slices.Equal(first.Masks.Image, other.Masks.Image) {
		t.Error("Reconstruct with seeds 1 and 2 gave the same image mask")
	}
}
