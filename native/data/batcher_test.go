package data

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
)

var testTokenizer = sync.OnceValues(func() (*core.Tokenizer, error) {
	return core.NewTokenizer(bertvocab.Tokens())
})

// batcherConfig returns a config for the micro preset (16x16 images, 4x4
// patches, 16 text tokens).
func batcherConfig(t *testing.T, batchSize int) BatcherConfig {
	t.Helper()
	model, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	tokenizer, err := testTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	return BatcherConfig{
		Model:        model,
		Norm:         core.CC12MNorm,
		Tokenizer:    tokenizer,
		BatchSize:    batchSize,
		Augmentation: DefaultAugmentation,
	}
}

// pipelineMixer mixes the captions fixture (paired, image-only and
// text-only lines) with the glosses text file, 3 to 1.
func pipelineMixer(t *testing.T, epochs int, shuffle bool) *Mixer {
	t.Helper()
	// Written by: go run testdata/pipeline/gen.go
	captions, err := OpenCaptions(filepath.Join(pipelineDir, "captions.jsonl"), CaptionsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	glosses, err := OpenTextLines(filepath.Join(pipelineDir, "glosses.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMixer(MixerConfig{
		Sources: []WeightedSource{
			{Name: "captions", Source: captions, Weight: 3},
			{Name: "glosses", Source: glosses, Weight: 1},
		},
		Seed:        9,
		CycleLength: 4,
		Epochs:      epochs,
		Shuffle:     shuffle,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readBatches returns up to n batches (all when n < 0) and closes b.
func readBatches(t *testing.T, b *Batcher, n int) []*Batch {
	t.Helper()
	defer b.Close()
	var out []*Batch
	for n < 0 || len(out) < n {
		batch, err := b.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, batch)
	}
	return out
}

func TestBatcherEvalLayout(t *testing.T) {
	// One unshuffled pass over the captions file in batches of 2.
	captions, err := OpenCaptions(filepath.Join(pipelineDir, "captions.jsonl"), CaptionsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mixer, err := NewMixer(MixerConfig{Sources: []WeightedSource{{Name: "captions", Source: captions, Weight: 1}}, Epochs: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := batcherConfig(t, 2)
	b, err := NewBatcher(context.Background(), mixer, Position{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	batches := readBatches(t, b, -1)

	var sizes []int
	var kinds []Kind
	for _, batch := range batches {
		sizes = append(sizes, batch.Size)
		kinds = append(kinds, batch.Kinds...)
	}
	if !slices.Equal(sizes, []int{2, 2, 1}) || !slices.Equal(kinds, []Kind{Paired, Paired, ImageOnly, TextOnly, Paired}) {
		t.Fatalf("batch sizes %v and kinds %v, want [2 2 1] and [paired paired image-only text-only paired]", sizes, kinds)
	}

	numPatchValues := cfg.Model.NumPatches() * cfg.Model.PatchDim()
	for bi, batch := range batches {
		if len(batch.Patches) != batch.Size*numPatchValues || len(batch.Tokens) != batch.Size*cfg.Model.TextLength {
			t.Fatalf("batch %d has %d patch values and %d tokens, want [%d, %d] and [%d, %d]",
				bi, len(batch.Patches), len(batch.Tokens), batch.Size, numPatchValues, batch.Size, cfg.Model.TextLength)
		}
		for i := range batch.Size {
			ex, err := captions.Example(int(batch.Draws[i].Example))
			if err != nil {
				t.Fatal(err)
			}
			// Tokens: the caption's ids, or all pads for an image-only example.
			wantTokens := cfg.Tokenizer.Encode(ex.Caption, cfg.Model.TextLength)
			if !slices.Equal(batch.ExampleTokens(i), wantTokens) {
				t.Errorf("batch %d example %d tokens = %v, want %v", bi, i, batch.ExampleTokens(i), wantTokens)
			}
			// Patches: core's inference preprocessing, or zeros for text-only.
			wantPatches := make([]float32, numPatchValues)
			if ex.Kind.HasImage() {
				if err := ex.Decode(); err != nil {
					t.Fatal(err)
				}
				pixels, err := core.ImagePixels(ex.Image, cfg.Model.ImageSize, cfg.Norm)
				if err != nil {
					t.Fatal(err)
				}
				core.Patchify(wantPatches, pixels, cfg.Model)
				if !slices.Equal(batch.ExamplePixels(i), pixels) {
					t.Errorf("batch %d example %d ExamplePixels differs from core.ImagePixels", bi, i)
				}
			}
			if !slices.Equal(batch.ExamplePatches(i), wantPatches) {
				t.Errorf("batch %d example %d (%v) patches differ from core.ImagePixels + Patchify", bi, i, ex.Kind)
			}
		}
	}
	if last := batches[len(batches)-1].Next; last.Draw != 5 {
		t.Errorf("last batch Next.Draw = %d, want 5", last.Draw)
	}
}

// TestBatcherWorkerCountInvariance checks that augmented batches are the
// same bits whatever the number of workers and prefetched batches.
func TestBatcherWorkerCountInvariance(t *testing.T) {
	run := func(workers, prefetch int) []*Batch {
		cfg := batcherConfig(t, 4)
		cfg.Augment, cfg.Seed, cfg.Workers, cfg.Prefetch = true, 42, workers, prefetch
		b, err := NewBatcher(context.Background(), pipelineMixer(t, 3, true), Position{}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return readBatches(t, b, -1)
	}
	want := run(1, 1)
	if len(want) == 0 {
		t.Fatal("no batches")
	}
	for _, setting := range [][2]int{{2, 1}, {4, 3}, {7, 2}} {
		got := run(setting[0], setting[1])
		if len(got) != len(want) {
			t.Fatalf("workers %d: %d batches, want %d", setting[0], len(got), len(want))
		}
		for i := range want {
			if !slices.Equal(got[i].Patches, want[i].Patches) || !slices.Equal(got[i].Tokens, want[i].Tokens) ||
				!slices.Equal(got[i].Kinds, want[i].Kinds) || !slices.Equal(got[i].Draws, want[i].Draws) {
				t.Errorf("workers %d prefetch %d: batch %d differs from the 1-worker run", setting[0], setting[1], i)
			}
		}
	}
}

// TestBatcherAugmentsPerEpoch checks that the same image gets different
// views in different epochs and that augmentation changes the pixels.
func TestBatcherAugmentsPerEpoch(t *testing.T) {
	cfg := batcherConfig(t, 4)
	cfg.Augment, cfg.Seed = true, 42
	b, err := NewBatcher(context.Background(), pipelineMixer(t, 4, false), Position{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	batches := readBatches(t, b, -1)
	// Unshuffled, the captions source's example 1 (gradient.png) is read
	// once per pass; collect its views.
	var views [][]float32
	for _, batch := range batches {
		for i, d := range batch.Draws {
			if d.Source == 0 && d.Example == 1 {
				views = append(views, slices.Clone(batch.ExamplePatches(i)))
			}
		}
	}
	if len(views) < 2 {
		t.Fatalf("gradient.png drawn %d times, want at least 2", len(views))
	}
	if slices.Equal(views[0], views[1]) {
		t.Errorf("two draws of gradient.png gave the same augmented patches")
	}
}

func TestBatcherResume(t *testing.T) {
	cfg := batcherConfig(t, 4)
	cfg.Augment, cfg.Seed, cfg.Workers = true, 5, 3
	first, err := NewBatcher(context.Background(), pipelineMixer(t, 0, true), Position{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	batches := readBatches(t, first, 6)

	resumed, err := NewBatcher(context.Background(), pipelineMixer(t, 0, true), batches[2].Next, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := readBatches(t, resumed, 3)
	for i, batch := range got {
		want := batches[3+i]
		if !slices.Equal(batch.Patches, want.Patches) || !slices.Equal(batch.Tokens, want.Tokens) || !slices.Equal(batch.Draws, want.Draws) {
			t.Errorf("resumed batch %d differs from batch %d of the first run", i, 3+i)
		}
	}
}

// memSource serves examples held in memory.
type memSource []Example

func (s memSource) Len() int { return len(s) }

func (s memSource) Example(i int) (Example, error) {
	if err := checkIndex("memory", i, len(s)); err != nil {
		return Example{}, err
	}
	return s[i], nil
}

func TestBatcherBadExamples(t *testing.T) {
	red := readFixture(t, "images/red.png")
	src := memSource{
		{Kind: Paired, ImageData: red, Caption: "good one", Origin: "mem:0"},
		{Kind: Paired, ImageData: []byte("not an image"), Caption: "bad", Origin: "mem:1"},
		{Kind: TextOnly, Caption: "\u200b\u200b", Origin: "mem:2"},
		{Kind: Paired, ImageData: red, Caption: "\u200b", Origin: "mem:3"},
		{Kind: Paired, ImageData: red, Caption: "good two", Origin: "mem:4"},
	}
	newMixer := func() *Mixer {
		m, err := NewMixer(MixerConfig{Sources: []WeightedSource{{Name: "mem", Source: src, Weight: 1}}, Epochs: 1})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	b, err := NewBatcher(context.Background(), newMixer(), Position{}, batcherConfig(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Next()
	b.Close()
	if !errors.Is(err, ErrInvalidData) || !strings.Contains(err.Error(), "mem:1") {
		t.Errorf("Next() over a bad image = %v, want ErrInvalidData naming mem:1", err)
	}

	cfg := batcherConfig(t, 2)
	cfg.SkipBad = true
	b, err = NewBatcher(context.Background(), newMixer(), Position{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	batches := readBatches(t, b, -1)
	var kinds []Kind
	for _, batch := range batches {
		kinds = append(kinds, batch.Kinds...)
	}
	// mem:1 fails to decode and mem:2 gives no token, so both are skipped;
	// mem:3's caption gives no token, so it counts as image-only.
	if !slices.Equal(kinds, []Kind{Paired, ImageOnly, Paired}) || b.Skipped() != 2 {
		t.Errorf("SkipBad batches hold kinds %v with %d skipped, want [paired image-only paired] and 2", kinds, b.Skipped())
	}
	if len(batches) != 2 || batches[0].Next.Draw != 4 {
		t.Errorf("SkipBad gave %d batches, first ending before draw %d, want 2 and 4", len(batches), batches[0].Next.Draw)
	}
}

func TestBatcherCloseWhileRunning(t *testing.T) {
	cfg := batcherConfig(t, 2)
	cfg.Augment = true
	b, err := NewBatcher(context.Background(), pipelineMixer(t, 0, true), Position{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Next(); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close() did not return within 10 s")
	}
	b.Close()
}

func TestNewBatcherErrors(t *testing.T) {
	tests := []struct {
		name        string
		edit        func(*BatcherConfig)
		wantInError string
	}{
		{"zero batch", func(c *BatcherConfig) { c.BatchSize = 0 }, "batch size 0"},
		{"no tokenizer", func(c *BatcherConfig) { c.Tokenizer = nil }, "tokenizer is nil"},
		{"zero std", func(c *BatcherConfig) { c.Norm.Std[1] = 0 }, "std[1] = 0"},
		{"bad model", func(c *BatcherConfig) { c.Model.PatchSize = 5 }, "not a multiple"},
		{"bad augmentation", func(c *BatcherConfig) { c.Augment, c.Augmentation.FlipProb = true, 2 }, "flip probability"},
		{"negative workers", func(c *BatcherConfig) { c.Workers = -1 }, "workers -1"},
	}
	for _, tt := range tests {
		cfg := batcherConfig(t, 2)
		tt.edit(&cfg)
		_, err := NewBatcher(context.Background(), pipelineMixer(t, 1, false), Position{}, cfg)
		if err == nil || !strings.Contains(err.Error(), tt.wantInError) {
			t.Errorf("NewBatcher(%s) = %v, want an error containing %q", tt.name, err, tt.wantInError)
		}
	}
	m := pipelineMixer(t, 1, false)
	_, err := NewBatcher(context.Background(), m, Position{Draw: 0, Fingerprint: "0123"}, batcherConfig(t, 2))
	if err == nil || !strings.Contains(err.Error(), "saved for mix 0123") {
		t.Errorf("NewBatcher(foreign position) = %v, want a fingerprint error", err)
	}
}

// emojiMiniMixer returns a shuffled mixer over testdata/emoji-mini's train
// pairs and tag lines, 3 to 1, in cycles of batchSize.
func emojiMiniMixer(t testing.TB, batchSize, epochs int) *Mixer {
	t.Helper()
	// Made by: go run ./cmd/m3ae-edge data emoji --out testdata/emoji-mini --max-train 48 --max-test 16 --tag-lines
	pairs, err := OpenCaptions("../../testdata/emoji-mini/train.jsonl", CaptionsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tags, err := OpenTextLines("../../testdata/emoji-mini/train-tags.txt")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMixer(MixerConfig{
		Sources: []WeightedSource{
			{Name: "emoji", Source: pairs, Weight: 3},
			{Name: "tags", Source: tags, Weight: 1},
		},
		Seed: 1, CycleLength: batchSize, Epochs: epochs, Shuffle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBatcherEmojiMini(t *testing.T) {
	cfg := batcherConfig(t, 16)
	cfg.Model, _ = core.Preset("tiny") // 64x64 images, 8x8 patches
	cfg.Augment = true
	b, err := NewBatcher(context.Background(), emojiMiniMixer(t, 16, 1), Position{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	batches := readBatches(t, b, -1)
	// One epoch is one pass over the 48 pairs at 12 per batch: 4 batches.
	if len(batches) != 4 {
		t.Fatalf("got %d batches, want 4", len(batches))
	}
	for bi, batch := range batches {
		counts := map[Kind]int{}
		for i, kind := range batch.Kinds {
			counts[kind]++
			if core.NumTokens(batch.ExampleTokens(i)) == 0 {
				t.Errorf("batch %d example %d (%v) has no token", bi, i, kind)
			}
		}
		if counts[Paired] != 12 || counts[TextOnly] != 4 {
			t.Errorf("batch %d kinds = %v, want 12 paired and 4 text-only", bi, counts)
		}
	}
}

// BenchmarkBatcherEmojiMini measures the pipeline on 64x64 emoji with
// training augmentation: decode, crop, bicubic resize, flip, normalize,
// patchify and tokenize, on GOMAXPROCS workers.
func BenchmarkBatcherEmojiMini(b *testing.B) {
	model, err := core.Preset("tiny")
	if err != nil {
		b.Fatal(err)
	}
	tokenizer, err := testTokenizer()
	if err != nil {
		b.Fatal(err)
	}
	cfg := BatcherConfig{Model: model, Norm: core.CC12MNorm, Tokenizer: tokenizer, BatchSize: 64,
		Augment: true, Augmentation: DefaultAugmentation}
	batcher, err := NewBatcher(context.Background(), emojiMiniMixer(b, 64, 0), Position{}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer batcher.Close()
	b.ResetTimer()
	for range b.N {
		if _, err := batcher.Next(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*cfg.BatchSize)/b.Elapsed().Seconds(), "examples/s")
}

func TestBatcherCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	b, err := NewBatcher(ctx, pipelineMixer(t, 0, true), Position{}, batcherConfig(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	// Batches prepared before the cancellation may still arrive; after
	// them Next must report the cancellation, not the end of the data.
	for range 100 {
		_, err = b.Next()
		if err != nil {
			break
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Next() after cancel = %v, want context.Canceled", err)
	}
}
