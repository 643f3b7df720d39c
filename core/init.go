package core

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// initStream is the PCG stream of InitModelFile, the bytes of "init".
const initStream = 0x696e6974

// Standard deviations of the official M3AE initializers.
const (
	textEmbeddingStd = 1.0  // text_embedding: normal(0, 1)
	tokenStd         = 0.02 // CLS, type and mask embeddings: normal(0, 0.02)
)

// InitModelFile returns a float32 model file with freshly initialized
// weights, as the official M3AE code initializes them. Dense kernels are
// xavier-uniform and biases zero, LayerNorms have scale 1 and bias 0, the
// text embedding table is normal(0, 1), and the CLS, type and mask
// embeddings are normal(0, 0.02).
//
// The weights depend only on cfg and seed, and are the same bits on every
// target. Tensors are filled in ParamSpecs order from
// rand.New(rand.NewPCG(seed, 0x696e6974)). A uniform draw is one
// rng.Float64(), and normal draws come in Box-Muller pairs computed with
// this package's deterministic log, sin and cos. vocab must have
// cfg.VocabSize entries and norm must pass (*ModelFile).Validate. Both are
// stored in the file unchanged.
func InitModelFile(cfg Config, vocab []string, norm ImageNorm, seed uint64) (*ModelFile, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("init model file: %w", err)
	}
	if len(vocab) != cfg.VocabSize {
		return nil, fmt.Errorf("init model file: %w: vocab has %d tokens, want vocab_size %d",
			ErrInvalidInput, len(vocab), cfg.VocabSize)
	}
	specs := ParamSpecs(cfg)
	if err := checkParamSizes(specs); err != nil {
		return nil, fmt.Errorf("init model file: %w", err)
	}
	rng := newInitRand(seed, initStream)
	mf := &ModelFile{
		Config:       cfg,
		Vocab:        slices.Clone(vocab),
		Norm:         norm,
		Quantization: QuantizationNone,
		Tensors:      make(map[string]*Tensor),
	}
	for _, spec := range specs {
		data := make([]float32, spec.NumElements())
		switch spec.Kind {
		case KindKernel:
			// Xavier uniform: U(-limit, limit) with limit = sqrt(6/(in+out)).
			limit := math.Sqrt(6 / float64(spec.Shape[0]+spec.Shape[1]))
			rng.fillUniform(data, -limit, limit)
		case KindNormScale:
			for i := range data {
				data[i] = 1
			}
		case KindEmbeddingTable:
			rng.fillNormal(data, 0, textEmbeddingStd)
		case KindToken:
			rng.fillNormal(data, 0, tokenStd)
		case KindBias, KindNormBias:
			// Zero, as allocated.
		}
		mf.Tensors[spec.Name] = &Tensor{
			Name:  spec.Name,
			DType: F32,
			Shape: slices.Clone(spec.Shape),
			F32:   data,
		}
	}
	// The vocabulary's tokens and the image norm are checked last, by the
	// same rules the model-file reader applies.
	if err := mf.Validate(); err != nil {
		return nil, fmt.Errorf("init model file: %w", err)
	}
	return mf, nil
}

// initRand draws uniform and normal float64 values that are the same bits
// on every target. rand.NormFloat64 would not be, because it calls math.Exp
// and math.Log, which have assembly versions on amd64.
type initRand struct {
	rng      *rand.Rand
	spare    float64 // second value of the last Box-Muller pair
	hasSpare bool
}

func newInitRand(seed, stream uint64) *initRand {
	return &initRand{rng: rand.New(rand.NewPCG(seed, stream))}
}

// uniform returns a value of U(low, high) from one rng.Float64() u, as
// low + u*(high-low).
func (g *initRand) uniform(low, high float64) float64 {
	return low + float64(g.rng.Float64()*(high-low))
}

// normal returns a value of N(0, 1). Each pair of calls consumes two
// rng.Float64() values u1, u2 and returns r*cos(2*pi*u2), then
// r*sin(2*pi*u2), with r = sqrt(-2 ln(1-u1)).
func (g *initRand) normal() float64 {
	if g.hasSpare {
		g.hasSpare = false
		return g.spare
	}
	u1 := 1 - float64(g.rng.Float64()) // in (0, 1], so the log is finite
	u2 := g.rng.Float64()
	r := math.Sqrt(-2 * detLog(u1))
	angle := float64(2 * math.Pi * u2)
	g.spare = float64(r * detSin(angle))
	g.hasSpare = true
	return float64(r * detCos(angle))
}

func (g *initRand) fillUniform(dst []float32, low, high float64) {
	for i := range dst {
		dst[i] = float32(g.uniform(low, high))
	}
}

func (g *initRand) fillNormal(dst []float32, mean, std float64) {
	for i := range dst {
		dst[i] = float32(mean + float64(std*g.normal()))
	}
}
