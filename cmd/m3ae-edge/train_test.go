package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/native"
	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

// The emoji-mini fixture (48 train and 16 test pairs) is written by the
// command in testdata/emoji-mini/README.md.
const (
	emojiTrain = "../../testdata/emoji-mini/train.jsonl"
	emojiTest  = "../../testdata/emoji-mini/test.jsonl"
)

// microTrainArgs returns the arguments of a short micro-preset run into
// dir on emoji-mini, followed by extra.
func microTrainArgs(dir string, extra ...string) []string {
	args := []string{
		"train", "--out", dir, "--preset", "micro", "--captions", emojiTrain,
		"--batch", "8", "--lr", "3e-3", "--workers", "2", "--log-level", "warn",
	}
	return append(args, extra...)
}

// metricsRecord is one line of metrics.jsonl, either kind.
type metricsRecord struct {
	Kind          string   `json:"kind"`
	Step          int64    `json:"step"`
	ImageLoss     *float64 `json:"image_loss"`
	TextLoss      *float64 `json:"text_loss"`
	ImageMSE      *float64 `json:"image_mse"`
	TokenAccuracy *float64 `json:"token_accuracy"`
}

// readMetrics returns the complete records of dir/metrics.jsonl, skipping a
// line still being written.
func readMetrics(t *testing.T, dir string) []metricsRecord {
	t.Helper()
	content, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var records []metricsRecord
	scanner := bufio.NewScanner(bytes.NewReader(content))
	for scanner.Scan() {
		var r metricsRecord
		if json.Unmarshal(scanner.Bytes(), &r) == nil {
			records = append(records, r)
		}
	}
	return records
}

func TestTrainHelp(t *testing.T) {
	stdout, _, err := execute(t, "train", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"--preset", `(default "tiny")`, "--captions", "--shards", "--text-lines", "--image-folder",
		"--eval-captions", "--eval-fraction", "--lr", "1.5e-4 x batch/256", "1.875e-05 at the default batch of 32",
		"--warmup-steps", "--grad-clip", "--image-mask-ratio", "--checkpoint-every", "--keep", "--resume",
		"(default 1000)", "SIGINT",
		"hidden from the encoder, 0 up to but not including 1",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("train --help lacks %q", want)
		}
	}
	stdout, _, err = execute(t, "export", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--checkpoint", "--step", "-1 means the newest", "--out"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("export --help lacks %q", want)
		}
	}
}

// One 30-step micro run on emoji-mini: the losses must fall, the run
// folder must hold the metrics, plots and kept checkpoints, resuming must
// reject a changed batch, and export must write a file that core loads.
// Averaged over steps 1-5 and 26-30, the image loss fell from 1.40 to 1.02
// and the text loss from 8.99 to 8.41 with GOEXPERIMENT=simd and the
// go:ops_sequential backend.
func TestTrainAndExport(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	stdout, stderr, err := execute(t, microTrainArgs(run,
		"--eval-captions", emojiTest, "--steps", "30", "--log-every", "5", "--eval-every", "15",
		"--checkpoint-every", "10", "--keep", "2")...)
	if err != nil {
		t.Fatalf("train: %v\nstderr:\n%s", err, stderr)
	}
	for _, want := range []string{"2,026,602 parameters", "8 paired (of 48)", "peak 0.003, warmup 1 step,", "held-out: masked-patch MSE", "finished step 30 of 30"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("train output lacks %q:\n%s", want, stdout)
		}
	}

	records := readMetrics(t, run)
	var train, eval []metricsRecord
	for _, r := range records {
		switch r.Kind {
		case trainrun.KindTrain:
			train = append(train, r)
		case trainrun.KindEval:
			eval = append(eval, r)
		}
	}
	if len(train) != 6 || len(eval) != 2 {
		t.Fatalf("metrics.jsonl has %d train and %d eval records, want 6 and 2", len(train), len(eval))
	}
	first, last := train[0], train[len(train)-1]
	t.Logf("image loss %.4f -> %.4f, text loss %.4f -> %.4f", *first.ImageLoss, *last.ImageLoss, *first.TextLoss, *last.TextLoss)
	if *last.ImageLoss > 0.85**first.ImageLoss {
		t.Errorf("image loss over steps 26-30 = %.4f, want below 0.85 x %.4f (steps 1-5)", *last.ImageLoss, *first.ImageLoss)
	}
	if *last.TextLoss > 0.97**first.TextLoss {
		t.Errorf("text loss over steps 26-30 = %.4f, want below 0.97 x %.4f (steps 1-5)", *last.TextLoss, *first.TextLoss)
	}
	if e := eval[1]; e.Step != 30 || e.ImageMSE == nil || e.TokenAccuracy == nil || *e.TokenAccuracy < 0 || *e.TokenAccuracy > 1 {
		t.Errorf("last eval record = %+v, want step 30 with an image MSE and an accuracy in [0, 1]", e)
	}

	for _, name := range []string{"loss.png", "recon-000000015.png", "recon-000000030.png"} {
		f, err := os.Open(filepath.Join(run, name))
		if err != nil {
			t.Errorf("run folder lacks %s: %v", name, err)
			continue
		}
		if _, err := png.Decode(f); err != nil {
			t.Errorf("%s does not decode as PNG: %v", name, err)
		}
		f.Close()
	}
	paths, err := native.Checkpoints(trainrun.CheckpointsDir(run))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || filepath.Base(paths[0]) != "step-000000020" || filepath.Base(paths[1]) != "step-000000030" {
		t.Errorf("checkpoints = %v, want step-000000020 and step-000000030 (--keep 2)", paths)
	}

	// Resuming a finished run with its own options trains nothing more.
	if _, stderr, err := execute(t, "train", "--out", run, "--resume"); err != nil {
		t.Errorf("train --resume of a finished run: %v\nstderr:\n%s", err, stderr)
	}
	_, _, err = execute(t, "train", "--out", run, "--resume", "--batch", "4")
	if err == nil || !strings.Contains(err.Error(), "--batch is 4 but the run was started with 8") {
		t.Errorf("train --resume --batch 4 = %v, want an error naming the batch change", err)
	}
	_, _, err = execute(t, microTrainArgs(run)...)
	if err == nil || !strings.Contains(err.Error(), "pass --resume") {
		t.Errorf("a new run into a folder with checkpoints = %v, want an error suggesting --resume", err)
	}

	model := filepath.Join(t.TempDir(), "model.safetensors")
	stdout, _, err = execute(t, "export", "--checkpoint", run, "--out", model)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if want := "float32, step 30, 2,026,602 parameters"; !strings.Contains(stdout, want) {
		t.Errorf("export output = %q, want it to contain %q", stdout, want)
	}
	content, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	pipeline, err := core.Load(content)
	if err != nil {
		t.Fatalf("core.Load(exported file): %v", err)
	}
	if cfg, want := pipeline.Config(), mustPreset(t, "micro"); cfg != want {
		t.Errorf("exported config = %+v, want the micro preset %+v", cfg, want)
	}

	_, _, err = execute(t, "export", "--checkpoint", run, "--step", "10", "--out", model)
	if err == nil || !strings.Contains(err.Error(), "contains steps 20, 30") {
		t.Errorf("export --step 10 = %v, want an error listing steps 20, 30", err)
	}
	if _, _, err := execute(t, "export", "--checkpoint", run, "--step", "20", "--out", model); err != nil {
		t.Errorf("export --step 20: %v", err)
	}
}

