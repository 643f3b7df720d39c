package trainrun

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
	"github.com/m3ae-edge/m3ae-edge/native"
	"github.com/m3ae-edge/m3ae-edge/native/data"
)

func TestCompareOptions(t *testing.T) {
	saved := DefaultOptions()
	saved.Captions = []string{"/data/train.jsonl"}
	requested := saved
	requested.Captions = []string{"/data/other.jsonl"}
	requested.BatchSize = 16
	requested.LearningRate = 1e-3
	requested.Steps = 5000

	conflicts, changes := compareOptions(saved, requested)
	var conflictFlags, changeFlags []string
	for _, c := range conflicts {
		conflictFlags = append(conflictFlags, c.Flag)
	}
	for _, c := range changes {
		changeFlags = append(changeFlags, c.Flag)
	}
	if want := []string{"batch", "captions"}; !slices.Equal(conflictFlags, want) {
		t.Errorf("compareOptions conflicts = %v, want %v", conflictFlags, want)
	}
	if want := []string{"lr", "steps"}; !slices.Equal(changeFlags, want) {
		t.Errorf("compareOptions changes = %v, want %v", changeFlags, want)
	}
	err := conflictError(conflicts)
	for _, want := range []string{`--batch is 16 but the run was started with 32`, `--captions is ["/data/other.jsonl"]`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("conflictError() = %q, want it to contain %q", err, want)
		}
	}

	if conflicts, changes := compareOptions(saved, saved); len(conflicts)+len(changes) != 0 {
		t.Errorf("compareOptions(same, same) = %v, %v; want no difference", conflicts, changes)
	}
}

