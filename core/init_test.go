package core

import (
	"errors"
	"math"
	"testing"
)

// initStatTolerance bounds the difference between a sample's standard
// deviation and the initializer's, relative to the latter. Every sample
// checked here has at least 12288 values.
const initStatTolerance = 0.05

func sampleMeanStd(values []float32) (float64, float64) {
	mean := 0.0
	for _, v := range values {
		mean += float64(v)
	}
	mean /= float64(len(values))
	variance := 0.0
	for _, v := range values {
		variance += (float64(v) - mean) * (float64(v) - mean)
	}
	return mean, math.Sqrt(variance / float64(len(values)))
}

func TestInitModelFileDistributions(t *testing.T) {
	cfg := microConfig(t)
	mf, err := InitModelFile(cfg, syntheticVocab(cfg.VocabSize), CC12MNorm, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range ParamSpecs(cfg) {
		data := mf.Tensors[spec.Name].F32
		switch spec.Kind {
		case KindKernel:
			limit := math.Sqrt(6 / float64(spec.Shape[0]+spec.Shape[1]))
			for i, v := range data {
				if math.Abs(float64(v)) > limit {
					t.Fatalf("%s[%d] = %v, want within ±%v (xavier uniform)", spec.Name, i, v, limit)
				}
			}
			if len(data) >= 12288 {
				// U(-a, a) has standard deviation a/sqrt(3).
				_, std := sampleMeanStd(data)
				if want := limit / math.Sqrt(3); math.Abs(std-want) > initStatTolerance*want {
					t.Errorf("std(%s) = %v, want %v", spec.Name, std, want)
				}
			}
		case KindBias, KindNormBias:
			for i, v := range data {
				if v != 0 {
					t.Fatalf("%s[%d] = %v, want 0", spec.Name, i, v)
				}
			}
		case KindNormScale:
			for i, v := range data {
				if v != 1 {
					t.Fatalf("%s[%d] = %v, want 1", spec.Name, i, v)
				}
			}
		case KindEmbeddingTable:
			mean, std := sampleMeanStd(data)
			if math.Abs(std-textEmbeddingStd) > initStatTolerance*textEmbeddingStd || math.Abs(mean) > initStatTolerance {
				t.Errorf("mean, std(%s) = %v, %v, want 0, %v", spec.Name, mean, std, textEmbeddingStd)
			}
		}
	}

	// The learned tokens together: 4*D + 3*Dd = 224 values of normal(0, 0.02).
	var tokens []float32
	for _, spec := range ParamSpecs(cfg) {
		if spec.Kind == KindToken {
			tokens = append(tokens, mf.Tensors[spec.Name].F32...)
		}
	}
	if _, std := sampleMeanStd(tokens); math.Abs(std-tokenStd) > 0.2*tokenStd {
		t.Errorf("std(tokens) = %v, want %v", std, tokenStd)
	}
}

func TestInitModelFileSeeded(t *testing.T) {
	cfg := microConfig(t)
	vocab := syntheticVocab(cfg.VocabSize)
	a, err := InitModelFile(cfg, vocab, CC12MNorm, 9)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := InitModelFile(cfg, vocab, CC12MNorm, 9)
	c, _ := InitModelFile(cfg, vocab, CC12MNorm, 10)
	for _, name := range []string{"cls_token", "text_embedding.embedding", "encoder.Block_1.Attention_0.Dense_0.kernel"} {
		if floatsDigest(a.Tensors[name].F32) != floatsDigest(b.Tensors[name].F32) {
			t.Errorf("InitModelFile(seed 9) %s differs between calls", name)
		}
		if floatsDigest(a.Tensors[name].F32) == floatsDigest(c.Tensors[name].F32) {
			t.Errorf("InitModelFile(seed 9) %s = InitModelFile(seed 10) %s, want different values", name, name)
		}
	}
	if _, err := NewModel(a); err != nil {
		t.Errorf("NewModel(InitModelFile(micro)) error = %v", err)
	}
}

func floatsDigest(values []float32) string {
	return outputHashes(map[string][]float32{"": values})[""]
}

func TestInitModelFileRejects(t *testing.T) {
	cfg := microConfig(t)
	badNorm := CC12MNorm
	badNorm.Std[1] = 0
	badVocab := syntheticVocab(cfg.VocabSize)
	badVocab[5] = "a\nb"
	tests := []struct {
		name  string
		cfg   Config
		vocab []string
		norm  ImageNorm
		want  error
	}{
		{"bad config", Config{}, nil, CC12MNorm, ErrInvalidConfig},
		{"short vocab", cfg, syntheticVocab(10), CC12MNorm, ErrInvalidInput},
		{"newline token", cfg, badVocab, CC12MNorm, ErrInvalidModelFile},
		{"zero std", cfg, syntheticVocab(cfg.VocabSize), badNorm, ErrInvalidModelFile},
	}
	for _, tc := range tests {
		if _, err := InitModelFile(tc.cfg, tc.vocab, tc.norm, 1); !errors.Is(err, tc.want) {
			t.Errorf("InitModelFile(%s) error = %v, want %v", tc.name, err, tc.want)
		}
	}
}
