package core

import (
	"bytes"
	"errors"
	"image"
	"math"
	"runtime"
	"strings"
	"testing"
)

// Regression tests for inputs that used to crash, exhaust memory or give
// misleading results: configs whose sizes overflow, oversized
// preprocessing sizes, non-finite logits and huge captions.

func TestValidateRejectsHugePatchDim(t *testing.T) {
	cfg := nanoConfig
	cfg.ImageSize, cfg.PatchSize = 1<<16, 1<<16
	err := cfg.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate(patch_size 65536) error = %v, want ErrInvalidConfig", err)
	}
	if want := "patch_size 65536 gives patches of 12884901888 values"; !strings.Contains(err.Error(), want) {
		t.Errorf("Validate(patch_size 65536) error = %q, want it to contain %q", err, want)
	}
}

func TestValidateRejectsHugeMLPWidth(t *testing.T) {
	cfg := nanoConfig
	cfg.MLPRatio = 1 << 20
	cfg.DecoderEmbedDim, cfg.DecoderNumHeads = 4096, 1
	err := cfg.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate(mlp_ratio 2^20, dec_emb_dim 4096) error = %v, want ErrInvalidConfig", err)
	}
	if want := "gives 4294967296 MLP hidden units"; !strings.Contains(err.Error(), want) {
		t.Errorf("Validate(mlp_ratio 2^20, dec_emb_dim 4096) error = %q, want it to contain %q", err, want)
	}
}

// TestInitModelFileRejectsHugeTensor checks the sizes before allocating.
// InitModelFile used to allocate the 2^40-element embedding table, which
// killed the process on 64-bit targets and wrapped to an empty slice on
// 32-bit ones.
func TestInitModelFileRejectsHugeTensor(t *testing.T) {
	cfg := nanoConfig
	cfg.VocabSize, cfg.EmbedDim = 1<<20, 1<<20
	_, err := InitModelFile(cfg, testVocab(cfg.VocabSize), CC12MNorm, 1)
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("InitModelFile(vocab_size = emb_dim = 2^20) error = %v, want ErrInvalidConfig", err)
	}
	if want := `tensor "text_embedding.embedding" would have shape [1048576 1048576]`; !strings.Contains(err.Error(), want) {
		t.Errorf("InitModelFile(vocab_size = emb_dim = 2^20) error = %q, want it to contain %q", err, want)
	}
}

// TestReadModelFileRejectsBlocksBeyondTensors checks that a config whose
// blocks own more tensors than the file holds fails before ParamSpecs
// lists them, so a large header cannot make it list 12 per stored tensor.
func TestReadModelFileRejectsBlocksBeyondTensors(t *testing.T) {
	// The nano file holds 44 tensors, fewer than the 12*5 of 5 blocks.
	data := withConfig(func(c *Config) { c.Depth = 4 })()
	_, err := ReadModelFile(data)
	if !errors.Is(err, ErrInvalidModelFile) {
		t.Fatalf("ReadModelFile(depth 4) error = %v, want ErrInvalidModelFile", err)
	}
	if want := "config has 5 transformer blocks, but there are only 44 tensors"; !strings.Contains(err.Error(), want) {
		t.Errorf("ReadModelFile(depth 4) error = %q, want it to contain %q", err, want)
	}
}

// TestLoadRejectsHugeBuffers covers configs whose weights are small but
// whose buffers are not, because text_length and image_size size no weight
// tensor. Load used to accept the first file and crash in Reconstruct, and
// to crash on the second one while allocating.
func TestLoadRejectsHugeBuffers(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"token logits", func(c *Config) { c.TextLength, c.VocabSize = 1<<16, 1<<16 }, "token logits [Nt, V] take the most, 4294967296 values"},
		{"image patches", func(c *Config) { c.ImageSize, c.PatchSize = 1<<16, 16 }, "image patch buffers [Np, p*p*C] take the most, 38654705664 values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := nanoConfig
			tt.edit(&cfg)
			mf, err := InitModelFile(cfg, testVocab(cfg.VocabSize), CC12MNorm, 1)
			if err != nil {
				t.Fatalf("InitModelFile: %v", err)
			}
			_, err = Load(encodeModelFile(t, mf))
			if !errors.Is(err, ErrInvalidModelFile) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Load(%s) error = %v, want ErrInvalidModelFile and ErrInvalidConfig", tt.name, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%s) error = %q, want it to contain %q", tt.name, err, tt.want)
			}
		})
	}
}

// TestImagePixelsRejectsHugeSize checks the size before ImagePixels
// allocates size*size*3 values. Size 2^20 used to allocate 13 TB.
func TestImagePixelsRejectsHugeSize(t *testing.T) {
	if maxOutputSize*maxOutputSize > MaxImagePixels || (maxOutputSize+1)*(maxOutputSize+1) <= MaxImagePixels {
		t.Fatalf("maxOutputSize = %d, want the integer square root of MaxImagePixels %d", maxOutputSize, MaxImagePixels)
	}
	img := image.NewRGBA(image.Rect(0, 0, 1, 1))
	for _, size := range []int{maxOutputSize + 1, 1 << 20} {
		_, err := ImagePixels(img, size, CC12MNorm)
		if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ImagePixels(size %d) error = %v, want ErrInvalidInput", size, err)
		}
	}
	if err := checkOutputSize(maxOutputSize); err != nil {
		t.Errorf("checkOutputSize(%d) error = %v, want nil", maxOutputSize, err)
	}
}

