package native

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// groupEquivalenceTolerance bounds the float32 difference between running a
// token group with every key masked and leaving it out: the masked keys get
// exactly zero weight, but the longer sequence changes how the backend's
// matmuls block and round (1.0e-6 seen without GOEXPERIMENT=simd).
const groupEquivalenceTolerance = 1e-5

// nanoConfig is the smallest architecture that exercises every part of the
// model: 4 patches, 4 text positions, 2 heads, one block on each side.
var nanoConfig = core.Config{
	ImageSize: 8, PatchSize: 4, TextLength: 4, VocabSize: 11,
	EmbedDim: 8, Depth: 1, NumHeads: 2,
	DecoderEmbedDim: 8, DecoderDepth: 1, DecoderNumHeads: 2,
	MLPRatio: 2,
}

// The whole training loss of a paired and a text-only sub-batch, in float64,
// against finite differences at three elements of every parameter: this
// checks the wiring of the encoder, decoder, heads and losses together.
func TestGradientWholeModel(t *testing.T) {
	cfg := nanoConfig
	rng := rand.New(rand.NewPCG(9, 0))
	specs := core.ParamSpecs(cfg)
	params := make([]*tensors.Tensor, len(specs))
	for i, spec := range specs {
		params[i] = randomTensor(rng, 0.5, spec.Shape...)
		if spec.Kind == core.KindNormScale {
			tensors.MustMutableFlatData[float64](params[i], func(flat []float64) {
				for j := range flat {
					flat[j] += 1
				}
			})
		}
	}
	image := func(seed uint64) []float32 {
		r := rand.New(rand.NewPCG(seed, 1))
		img := make([]float32, cfg.ImageSize*cfg.ImageSize*core.Channels)
		for i := range img {
			img[i] = float32(2*r.Float64() - 1)
		}
		return img
	}
	paired := []Example{{Image: image(1), Text: []int32{3, 7, 0, 0}}, {Image: image(2), Text: []int32{5, 2, 9, 0}}}
	textOnly := []Example{{Text: []int32{4, 4, 1, 0}}}
	masksFor := func(examples []Example, seed uint64) []core.Masks {
		masks := make([]core.Masks, len(examples))
		for i := range masks {
			m, err := core.RandomMasks(cfg, 0.5, 0.5, seed+uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			masks[i] = m
		}
		return masks
	}
	pairedBatch, err := packSubBatch(cfg, kindPaired, paired, masksFor(paired, 20))
	if err != nil {
		t.Fatal(err)
	}
	textBatch, err := packSubBatch(cfg, kindTextOnly, textOnly, masksFor(textOnly, 30))
	if err != nil {
		t.Fatal(err)
	}

	checkGradient(t, testBackend(t), "whole model", func(g *Graph, in []*Node) *Node {
		byName := make(map[string]*Node, len(specs))
		for i, spec := range specs {
			byName[spec.Name] = in[i]
		}
		m := &m3aeGraph{cfg: cfg, weight: func(name string) *Node { return byName[name] }}
		var total *Node
		for _, sb := range []*subBatch{pairedBatch, textBatch} {
			nodes := make([]*Node, len(sb.inputs))
			for i, input := range sb.inputs {
				nodes[i] = ConstTensor(g, input)
				if nodes[i].DType() == dtypes.Float32 {
					nodes[i] = ConvertDType(nodes[i], dtypes.Float64)
				}
			}
			sbNodes, _ := unpackSubBatch(nodes, sb.kind)
			image, text := m.subBatchLosses(sbNodes)
			total = addOrSet(total, MulScalar(text, 0.5))
			if image != nil {
				total = Add(total, image)
			}
		}
		return total
	}, params, 3)
}

// Running text of pads only with every key masked gives the encoder and
// decoder outputs of leaving the text group out, which lets training route
// such examples to the image-only sub-batch.
func TestAllPadTextEqualsNoText(t *testing.T) {
	cfg := microConfig(t)
	store := model.NewStore()
	if err := LoadModelFile(store, initModel(t, cfg, 4)); err != nil {
		t.Fatal(err)
	}
	m, err := NewModel(testBackend(t), store, cfg)
	if err != nil {
		t.Fatal(err)
	}

	img := syntheticExamples(cfg, 1, 1, false)[0].Image
	examples := []Example{{Image: img, Text: make([]int32, cfg.TextLength)}, {Image: img}}
	masks := make([]core.Masks, 2)
	for i := range masks {
		if masks[i], err = core.RandomMasks(cfg, 0.75, 0.75, 1); err != nil {
			t.Fatal(err)
		}
	}

	got, err := m.Reconstruct(examples, masks)
	if err != nil {
		t.Fatal(err)
	}
	embeddings, err := m.Embed(examples)
	if err != nil {
		t.Fatal(err)
	}

	withPads, without := got[0], got[1]
	keptImage := 1 + cfg.NumPatches() - countTrue(masks[0].Image)
	assertClose(t, "Encoded CLS and image rows", withPads.Encoded[:keptImage*cfg.EmbedDim], without.Encoded)
	assertClose(t, "PixelPred", withPads.PixelPred, without.PixelPred)
	assertClose(t, "Embed", embeddings[0], embeddings[1])
}

func assertClose(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > groupEquivalenceTolerance {
			t.Errorf("%s[%d] with all-pad text = %v, want %v as without text", what, i, got[i], want[i])
			return
		}
	}
}
