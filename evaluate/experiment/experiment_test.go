package experiment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/evaluate"
	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

// The emoji-mini fixture (48 train and 16 test pairs) is written by the
// command in testdata/emoji-mini/README.md.
const (
	emojiTrain = "../../testdata/emoji-mini/train.jsonl"
	emojiTest  = "../../testdata/emoji-mini/test.jsonl"
)

// microConfig returns a study of a few micro-preset steps on emoji-mini in
// dir.
func microConfig(study, dir string, steps int) Config {
	train := trainrun.DefaultOptions()
	train.Preset = "micro"
	train.BatchSize = 8
	train.Steps = steps
	train.LearningRate = 3e-3
	train.Workers = 2
	train.LogEvery = 1
	train.CheckpointEvery = 0
	train.EvalEvery = 0
	train.EvalCaptions = emojiTest
	train.EvalExamples = 8
	train.ReconExamples = 0
	return Config{
		Study: study, Dir: dir, Captions: emojiTrain, Train: train, Seeds: []uint64{1},
		Probe: ProbeConfig{
			Train: emojiTrain, Test: emojiTest, LabelField: "group", Pooling: "cls",
			Classifier: evaluate.DefaultClassifierOptions(),
		},
	}
}

func TestArms(t *testing.T) {
	tests := []struct {
		study string
		cfg   func(*Config)
		want  []string
	}{
		{StudyTextMaskRatio, nil, []string{"text-mask-0.15", "text-mask-0.5", "text-mask-0.75", "text-mask-0.9"}},
		{StudyTextMaskRatio, func(c *Config) { c.TextMaskRatios = []float64{0.3} }, []string{"text-mask-0.3"}},
		{StudyPairedVsUnpaired, nil, []string{"paired-100", "paired-50", "paired-0"}},
		{StudyPairedVsUnpaired, func(c *Config) { c.PairedFractions = []float64{0.25, 1} }, []string{"paired-25", "paired-100"}},
		{StudyPairedVsUnpaired, func(c *Config) { c.PairedFractions = []float64{0.1} }, []string{"paired-10"}},
		{StudyM3AEVsMAE, nil, []string{"m3ae", "mae"}},
	}
	for _, tt := range tests {
		cfg := microConfig(tt.study, t.TempDir(), 1)
		if tt.cfg != nil {
			tt.cfg(&cfg)
		}
		arms, err := cfg.Arms()
		if err != nil {
			t.Errorf("%s arms: %v", tt.study, err)
			continue
		}
		var names []string
		for _, arm := range arms {
			names = append(names, arm.Name)
		}
		if !slices.Equal(names, tt.want) {
			t.Errorf("%s arms = %q, want %q", tt.study, names, tt.want)
		}
	}

	cfg := microConfig(StudyM3AEVsMAE, t.TempDir(), 1)
	arms, _ := cfg.Arms()
	if !arms[0].WithText || arms[1].WithText {
		t.Errorf("m3ae-vs-mae WithText = %v, %v, want true, false", arms[0].WithText, arms[1].WithText)
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
		want string
	}{
		{"unknown study", func(c *Config) { c.Study = "mask" }, `unknown study "mask"`},
		{"repeated ratio", func(c *Config) { c.TextMaskRatios = []float64{0.5, 0.5} }, "0.5 is given twice"},
		{"empty ratios", func(c *Config) { c.TextMaskRatios = []float64{} }, "--text-mask-ratios is empty"},
		{"ratio hides all", func(c *Config) { c.TextMaskRatios = []float64{0.99} }, "hides all 16 text positions"},
		{"ratios of another study", func(c *Config) { c.Study = StudyM3AEVsMAE; c.TextMaskRatios = []float64{0.5} }, "--text-mask-ratios sets the arms"},
		{"fraction above 1", func(c *Config) { c.Study = StudyPairedVsUnpaired; c.PairedFractions = []float64{1.5} }, "1.5 is outside 0 to 1"},
		{"no seeds", func(c *Config) { c.Seeds = nil }, "--seeds 0"},
		{"repeated seed", func(c *Config) { c.Seeds = []uint64{3, 3} }, "seed 3 is given twice"},
		{"csv captions", func(c *Config) { c.Captions = "pairs.csv" }, "want a JSONL captions file"},
		{"missing captions", func(c *Config) { c.Captions = "missing.jsonl" }, "missing.jsonl: file not found"},
		{"extra sources", func(c *Config) { c.Train.TextLines = []string{"a.txt"} }, "from --captions alone"},
		{"pooling", func(c *Config) { c.Probe.Pooling = "max" }, `--pooling "max"`},
		{"steps", func(c *Config) { c.Train.Steps = 0 }, "--steps 0"},
		{"budget names no arm", func(c *Config) { c.Train.Steps = 0 }, "error: --steps 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := microConfig(StudyTextMaskRatio, t.TempDir(), 1)
			tt.cfg(&cfg)
			_, err := Run(context.Background(), cfg, Hooks{})
			if err != nil && strings.HasPrefix(tt.want, "error: ") {
				// A want starting with "error: " must match the start.
				err = fmt.Errorf("error: %w", err)
				if !strings.HasPrefix(err.Error(), tt.want) {
					t.Fatalf("Run() error = %v, want it to start with %q", err, tt.want)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run() error = %v, want it to contain %q", err, tt.want)
			}
			if _, statErr := os.Stat(filepath.Join(cfg.Dir, studyFileName)); statErr == nil {
				t.Errorf("Run() wrote %s before rejecting the settings", studyFileName)
			}
		})
	}
}

