package experiment

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/export"
	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

// manifest is the content of study.json: the settings that every run of
// the study shares. The arms, the seeds and the baseline may change
// between calls; the rest must not.
type manifest struct {
	Study    string `json:"study"`
	Captions string `json:"captions"`
	// Budget is the shared training options with Seed and Workers zeroed.
	Budget trainrun.Options `json:"budget"`
	Probe  ProbeConfig      `json:"probe"`
}

// checkManifest writes study.json in a new study folder, and in a folder
// that contains one rejects settings that differ from it.
func (s *study) checkManifest() error {
	want := manifest{Study: s.cfg.Study, Captions: s.absCaptions, Budget: s.cfg.Train, Probe: s.cfg.Probe}
	want.Budget.Seed, want.Budget.Workers = 0, 0
	for _, p := range []*string{&want.Probe.Train, &want.Probe.Test} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}

	path := filepath.Join(s.cfg.Dir, studyFileName)
	content, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
			return fmt.Errorf("--out %s: %w", s.cfg.Dir, err)
		}
		return writeJSONFile(path, want)
	}
	if err != nil {
		return fmt.Errorf("--out %s: %w", s.cfg.Dir, err)
	}
	var saved manifest
	if err := json.Unmarshal(content, &saved); err != nil {
		return fmt.Errorf("%s: %w: delete the study folder or choose another --out", path, err)
	}
	var diffs []string
	if saved.Study != want.Study {
		diffs = append(diffs, fmt.Sprintf("study %s, now %s", saved.Study, want.Study))
	}
	if saved.Captions != want.Captions {
		diffs = append(diffs, fmt.Sprintf("--captions %s, now %s", saved.Captions, want.Captions))
	}
	// The budget's JSON names are the flags of the train and experiment
	// commands.
	for _, d := range differingFields(saved.Budget, want.Budget) {
		diffs = append(diffs, "--"+d)
	}
	for _, d := range differingFields(saved.Probe, want.Probe) {
		diffs = append(diffs, "probe "+d)
	}
	if len(diffs) > 0 {
		return fmt.Errorf("study folder %s was started with other settings (%s): rerun with the settings it was started with, or choose another --out",
			s.cfg.Dir, joinDiffs(diffs))
	}
	return nil
}

// differingFields compares the JSON encodings of saved and requested field
// by field and returns "NAME SAVED, now REQUESTED" for each field that
// differs, except the fields named in ignore.
func differingFields(saved, requested any, ignore ...string) []string {
	var diffs []string
	for _, change := range trainrun.DiffJSONFields(saved, requested) {
		if slices.Contains(ignore, change.Flag) {
			continue
		}
		diffs = append(diffs, fmt.Sprintf("%s %s, now %s", change.Flag, change.Saved, change.Requested))
	}
	return diffs
}

func joinDiffs(diffs []string) string {
	return strings.Join(diffs, "; ")
}

// readRunResult reads dir/result.json. ok is false when the run has not
// finished.
func readRunResult(dir string) (result RunResult, ok bool, err error) {
	content, err := os.ReadFile(filepath.Join(dir, runResultName))
	if errors.Is(err, fs.ErrNotExist) {
		return RunResult{}, false, nil
	}
	if err != nil {
		return RunResult{}, false, err
	}
	if err := json.Unmarshal(content, &result); err != nil {
		return RunResult{}, false, fmt.Errorf("%s: %w: delete it to probe the run again", filepath.Join(dir, runResultName), err)
	}
	return result, true, nil
}

// exportModel reads the newest checkpoint of the run in dir as a float32
// model file, writes it to dir/model.safetensors and returns it with its
// step.
func exportModel(dir string) (*core.ModelFile, int64, error) {
	path, err := trainrun.FindCheckpoint(dir, -1)
	if err != nil {
		return nil, 0, err
	}
	mf, step, err := export.FromCheckpoint(path)
	if err != nil {
		return nil, 0, err
	}
	var encoded bytes.Buffer
	if err := core.WriteModelFile(&encoded, mf); err != nil {
		return nil, 0, fmt.Errorf("export %s: %w", path, err)
	}
	if err := writeFileAtomic(filepath.Join(dir, modelFileName), encoded.Bytes()); err != nil {
		return nil, 0, err
	}
	return mf, step, nil
}

// metricsFileName is trainrun's metrics file in a run folder.
const metricsFileName = "metrics.jsonl"

// readFinalMetrics fills result's losses from dir/metrics.jsonl: the last
// train record's image and text loss, the last evaluation's figures, and
// the sum of the step times of every train record.
func readFinalMetrics(dir string, result *RunResult) error {
	content, err := os.ReadFile(filepath.Join(dir, metricsFileName))
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	result.ImageLoss, result.TextLoss = trainrun.Float(nan()), trainrun.Float(nan())
	result.EvalImageMSE, result.EvalTextLoss, result.EvalTokenAccuracy = trainrun.Float(nan()), trainrun.Float(nan()), trainrun.Float(nan())
	scanner := bufio.NewScanner(bytes.NewReader(content))
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		var kind struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(scanner.Bytes(), &kind) != nil {
			continue // a line cut short by a crash
		}
		switch kind.Kind {
		case trainrun.KindTrain:
			var rec trainrun.TrainRecord
			if err := json.Unmarshal(scanner.Bytes(), &rec); err != nil {
				return fmt.Errorf("metrics: %w", err)
			}
			result.ImageLoss, result.TextLoss = rec.ImageLoss, rec.TextLoss
			result.TrainSeconds += rec.MsPerStep * float64(rec.Steps) / 1000
		case trainrun.KindEval:
			var rec trainrun.EvalRecord
			if err := json.Unmarshal(scanner.Bytes(), &rec); err != nil {
				return fmt.Errorf("metrics: %w", err)
			}
			result.EvalImageMSE, result.EvalTextLoss, result.EvalTokenAccuracy = rec.ImageMSE, rec.TextLoss, rec.TokenAccuracy
		}
	}
	return scanner.Err()
}

func nan() float64 { return math.NaN() }

// round4 rounds x to 4 significant digits for log lines.
func round4(x float64) float64 {
	rounded, err := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 4, 64), 64)
	if err != nil {
		return x
	}
	return rounded
}
