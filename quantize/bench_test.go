package quantize

import (
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
)

// Benchmarks of the forward pass with float32 and int8 weights, one fixture
// example (image and caption) per call, InitModelFile weights:
//
//	go test ./quantize -run '^$' -bench 'Embed|Reconstruct' -benchmem

// benchModels returns the float32 and int8 models of preset and the first
// fixture example's inputs and masks.
func benchModels(b *testing.B, preset string) (models map[string]*core.Model, in core.Inputs, masks core.Masks) {
	b.Helper()
	cfg, err := core.Preset(preset)
	if err != nil {
		b.Fatal(err)
	}
	mf := initModelFile(b, cfg, bertvocab.Tokens(), 1)
	quantized, _, err := QuantizeModelFile(mf)
	if err != nil {
		b.Fatal(err)
	}

	models = make(map[string]*core.Model)
	var pipeline *core.Pipeline
	for name, file := range map[string]*core.ModelFile{"float32": mf, "int8": quantized} {
		p, err := core.NewPipeline(file)
		if err != nil {
			b.Fatal(err)
		}
		models[name], pipeline = p.Model(), p
	}

	examples, err := ReadExamples(fixtureCaptions, 1)
	if err != nil {
		b.Fatal(err)
	}
	if in, err = pipeline.Inputs(examples[0].Image, examples[0].Caption); err != nil {
		b.Fatal(err)
	}
	if masks, err = core.RandomMasks(cfg, core.DefaultMaskRatio, core.DefaultMaskRatio, 1); err != nil {
		b.Fatal(err)
	}
	return models, in, masks
}

func BenchmarkEmbed(b *testing.B) {
	for _, preset := range []string{"micro", "tiny"} {
		models, in, _ := benchModels(b, preset)
		for _, weights := range []string{"float32", "int8"} {
			b.Run(preset+"/"+weights, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := models[weights].Embed(in, core.PoolCLS); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkReconstruct(b *testing.B) {
	for _, preset := range []string{"micro", "tiny"} {
		models, in, masks := benchModels(b, preset)
		for _, weights := range []string{"float32", "int8"} {
			b.Run(preset+"/"+weights, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := models[weights].Reconstruct(in, masks); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkQuantizeModelFile(b *testing.B) {
	cfg, err := core.Preset("tiny")
	if err != nil {
		b.Fatal(err)
	}
	mf := initModelFile(b, cfg, bertvocab.Tokens(), 1)
	for b.Loop() {
		if _, _, err := QuantizeModelFile(mf); err != nil {
			b.Fatal(err)
		}
	}
}