func TestPrepareArmData(t *testing.T) {
	dataDir := t.TempDir()
	half := Arm{Name: "paired-50", PairedFraction: 0.5, WithText: true}
	sources, err := prepareArmData(emojiTrain, dataDir, half)
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := evaluate.ReadCaptions(sources.paired, "")
	if err != nil {
		t.Fatal(err)
	}
	images, err := os.ReadDir(sources.images)
	if err != nil {
		t.Fatal(err)
	}
	texts, err := os.ReadFile(sources.texts)
	if err != nil {
		t.Fatal(err)
	}
	textLines := strings.Split(strings.TrimSuffix(string(texts), "\n"), "\n")
	if len(pairs) != 24 || len(images) != 24 || len(textLines) != 24 {
		t.Fatalf("half of 48 pairs: %d pairs, %d images, %d captions, want 24 of each", len(pairs), len(images), len(textLines))
	}

	// Every caption of the fixture lands on exactly one side.
	all, err := readPairs(emojiTrain)
	if err != nil {
		t.Fatal(err)
	}
	var captions []string
	for _, p := range pairs {
		captions = append(captions, p.Caption)
	}
	captions = append(captions, textLines...)
	var want []string
	for _, p := range all {
		want = append(want, p.Caption)
	}
	slices.Sort(captions)
	slices.Sort(want)
	if !slices.Equal(captions, want) {
		t.Errorf("paired and text-only captions = %q, want the fixture's %q", captions, want)
	}

	// A second call reuses the folder.
	info, err := os.Stat(sources.paired)
	if err != nil {
		t.Fatal(err)
	}
	again, err := prepareArmData(emojiTrain, dataDir, half)
	if err != nil {
		t.Fatal(err)
	}
	infoAgain, err := os.Stat(again.paired)
	if err != nil {
		t.Fatal(err)
	}
	if again != sources || !infoAgain.ModTime().Equal(info.ModTime()) {
		t.Errorf("second prepareArmData = %+v (modified %v), want the first %+v (modified %v)", again, infoAgain.ModTime(), sources, info.ModTime())
	}

	mae, err := prepareArmData(emojiTrain, dataDir, Arm{Name: "mae", WithText: false})
	if err != nil {
		t.Fatal(err)
	}
	maeImages, err := os.ReadDir(mae.images)
	if err != nil {
		t.Fatal(err)
	}
	if mae.paired != "" || mae.texts != "" || len(maeImages) != 48 {
		t.Errorf("mae data = %+v with %d images, want only an image folder of 48", mae, len(maeImages))
	}

	whole, err := prepareArmData(emojiTrain, dataDir, Arm{Name: "m3ae", PairedFraction: 1, WithText: true})
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(emojiTrain)
	if whole != (armData{paired: abs}) {
		t.Errorf("all-paired data = %+v, want the captions file %s itself", whole, abs)
	}
}

