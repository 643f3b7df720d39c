package export

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
	"github.com/m3ae-edge/m3ae-edge/native"
)

// parityTolerance bounds the absolute difference between any output of the
// GoMLX forward pass and of core on the exported file. Both run float32 but
// sum in different orders.
const parityTolerance = 1e-4

// trainedMicro returns a micro trainer after a few steps on synthetic
// examples, so every parameter (LayerNorm scales and biases, mask and type
// embeddings included) has moved away from its initial value.
func trainedMicro(t *testing.T) *native.Trainer {
	t.Helper()
	cfg, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	init, err := core.InitModelFile(cfg, bertvocab.Tokens(), core.CC12MNorm, 7)
	if err != nil {
		t.Fatal(err)
	}
	backend, err := native.NewBackend()
	if err != nil {
		t.Fatal(err)
	}
	tc := native.DefaultTrainConfig(6)
	tc.PeakLearningRate = 5e-3
	tc.Seed = 3
	trainer, err := native.NewTrainer(backend, init, tc)
	if err != nil {
		t.Fatal(err)
	}
	batch := parityExamples(cfg)
	for step := range 3 {
		if _, _, err := trainer.Step(batch); err != nil {
			t.Fatalf("step %d: %v", step+1, err)
		}
	}
	return trainer
}

// parityExamples returns paired, image-only, text-only and pad-heavy
// examples with pseudo-random pixels and ids.
func parityExamples(cfg core.Config) []native.Example {
	pixels := func(seed int) []float32 {
		img := make([]float32, cfg.ImageSize*cfg.ImageSize*core.Channels)
		for i := range img {
			img[i] = float32(math.Sin(float64(seed*131+i)*0.37)) * 1.7
		}
		return img
	}
	text := func(seed, numTokens int) []int32 {
		ids := make([]int32, cfg.TextLength)
		for i := range numTokens {
			ids[i] = int32(1000 + (seed*7919+i*104729)%(cfg.VocabSize-1000))
		}
		return ids
	}
	return []native.Example{
		{Image: pixels(1), Text: text(1, cfg.TextLength)},
		{Image: pixels(2), Text: text(2, 5)},
		{Image: pixels(3)},
		{Text: text(4, 9)},
		{Text: text(5, cfg.TextLength)},
		{Image: pixels(6), Text: text(6, 1)},
	}
}

func TestExportParityWithCore(t *testing.T) {
	trainer := trainedMicro(t)
	cfg := trainer.Config()
	mf, err := FromStore(trainer.Store(), cfg, bertvocab.Tokens(), core.CC12MNorm)
	if err != nil {
		t.Fatalf("FromStore: %v", err)
	}
	// Round-trip through the file format, as a deployment would.
	var buf bytes.Buffer
	if err := core.WriteModelFile(&buf, mf); err != nil {
		t.Fatalf("core.WriteModelFile: %v", err)
	}
	read, err := core.ReadModelFile(buf.Bytes())
	if err != nil {
		t.Fatalf("core.ReadModelFile: %v", err)
	}
	coreModel, err := core.NewModel(read)
	if err != nil {
		t.Fatalf("core.NewModel: %v", err)
	}
	gomlxModel, err := trainer.Model()
	if err != nil {
		t.Fatal(err)
	}

	examples := parityExamples(cfg)
	masks := make([]core.Masks, len(examples))
	for i := range masks {
		if masks[i], err = core.RandomMasks(cfg, 0.75, 0.75, uint64(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := gomlxModel.Reconstruct(examples, masks)
	if err != nil {
		t.Fatalf("native Reconstruct: %v", err)
	}
	embeddings, err := gomlxModel.Embed(examples)
	if err != nil {
		t.Fatalf("native Embed: %v", err)
	}
	for i, ex := range examples {
		in := core.Inputs{Tokens: ex.Text}
		if ex.Image != nil {
			in.Patches = make([]float32, cfg.NumPatches()*cfg.PatchDim())
			core.Patchify(in.Patches, ex.Image, cfg)
		}
		want, err := coreModel.Reconstruct(in, masks[i])
		if err != nil {
			t.Fatalf("core Reconstruct(example %d): %v", i, err)
		}
		compare(t, "Encoded", i, got[i].Encoded, want.Encoded)
		compare(t, "PixelPred", i, got[i].PixelPred, want.PixelPred)
		compare(t, "TokenLogits", i, got[i].TokenLogits, want.TokenLogits)
		wantCLS, err := coreModel.Embed(in, core.PoolCLS)
		if err != nil {
			t.Fatalf("core Embed(example %d): %v", i, err)
		}
		compare(t, "Embed", i, embeddings[i], wantCLS)
	}
}

// compare fails the test when got and want differ in length or by more than
// parityTolerance anywhere.
func compare(t *testing.T, what string, example int, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s(example %d) has %d values, want %d", what, example, len(got), len(want))
		return
	}
	worst, at := 0.0, -1
	for i := range got {
		if d := math.Abs(float64(got[i]) - float64(want[i])); d > worst || math.IsNaN(d) {
			worst, at = d, i
		}
	}
	if worst > parityTolerance || math.IsNaN(worst) {
		t.Errorf("%s(example %d)[%d] = %v, want %v (max abs difference %g > %g)", what, example, at, got[at], want[at], worst, parityTolerance)
	}
	t.Logf("%s(example %d): max abs difference %.3g", what, example, worst)
}

func TestFromStoreListsEveryProblem(t *testing.T) {
	cfg, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	init, err := core.InitModelFile(cfg, bertvocab.Tokens(), core.CC12MNorm, 1)
	if err != nil {
		t.Fatal(err)
	}
	store := model.NewStore()
	if err := native.LoadModelFile(store, init); err != nil {
		t.Fatal(err)
	}
	// One missing, one unused and one mis-shaped variable.
	if err := store.DeleteVariable(native.ParamPath("cls_token")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateVariable("/extra/kernel", tensors.FromShape(store.GetVariable(native.ParamPath("image_embedding.bias")).Shape())); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteVariable(native.ParamPath("decoder.LayerNorm_0.scale")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateVariable(native.ParamPath("decoder.LayerNorm_0.scale"), tensors.FromFlatDataAndDimensions(make([]float32, 3), 3)); err != nil {
		t.Fatal(err)
	}

	_, err = FromStore(store, cfg, bertvocab.Tokens(), core.CC12MNorm)
	if !errors.Is(err, core.ErrInvalidModelFile) {
		t.Fatalf("FromStore(broken store) error = %v, want ErrInvalidModelFile", err)
	}
	for _, want := range []string{
		"1 missing: /cls_token",
		"1 unused: /extra/kernel",
		"1 mis-shaped: /decoder/LayerNorm_0/scale",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("FromStore(broken store) error = %q, want it to contain %q", err, want)
		}
	}
}