func TestOptionsValidate(t *testing.T) {
	dir := t.TempDir()
	trainCaptions := filepath.Join(dir, "train.jsonl")
	if err := os.WriteFile(trainCaptions, []byte(`{"image":"a.png","caption":"a"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := DefaultOptions()
	base.Captions = []string{trainCaptions}
	if err := base.Validate(); err != nil {
		t.Fatalf("Validate(defaults with captions) = %v, want nil", err)
	}
	tests := []struct {
		name        string
		change      func(*Options)
		wantInError string
	}{
		{"no data", func(o *Options) { o.Captions = nil }, "no training data"},
		{"unknown preset", func(o *Options) { o.Preset = "huge" }, `unknown preset "huge"`},
		{"zero batch", func(o *Options) { o.BatchSize = 0 }, "--batch 0"},
		{"huge batch", func(o *Options) { o.BatchSize = 100_000_000 }, "--batch 100000000: want 1 to 4096"},
		{"both eval splits", func(o *Options) { o.EvalCaptions, o.EvalFraction = "test.jsonl", 0.1 }, "one way only"},
		{"eval fraction of 1", func(o *Options) { o.EvalFraction = 1 }, "--eval-fraction 1"},
		{"negative weight", func(o *Options) { o.TextOnlyWeight = -1 }, "--text-only-weight -1"},
		{"bad norm", func(o *Options) { o.Norm = "imagenet" }, `--norm "imagenet"`},
		{"zero log interval", func(o *Options) { o.LogEvery = 0 }, "--log-every 0"},
		{"image mask ratio of 1", func(o *Options) { o.ImageMaskRatio = 1 }, "--image-mask-ratio 1: want 0 up to but not including 1"},
		{"negative image mask ratio", func(o *Options) { o.ImageMaskRatio = -0.1 }, "--image-mask-ratio -0.1: want 0 up to"},
		{"text mask ratio of 1", func(o *Options) { o.TextMaskRatio = 1 }, "--text-mask-ratio 1: want 0 up to"},
		{"mask ratio hiding all", func(o *Options) { o.ImageMaskRatio = 0.99 }, `--image-mask-ratio 0.99 hides all 64 image patches of preset "tiny"`},
		{"beta1 of 1.5", func(o *Options) { o.Beta1 = 1.5 }, "--beta1 1.5: want 0 up to but not including 1"},
		{"negative beta2", func(o *Options) { o.Beta2 = -0.1 }, "--beta2 -0.1"},
		{"zero epsilon", func(o *Options) { o.Epsilon = 0 }, "--adam-epsilon 0: want a positive number"},
		{"negative weight decay", func(o *Options) { o.WeightDecay = -1 }, "--weight-decay -1: want 0"},
		{"negative grad clip", func(o *Options) { o.MaxGradNorm = -1 }, "--grad-clip -1: want 0"},
		{"negative image loss weight", func(o *Options) { o.ImageLossWeight = -1 }, "--image-loss-weight -1: want 0 or more"},
		{"negative text loss weight", func(o *Options) { o.TextLossWeight = -1 }, "--text-loss-weight -1: want 0 or more"},
		{"both loss weights 0", func(o *Options) { o.ImageLossWeight, o.TextLossWeight = 0, 0 }, "both 0"},
		{"missing eval captions", func(o *Options) { o.EvalCaptions = filepath.Join(dir, "nonexistent") }, "nonexistent: file not found"},
		{"eval captions folder", func(o *Options) { o.EvalCaptions = dir }, "is a folder"},
		{"missing captions", func(o *Options) { o.Captions = []string{filepath.Join(dir, "missing.csv")} }, "missing.csv: file not found"},
		{"infinite clip", func(o *Options) { o.MaxGradNorm = math.Inf(1) }, "--grad-clip +Inf: want a finite number"},
		{"NaN crop scale", func(o *Options) { o.Augment, o.CropMinScale = false, math.NaN() }, "--crop-min-scale NaN"},
	}
	for _, tt := range tests {
		o := base
		tt.change(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantInError) {
			t.Errorf("Validate(%s) = %v, want an error containing %q", tt.name, err, tt.wantInError)
		}
	}
}

func TestOptionsDerived(t *testing.T) {
	o := DefaultOptions()
	if got, want := o.PeakLearningRate(), 1.5e-4*32/256; got != want {
		t.Errorf("PeakLearningRate() at batch 32 = %g, want %g", got, want)
	}
	o.LearningRate = 2e-3
	if got := o.PeakLearningRate(); got != 2e-3 {
		t.Errorf("PeakLearningRate() with --lr 2e-3 = %g, want 2e-3", got)
	}
	if got := o.Warmup(); got != 50 {
		t.Errorf("Warmup() with -1 and 1000 steps = %d, want 50", got)
	}
}

// indexSource is a source of n text-only examples whose caption is the
// index.
type indexSource int

func (s indexSource) Len() int { return int(s) }

func (s indexSource) Example(i int) (data.Example, error) {
	return data.Example{Kind: data.TextOnly, Caption: fmt.Sprint(i), Label: data.NoLabel}, nil
}

func TestSplitHeldOut(t *testing.T) {
	train, eval, err := splitHeldOut(indexSource(100), 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 90 || eval.Len() != 10 {
		t.Fatalf("splitHeldOut(100, 0.1) sizes = %d, %d; want 90, 10", train.Len(), eval.Len())
	}
	seen := map[string]bool{}
	for _, src := range []data.Source{train, eval} {
		for i := range src.Len() {
			ex, err := src.Example(i)
			if err != nil {
				t.Fatal(err)
			}
			if seen[ex.Caption] {
				t.Errorf("example %s is in both splits", ex.Caption)
			}
			seen[ex.Caption] = true
		}
	}
	if len(seen) != 100 {
		t.Errorf("the splits cover %d examples, want 100", len(seen))
	}
	_, again, _ := splitHeldOut(indexSource(100), 0.1)
	for i := range eval.Len() {
		a, _ := eval.Example(i)
		b, _ := again.Example(i)
		if a.Caption != b.Caption {
			t.Errorf("held-out example %d = %s, then %s; want the same split every time", i, a.Caption, b.Caption)
		}
	}
	if _, _, err := splitHeldOut(indexSource(1), 0.5); err == nil {
		t.Error("splitHeldOut(1 example, 0.5) = nil error, want one about leaving none to train on")
	}
}

func TestConcatSource(t *testing.T) {
	src := concat([]data.Source{indexSource(2), indexSource(3)})
	var got []string
	for i := range src.Len() {
		ex, err := src.Example(i)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ex.Caption)
	}
	if want := []string{"0", "1", "0", "1", "2"}; !slices.Equal(got, want) {
		t.Errorf("concat(2, 3) examples = %v, want %v", got, want)
	}
	if _, err := src.Example(5); err == nil {
		t.Error("Example(5) of 5 = nil error, want out of range")
	}
}

func TestFindCheckpoint(t *testing.T) {
	run := t.TempDir()
	for _, step := range []int64{10, 20, 30} {
		if err := os.MkdirAll(native.CheckpointPath(CheckpointsDir(run), step), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A staging folder of an interrupted save is never a checkpoint.
	if err := os.MkdirAll(filepath.Join(CheckpointsDir(run), stagingPrefix+"1"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dir  string
		step int64
		want string
	}{
		{run, -1, "step-000000030"},
		{run, 20, "step-000000020"},
		{CheckpointsDir(run), -1, "step-000000030"},
		{native.CheckpointPath(CheckpointsDir(run), 10), -1, "step-000000010"},
	}
	for _, tt := range tests {
		got, err := FindCheckpoint(tt.dir, tt.step)
		if err != nil || filepath.Base(got) != tt.want {
			t.Errorf("FindCheckpoint(%s, %d) = %q, %v; want %s", tt.dir, tt.step, got, err, tt.want)
		}
	}
	if _, err := FindCheckpoint(run, 15); err == nil || !strings.Contains(err.Error(), "contains steps 10, 20, 30") {
		t.Errorf("FindCheckpoint(run, 15) = %v, want an error listing steps 10, 20, 30", err)
	}
	if _, err := FindCheckpoint(t.TempDir(), -1); !errors.Is(err, native.ErrNoCheckpoint) {
		t.Errorf("FindCheckpoint(empty) = %v, want ErrNoCheckpoint", err)
	}
}

func TestPruneAndLeftovers(t *testing.T) {
	dir := t.TempDir()
	for _, step := range []int64{1, 2, 3} {
		if err := os.MkdirAll(native.CheckpointPath(dir, step), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{stagingPrefix + "x", trashPrefix + "step-000000000"} {
		if err := os.MkdirAll(filepath.Join(dir, name, "partial"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := pruneCheckpoints(dir, 2); err != nil {
		t.Fatal(err)
	}
	if err := removeLeftovers(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"step-000000002", "step-000000003"}; !slices.Equal(names, want) {
		t.Errorf("after pruning to 2 and removing leftovers, the folder holds %v, want %v", names, want)
	}
}

func TestOpenMetricsDropsLaterSteps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	content := `{"kind":"train","step":5,"image_loss":1.5,"text_loss":9}
{"kind":"eval","step":10,"image_mse":1.2,"text_loss":null,"token_accuracy":0.1}
{"kind":"train","step":10,"image_loss":1.25,"text_loss":8.5}
{"kind":"train","step":15,"image_loss":1.0,"text_loss":8}
{"kind":"train","st`
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := openMetrics(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.history) != 3 {
		t.Fatalf("openMetrics(keep through step 10) kept %d records, want 3", len(m.history))
	}
	if tl := m.history[1].TextLoss; tl != nil {
		t.Errorf("eval text_loss null decoded as %v, want no value", *tl)
	}
	rewritten, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(rewritten), "\n"); n != 3 || strings.Contains(string(rewritten), `"step":15`) {
		t.Errorf("rewritten metrics file has %d lines:\n%s\nwant the 3 records through step 10", n, rewritten)
	}

	if err := m.append(&EvalRecord{Kind: KindEval, Step: 11, EvalMetrics: EvalMetrics{ImageMSE: Float(math.NaN())}}); err != nil {
		t.Fatalf("append(record with NaN) = %v, want nil (NaN written as null)", err)
	}
}

func TestWrapSpans(t *testing.T) {
	var spans []span
	for range 30 {
		spans = append(spans, span{text: "word"})
	}
	spans = append(spans, span{text: "piece", continues: true})
	lines := wrapSpans(spans)
	if len(lines) < 2 {
		t.Fatalf("wrapSpans(31 spans) gave %d line, want a wrap", len(lines))
	}
	var joined []string
	for _, line := range lines {
		var text string
		for _, s := range line {
			text += s.text
		}
		if len(text) > reconTextChars {
			t.Errorf("line %q has %d characters, want at most %d", text, len(text), reconTextChars)
		}
		joined = append(joined, text)
	}
	if last := joined[len(joined)-1]; !strings.HasSuffix(last, "wordpiece") {
		t.Errorf("last line = %q, want the continuing piece joined to its word", last)
	}
}

func TestRenderPlots(t *testing.T) {
	cfg, err := core.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := core.NewTokenizer(bertvocab.Tokens())
	if err != nil {
		t.Fatal(err)
	}
	image := make([]float32, cfg.ImageSize*cfg.ImageSize*core.Channels)
	for i := range image {
		image[i] = float32(i%7) / 7
	}
	masks, err := core.RandomMasks(cfg, 0.75, 0.75, 1)
	if err != nil {
		t.Fatal(err)
	}
	patches := make([]float32, cfg.NumPatches()*cfg.PatchDim())
	core.Patchify(patches, image, cfg)
	tokens := tok.Encode("a red apple on a white plate", cfg.TextLength)
	predicted := make([]int32, cfg.TextLength)
	for pos := range predicted {
		predicted[pos] = -1
		if masks.Text[pos] && tokens[pos] != core.PadID {
			predicted[pos] = tokens[pos]
		}
	}
	items := []reconItem{
		{image: image, masks: masks, patches: patches, tokens: tokens, predicted: predicted},
		{image: image, masks: masks, patches: patches},
		{tokens: tokens, predicted: predicted},
	}
	reconPNG, err := renderRecon(items, cfg, core.CC12MNorm, tok, "step 1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(reconPNG))
	if err != nil {
		t.Fatalf("renderRecon output does not decode as PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 3*reconMinCell || b.Dy() < 3*reconMinCell {
		t.Errorf("recon grid is %dx%d, want room for 3 rows of 3 images of at least %d pixels", b.Dx(), b.Dy(), reconMinCell)
	}

	one, nan := Float(1), Float(math.NaN())
	history := []historyPoint{
		{Kind: KindTrain, Step: 5, ImageLoss: &one, TextLoss: &one},
		{Kind: KindEval, Step: 5, ImageMSE: &one, TextLoss: &nan, TokenAccuracy: &nan},
	}
	lossPNG, err := renderLossPlot(history)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(lossPNG)); err != nil {
		t.Errorf("renderLossPlot output does not decode as PNG: %v", err)
	}
}