// TestRunResumesInterruptedRun stops a study during its first run's
// training, reruns it, and compares the exported model with the one of an
// uninterrupted study: exact resume makes them the same bytes.
func TestRunResumesInterruptedRun(t *testing.T) {
	const steps, stopAt = 4, 2
	cfg := microConfig(StudyM3AEVsMAE, t.TempDir(), steps)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hooks := Hooks{Progress: func(p Progress) {
		if p.Phase == PhaseTraining && p.Done == stopAt {
			cancel()
		}
	}}
	if _, err := Run(ctx, cfg, hooks); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Run() error = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, runsFolderName, "m3ae-seed1", runResultName)); err == nil {
		t.Fatal("the interrupted run wrote its result")
	}

	var logs bytes.Buffer
	results, err := Run(context.Background(), cfg, Hooks{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if len(results.Runs) != 2 {
		t.Fatalf("%d runs, want 2", len(results.Runs))
	}
	if want := fmt.Sprintf("msg=\"run resumed\" run=m3ae-seed1 from_step=%d steps=%d", stopAt, steps); !strings.Contains(logs.String(), want) {
		t.Errorf("logs lack %q:\n%s", want, logs.String())
	}
	resumed := results.Runs[0]
	if resumed.ResumedFromStep != stopAt || resumed.Steps != steps {
		t.Errorf("resumed run: from step %d to %d, want %d to %d", resumed.ResumedFromStep, resumed.Steps, stopAt, steps)
	}

	fresh := microConfig(StudyM3AEVsMAE, t.TempDir(), steps)
	if _, err := Run(context.Background(), fresh, Hooks{}); err != nil {
		t.Fatal(err)
	}
	for _, run := range []string{"m3ae-seed1", "mae-seed1"} {
		got, err := os.ReadFile(filepath.Join(cfg.Dir, runsFolderName, run, modelFileName))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(fresh.Dir, runsFolderName, run, modelFileName))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the resumed study's model differs from the uninterrupted one's", run)
		}
	}
}

func TestResultsMarkdownAndPlot(t *testing.T) {
	arms := []Arm{{Name: "a", Label: "arm a"}, {Name: "b", Label: "arm b"}}
	r := &Results{
		Study: StudyTextMaskRatio, Description: StudyDescription(StudyTextMaskRatio),
		Captions: "train.jsonl", Pairs: 48, Budget: trainrun.DefaultOptions(), Seeds: []uint64{1, 2}, Arms: arms,
		Probe: ProbeSummary{Classes: 4, MajorityClass: "c", MajorityAccuracy: 0.5, MajorityBalancedAccuracy: 0.25},
		Runs: []RunResult{
			{Arm: "a", Label: "arm a", Seed: 1, ProbeAccuracy: 0.6, ProbeBalancedAccuracy: 0.4, WallSeconds: 10},
			{Arm: "a", Label: "arm a", Seed: 2, ProbeAccuracy: 0.7, ProbeBalancedAccuracy: 0.5, WallSeconds: 20},
			{Arm: "b", Label: "arm b", Seed: 1, ProbeAccuracy: 0.8, ProbeBalancedAccuracy: 0.6, WallSeconds: 30, ResumedFromStep: 50},
		},
		RandomInit: []RunResult{{Arm: randomInitArmName, Label: "untrained model", Seed: 1, ProbeAccuracy: 0.55, RandomInit: true}},
	}
	r.summarize()

	if len(r.Summary) != 2 || r.Summary[0].Runs != 2 || r.Summary[1].Runs != 1 {
		t.Fatalf("summary = %+v, want arm a with 2 runs and arm b with 1", r.Summary)
	}
	if got := r.Summary[0].Accuracy; got.Min != 0.6 || got.Max != 0.7 || got.Mean < 0.6499 || got.Mean > 0.6501 {
		t.Errorf("arm a accuracy spread = %+v, want mean 0.65 from 0.6 to 0.7", got)
	}
	if r.WallSeconds != 60 {
		t.Errorf("WallSeconds = %v, want 60", r.WallSeconds)
	}

	md := r.Markdown()
	for _, want := range []string{
		"| arm | seed | probe accuracy | balanced accuracy | final image loss | final text loss |",
		"| arm a | 2 | 65.00 % (60.00 % to 70.00 %) | 45.00 % (40.00 % to 50.00 %) | 15s |",
		"| arm b | 1 | 80.00 % | 60.00 % |",
		"(resumed at step 50)",
		"| baseline: untrained model | 1 | 55.00 % |",
		`| baseline: always "c" | | 50.00 % | 25.00 % | |`,
		"unfinished: 3 of 4 runs done",
		"![Probe accuracy per arm, one mark per seed](results.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}

	encoded, err := r.PlotPNG()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(encoded))
	if err != nil {
		t.Fatal(err)
	}
	if size := img.Bounds().Size(); size.X != PlotWidth || size.Y != PlotHeight {
		t.Errorf("plot is %dx%d, want %dx%d", size.X, size.Y, PlotWidth, PlotHeight)
	}
}
