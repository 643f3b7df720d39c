package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/evaluate/experiment"
)

// microExperimentArgs returns the arguments of a study of two micro-preset
// steps per run on emoji-mini into dir, followed by extra.
func microExperimentArgs(study, dir string, extra ...string) []string {
	args := []string{
		"experiment", study, "--out", dir,
		"--captions", emojiTrain, "--eval-captions", emojiTest, "--eval-examples", "8",
		"--probe-train", emojiTrain, "--probe-test", emojiTest,
		"--steps", "2", "--batch", "8", "--lr", "3e-3", "--workers", "2",
	}
	return append(args, extra...)
}

// readExperimentResults decodes dir/results.json.
func readExperimentResults(t *testing.T, dir string) experiment.Results {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var results experiment.Results
	if err := json.Unmarshal(content, &results); err != nil {
		t.Fatal(err)
	}
	return results
}

func TestExperimentTextMaskRatio(t *testing.T) {
	dir := t.TempDir()
	args := microExperimentArgs("text-mask-ratio", dir, "--text-mask-ratios", "0.15,0.75", "--seeds", "2")
	stdout, stderr, err := execute(t, args...)
	if err != nil {
		t.Fatalf("experiment: %v\n%s", err, stderr)
	}

	results := readExperimentResults(t, dir)
	if !results.Complete {
		t.Error("results.json: complete is false after the study finished")
	}
	type key struct {
		arm  string
		seed uint64
	}
	seen := map[key]bool{}
	for _, run := range results.Runs {
		seen[key{run.Arm, run.Seed}] = true
		if run.Steps != 2 {
			t.Errorf("run %s seed %d trained %d steps, want 2", run.Arm, run.Seed, run.Steps)
		}
		if run.ProbeAccuracy <= 0 || run.ProbeAccuracy > 1 || run.WallSeconds <= 0 {
			t.Errorf("run %s seed %d: probe accuracy %v, wall %v s: want a fraction above 0 and a positive time",
				run.Arm, run.Seed, run.ProbeAccuracy, run.WallSeconds)
		}
	}
	for _, want := range []key{{"text-mask-0.15", 1}, {"text-mask-0.15", 2}, {"text-mask-0.75", 1}, {"text-mask-0.75", 2}} {
		if !seen[want] {
			t.Errorf("results.json has no row of arm %s, seed %d", want.arm, want.seed)
		}
	}
	if len(results.Runs) != 4 {
		t.Errorf("results.json has %d rows, want 4 (2 arms x 2 seeds)", len(results.Runs))
	}
	if len(results.RandomInit) != 2 {
		t.Errorf("results.json has %d untrained baselines, want 1 per seed", len(results.RandomInit))
	}
	if results.Budget.Steps != 2 || results.Budget.BatchSize != 8 || results.Budget.Preset != "micro" {
		t.Errorf("budget = %d steps of batch %d, preset %s, want 2 of 8, micro", results.Budget.Steps, results.Budget.BatchSize, results.Budget.Preset)
	}
	if results.Versions.Go == "" || results.Versions.GoMLX == "" {
		t.Errorf("versions = %+v, want the Go and GoMLX versions", results.Versions)
	}

	encoded, err := os.ReadFile(filepath.Join(dir, "results.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(encoded))
	if err != nil {
		t.Fatalf("results.png: %v", err)
	}
	if size := img.Bounds().Size(); size.X != experiment.PlotWidth || size.Y != experiment.PlotHeight {
		t.Errorf("results.png is %dx%d, want %dx%d", size.X, size.Y, experiment.PlotWidth, experiment.PlotHeight)
	}

	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| arm | seed | probe accuracy | balanced accuracy | final image loss | final text loss | held-out image MSE | held-out token accuracy | wall time |",
		"| text mask 0.15 | 1 |", "| text mask 0.15 | 2 |", "| text mask 0.75 | 1 |", "| text mask 0.75 | 2 |",
		"--text-mask-ratios 0.15,0.75",
		"--seeds 2",
		"preset micro; 2 steps of batch 8",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	for _, want := range []string{"text mask 0.15", "text mask 0.75", "untrained model, seed 2", "results.png"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if got := strings.Count(stderr, `msg="run finished"`); got != 6 {
		t.Errorf("stderr has %d run lines, want one per run (4 and 2 baselines):\n%s", got, stderr)
	}

	// A rerun trains nothing and reports the same rows.
	_, stderr, err = execute(t, args...)
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, stderr)
	}
	if got := strings.Count(stderr, `msg="run skipped, finished earlier"`); got != 4 {
		t.Errorf("rerun skipped %d runs, want 4:\n%s", got, stderr)
	}
	if strings.Contains(stderr, `msg="run finished"`) {
		t.Errorf("rerun trained or probed again:\n%s", stderr)
	}
	again := readExperimentResults(t, dir)
	for i, run := range again.Runs {
		if !run.Finished.Equal(results.Runs[i].Finished) {
			t.Errorf("rerun row %d finished at %v, want the first call's %v", i, run.Finished, results.Runs[i].Finished)
		}
	}
}

func TestExperimentOtherStudies(t *testing.T) {
	tests := []struct {
		study string
		extra []string
		want  []string
	}{
		{"paired-vs-unpaired", []string{"--paired-fractions", "1,0.5,0"}, []string{"paired-100", "paired-50", "paired-0"}},
		{"m3ae-vs-mae", nil, []string{"m3ae", "mae"}},
	}
	for _, tt := range tests {
		t.Run(tt.study, func(t *testing.T) {
			dir := t.TempDir()
			args := microExperimentArgs(tt.study, dir, append([]string{"--seeds", "1", "--random-init-baseline=false"}, tt.extra...)...)
			if _, stderr, err := execute(t, args...); err != nil {
				t.Fatalf("experiment: %v\n%s", err, stderr)
			}
			results := readExperimentResults(t, dir)
			var arms []string
			for _, run := range results.Runs {
				arms = append(arms, run.Arm)
			}
			if strings.Join(arms, " ") != strings.Join(tt.want, " ") {
				t.Errorf("rows of arms %q, want %q", arms, tt.want)
			}
			if !strings.Contains(results.Command, "--random-init-baseline=false") {
				t.Errorf("recorded command %q lacks --random-init-baseline=false", results.Command)
			}
			if len(results.RandomInit) != 0 {
				t.Errorf("%d untrained baselines with --random-init-baseline=false, want 0", len(results.RandomInit))
			}
		})
	}
}

func TestExperimentRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no study", []string{"experiment", "--out", "x"}, "missing study name"},
		{"unknown study", []string{"experiment", "mask", "--out", "x"}, `unknown study "mask": use one of text-mask-ratio`},
		{"two studies", []string{"experiment", "m3ae-vs-mae", "text-mask-ratio", "--out", "x"}, "give one study name"},
		{"no out", []string{"experiment", "m3ae-vs-mae"}, `"out" not set`},
		{"seeds", microExperimentArgs("m3ae-vs-mae", "x", "--seeds", "0"), "--seeds 0: want 1 to 100"},
		{"variable as flag", microExperimentArgs("text-mask-ratio", "x", "--text-mask-ratio", "0.5"), "set its arms with --text-mask-ratios"},
		{"ratios elsewhere", microExperimentArgs("m3ae-vs-mae", "x", "--text-mask-ratios", "0.5"), "--text-mask-ratios sets the arms"},
		{"fraction", microExperimentArgs("paired-vs-unpaired", "x", "--paired-fractions", "1,2"), "2 is outside 0 to 1"},
		{"ratio", microExperimentArgs("text-mask-ratio", "x", "--text-mask-ratios", "0.5,1"), "--text-mask-ratios: arm text-mask-1: --text-mask-ratio 1"},
		{"pooling", microExperimentArgs("m3ae-vs-mae", "x", "--pooling", "max"), `--pooling "max": use cls or mean`},
		{"probe data", microExperimentArgs("m3ae-vs-mae", "x", "--probe-test", "missing.jsonl"), "--probe-test missing.jsonl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := execute(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("experiment error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestExperimentRejectsChangedBudget reruns a study folder with another
// step count, which would mix budgets in one table.
func TestExperimentRejectsChangedBudget(t *testing.T) {
	dir := t.TempDir()
	args := microExperimentArgs("m3ae-vs-mae", dir, "--seeds", "1", "--random-init-baseline=false")
	if _, stderr, err := execute(t, args...); err != nil {
		t.Fatalf("experiment: %v\n%s", err, stderr)
	}
	_, _, err := execute(t, append(args, "--steps", "3")...)
	if err == nil || !strings.Contains(err.Error(), "--steps 2, now 3") {
		t.Fatalf("rerun with --steps 3: error = %v, want it to name --steps 2, now 3", err)
	}
}

func TestExperimentHelp(t *testing.T) {
	stdout, _, err := execute(t, "experiment", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"text-mask-ratio", "paired-vs-unpaired", "m3ae-vs-mae", "--seeds", "--text-mask-ratios",
		"--paired-fractions", "--probe-train", `(default "micro")`, "(default 32)", "results.png", "skips the finished"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("experiment --help lacks %q", want)
		}
	}
}