func mustPreset(t *testing.T, name string) core.Config {
	t.Helper()
	cfg, err := core.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestTrainRejectsBadFlags(t *testing.T) {
	tests := []struct {
		args        []string
		wantInError string
	}{
		{[]string{"train", "--captions", emojiTrain}, `required flag(s) "out" not set`},
		{[]string{"train", "--out", "RUN"}, "no training data"},
		{[]string{"train", "--out", "RUN", "--captions", emojiTrain, "--preset", "huge"}, `unknown preset "huge"`},
		{[]string{"train", "--out", "RUN", "--captions", "missing.jsonl", "--preset", "micro"}, "missing.jsonl"},
		{[]string{"train", "--out", "RUN", "--resume"}, "no checkpoint"},
		{[]string{"train", "--out", "RUN", "--captions", emojiTrain, "--image-mask-ratio", "-0.1"}, "--image-mask-ratio -0.1: want 0 up to"},
		{[]string{"train", "--out", "RUN", "--captions", emojiTrain, "--beta1", "1.5"}, "--beta1 1.5"},
		{[]string{"train", "--out", "RUN", "--captions", emojiTrain, "--weight-decay", "-1"}, "--weight-decay -1"},
		{[]string{"train", "--out", "RUN", "--captions", emojiTrain, "--grad-clip", "-1"}, "--grad-clip -1"},
		{[]string{"train", "--out", "RUN", "--captions", emojiTrain, "--image-loss-weight", "-1"}, "--image-loss-weight -1"},
		{[]string{"train", "--out", "RUN", "--captions", emojiTrain, "--eval-captions", "RUN-nonexistent"}, "nonexistent: file not found"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		args := make([]string, len(tt.args))
		for i, a := range tt.args {
			args[i] = strings.ReplaceAll(a, "RUN", filepath.Join(dir, "run"))
		}
		_, _, err := execute(t, args...)
		if err == nil || !strings.Contains(err.Error(), tt.wantInError) {
			t.Errorf("m3ae-edge %s = %v, want an error containing %q", strings.Join(tt.args, " "), err, tt.wantInError)
		}
	}
}

// A learning rate of 1e30 makes the second step's loss NaN; the run must
// stop with an error that names the checkpoint saved after step 1.
func TestTrainStopsOnNonFiniteLoss(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	_, _, err := execute(t, microTrainArgs(run, "--steps", "10", "--lr", "1e30", "--warmup-steps", "0", "--checkpoint-every", "1")...)
	if !errors.Is(err, native.ErrNonFiniteLoss) {
		t.Fatalf("train with --lr 1e30 = %v, want ErrNonFiniteLoss", err)
	}
	if want := "step-000000001: resume it with --resume and a lower --lr"; !strings.Contains(err.Error(), want) {
		t.Errorf("train with --lr 1e30 error = %q, want it to contain %q", err, want)
	}
	if got := newestCheckpointStep(run); got != 1 {
		t.Errorf("newest checkpoint after the non-finite loss is step %d, want 1", got)
	}
}