// TestDecodeImageHugePNGSameOnEveryTarget uses a PNG header of 400
// megapixels. On 32-bit targets png.DecodeConfig rejects it as an
// unsupported feature, which DecodeImage used to pass on.
func TestDecodeImageHugePNGSameOnEveryTarget(t *testing.T) {
	_, err := DecodeImage(pngHeader(20000, 20000))
	if !errors.Is(err, ErrInvalidImage) {
		t.Fatalf("DecodeImage(20000x20000 header) on %s error = %v, want ErrInvalidImage", runtime.GOARCH, err)
	}
	if want := "png image is 20000x20000 = 400000000 pixels, over the limit of 40000000"; !strings.Contains(err.Error(), want) {
		t.Errorf("DecodeImage(20000x20000 header) on %s error = %q, want it to contain %q", runtime.GOARCH, err, want)
	}
}

func TestTopKSkipsNaNLogits(t *testing.T) {
	nan := float32(math.NaN())
	got := TopK([]float32{1, nan, 2}, 2)
	want := TopK([]float32{1, 2}, 2)
	if len(got) != 2 {
		t.Fatalf("TopK([1 NaN 2], 2) = %v, want 2 candidates", got)
	}
	if got[0].ID != 2 || got[1].ID != 0 {
		t.Errorf("TopK([1 NaN 2], 2) ids = %d, %d, want 2, 0", got[0].ID, got[1].ID)
	}
	if got[0].Prob != want[0].Prob || got[1].Prob != want[1].Prob {
		t.Errorf("TopK([1 NaN 2], 2) probs = %v, %v, want those of [1 2]: %v, %v",
			got[0].Prob, got[1].Prob, want[0].Prob, want[1].Prob)
	}
}

func TestTopKInfiniteLogits(t *testing.T) {
	inf := float32(math.Inf(1))
	tests := []struct {
		name   string
		logits []float32
		want   []TokenCandidate
	}{
		{"two +Inf", []float32{1, inf, 2, inf}, []TokenCandidate{{1, 0.5}, {3, 0.5}, {2, 0}}},
		{"all -Inf", []float32{-inf, -inf}, []TokenCandidate{{0, 0.5}, {1, 0.5}}},
	}
	for _, tt := range tests {
		got := TopK(tt.logits, 3)
		if len(got) != len(tt.want) {
			t.Errorf("TopK(%s) = %v, want %v", tt.name, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("TopK(%s)[%d] = %v, want %v", tt.name, i, got[i], tt.want[i])
			}
		}
	}
}

// TestInputsErrorQuotesCaptionPrefix checks that an error quotes only the
// start of a long caption. A caption of 1 MiB of spaces used to be quoted
// whole.
func TestInputsErrorQuotesCaptionPrefix(t *testing.T) {
	mf, err := InitModelFile(nanoConfig, testVocab(nanoConfig.VocabSize), CC12MNorm, 1)
	if err != nil {
		t.Fatalf("InitModelFile: %v", err)
	}
	p, err := NewPipeline(mf)
	if err != nil {
		t.Fatalf("NewPipeline: %v", err)
	}
	_, err = p.Inputs(nil, strings.Repeat(" ", 1<<20))
	if !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("Inputs(nil, 1 MiB of spaces) error = %v, want ErrInvalidInput", err)
	}
	if len(err.Error()) > 300 {
		t.Errorf("Inputs(nil, 1 MiB of spaces) error has %d bytes, want at most 300", len(err.Error()))
	}
	if want := "... (1048576 bytes)"; !strings.Contains(err.Error(), want) {
		t.Errorf("Inputs(nil, 1 MiB of spaces) error = %.200q, want it to contain %q", err, want)
	}
	_, err = p.Inputs(nil, " ")
	if want := `(caption " ")`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Inputs(nil, %q) error = %v, want it to contain %q", " ", err, want)
	}
}

// TestLoadAcceptsOnePixelPatches checks that the size checks leave a
// model with 4096 one-pixel patches loadable.
func TestLoadAcceptsOnePixelPatches(t *testing.T) {
	cfg := nanoConfig
	cfg.ImageSize, cfg.PatchSize = 64, 1
	mf, err := InitModelFile(cfg, testVocab(cfg.VocabSize), CC12MNorm, 1)
	if err != nil {
		t.Fatalf("InitModelFile(image_size 64, patch_size 1): %v", err)
	}
	var buf bytes.Buffer
	if err := WriteModelFile(&buf, mf); err != nil {
		t.Fatalf("WriteModelFile: %v", err)
	}
	if _, err := Load(buf.Bytes()); err != nil {
		t.Errorf("Load(image_size 64, patch_size 1) error = %v, want nil", err)
	}
}
