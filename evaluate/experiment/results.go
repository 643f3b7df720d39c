package experiment

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

// Files of the study folder.
const (
	studyFileName     = "study.json"
	resultsJSONName   = "results.json"
	resultsMDName     = "results.md"
	resultsPNGName    = "results.png"
	runResultName     = "result.json"
	probeFileName     = "probe.json"
	modelFileName     = "model.safetensors"
	runsFolderName    = "runs"
	dataFolderName    = "data"
	randomInitArmName = "random-init"
)

// RunResult is one run: an arm trained from one seed, exported and probed,
// or with RandomInit the untrained model of a seed.
type RunResult struct {
	Arm   string `json:"arm"`
	Label string `json:"label"`
	Seed  uint64 `json:"seed"`
	// RandomInit marks the baseline: the fresh weights every run of the
	// seed starts from, probed without training.
	RandomInit bool `json:"random_init"`
	// Dir is the run folder, relative to the study folder.
	Dir string `json:"run_dir"`
	// Steps is the number of training steps, 0 for the baseline.
	Steps int64 `json:"steps"`

	// ImageLoss and TextLoss are the train losses of the last logged
	// interval, the means over its steps. TextLoss is null for an arm
	// without text.
	ImageLoss trainrun.Float `json:"final_image_loss"`
	TextLoss  trainrun.Float `json:"final_text_loss"`
	// EvalImageMSE, EvalTextLoss and EvalTokenAccuracy are the held-out
	// figures at the last step (trainrun.EvalMetrics); null without a
	// held-out split.
	EvalImageMSE      trainrun.Float `json:"heldout_image_mse"`
	EvalTextLoss      trainrun.Float `json:"heldout_text_loss"`
	EvalTokenAccuracy trainrun.Float `json:"heldout_token_accuracy"`

	// ProbeAccuracy and ProbeBalancedAccuracy are the linear probe's
	// scores on the test split; run_dir/probe.json contains the whole
	// report.
	ProbeAccuracy         float64 `json:"probe_accuracy"`
	ProbeBalancedAccuracy float64 `json:"probe_balanced_accuracy"`
	ProbeTrainAccuracy    float64 `json:"probe_train_accuracy"`
	ProbeConverged        bool    `json:"probe_converged"`

	// TrainSeconds sums the step times of metrics.jsonl, every process
	// that trained the run included. ProbeSeconds is the embedding and
	// the fit. WallSeconds is the wall time of the run in the process that
	// finished it, from opening the data to the probe's end.
	TrainSeconds float64 `json:"train_seconds"`
	ProbeSeconds float64 `json:"probe_seconds"`
	WallSeconds  float64 `json:"wall_seconds"`
	// ResumedFromStep is the step the finishing process started from; 0
	// for a run trained in one go.
	ResumedFromStep int64     `json:"resumed_from_step"`
	Finished        time.Time `json:"finished"`
}

// Spread summarizes one figure over the seeds of an arm. Std is the sample
// standard deviation, 0 for a single seed.
type Spread struct {
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

// ArmSummary is an arm's probe scores over its finished seeds.
type ArmSummary struct {
	Arm              string  `json:"arm"`
	Label            string  `json:"label"`
	Runs             int     `json:"runs"`
	Accuracy         Spread  `json:"probe_accuracy"`
	BalancedAccuracy Spread  `json:"probe_balanced_accuracy"`
	MeanWallSeconds  float64 `json:"mean_wall_seconds"`
}

// ProbeSummary describes the labelled data of the probe.
type ProbeSummary struct {
	ProbeConfig
	Classes       int `json:"classes"`
	TrainExamples int `json:"train_examples"`
	TestExamples  int `json:"test_examples"`
	// MajorityClass is the most frequent training class, and
	// MajorityAccuracy and MajorityBalancedAccuracy the test scores of
	// always predicting it.
	MajorityClass            string  `json:"majority_class"`
	MajorityAccuracy         float64 `json:"majority_accuracy"`
	MajorityBalancedAccuracy float64 `json:"majority_balanced_accuracy"`
}

// Versions identifies the software that produced the results.
type Versions struct {
	// Module is the m3ae-edge module version, "devel" for a build from a
	// checkout, with Revision and Modified from the version control
	// information of the build when it has any.
	Module   string `json:"m3ae_edge"`
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	// Experiments is the GOEXPERIMENT setting of the build.
	Experiments string `json:"goexperiment,omitempty"`
	GoMLX       string `json:"gomlx"`
	Compute     string `json:"gomlx_compute"`
	// Backend is the GOMLX_BACKEND environment variable, "" for GoMLX's
	// default.
	Backend  string `json:"gomlx_backend"`
	Platform string `json:"platform"`
	CPUs     int    `json:"cpus"`
}

// Results is the content of results.json.
type Results struct {
	Study       string `json:"study"`
	Description string `json:"description"`
	// Command is the command line that ran the study, as the caller
	// reported it.
	Command string `json:"command,omitempty"`
	// Complete is false while runs remain.
	Complete bool `json:"complete"`
	// Captions is the training data every arm derives its sources from,
	// with Pairs examples.
	Captions string `json:"captions"`
	Pairs    int    `json:"pairs"`
	// Budget is the training options every arm shares. The arm overrides
	// its variable and the data sources, and each run sets its seed.
	Budget   trainrun.Options `json:"budget"`
	Seeds    []uint64         `json:"seeds"`
	Arms     []Arm            `json:"arms"`
	Probe    ProbeSummary     `json:"probe"`
	Versions Versions         `json:"versions"`
	// Runs lists one row per arm and seed that has finished, in arm
	// order, then seed order.
	Runs []RunResult `json:"runs"`
	// RandomInit lists the baseline of each seed, when requested.
	RandomInit []RunResult  `json:"random_init"`
	Summary    []ArmSummary `json:"summary"`
	// WallSeconds sums the wall times of the finished runs.
	WallSeconds float64   `json:"wall_seconds"`
	Updated     time.Time `json:"updated"`
}

// summarize computes the per-arm summaries from r.Runs.
func (r *Results) summarize() {
	r.Summary = nil
	r.WallSeconds = 0
	for _, run := range append(append([]RunResult(nil), r.Runs...), r.RandomInit...) {
		r.WallSeconds += run.WallSeconds
	}
	for _, arm := range r.Arms {
		var accuracy, balanced []float64
		wall := 0.0
		for _, run := range r.Runs {
			if run.Arm == arm.Name {
				accuracy = append(accuracy, run.ProbeAccuracy)
				balanced = append(balanced, run.ProbeBalancedAccuracy)
				wall += run.WallSeconds
			}
		}
		if len(accuracy) == 0 {
			continue
		}
		r.Summary = append(r.Summary, ArmSummary{
			Arm: arm.Name, Label: arm.Label, Runs: len(accuracy),
			Accuracy: spreadOf(accuracy), BalancedAccuracy: spreadOf(balanced),
			MeanWallSeconds: wall / float64(len(accuracy)),
		})
	}
}

// spreadOf returns the mean, sample standard deviation, minimum and maximum
// of values, which must not be empty.
func spreadOf(values []float64) Spread {
	s := Spread{Min: math.Inf(1), Max: math.Inf(-1)}
	for _, v := range values {
		s.Mean += v
		s.Min, s.Max = min(s.Min, v), max(s.Max, v)
	}
	s.Mean /= float64(len(values))
	if len(values) > 1 {
		for _, v := range values {
			s.Std += (v - s.Mean) * (v - s.Mean)
		}
		s.Std = math.Sqrt(s.Std / float64(len(values)-1))
	}
	return s
}

// CurrentVersions returns the versions of this build and process.
func CurrentVersions() Versions {
	v := Versions{
		Module:   "devel",
		Go:       runtime.Version(),
		Backend:  os.Getenv("GOMLX_BACKEND"),
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
		CPUs:     runtime.NumCPU(),
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if info.Main.Version != "" && info.Main.Version != "(devel)" {
		v.Module = info.Main.Version
	}
	for _, dep := range info.Deps {
		switch dep.Path {
		case "github.com/gomlx/gomlx":
			v.GoMLX = dep.Version
		case "github.com/gomlx/compute":
			v.Compute = dep.Version
		}
	}
	for _, setting := range info.Settings {
		switch setting.Key {
		case "vcs.revision":
			v.Revision = setting.Value
		case "vcs.modified":
			v.Modified = setting.Value == "true"
		case "GOEXPERIMENT":
			v.Experiments = setting.Value
		}
	}
	return v
}

// writeJSONFile writes v as indented JSON to path, atomically.
func writeJSONFile(path string, v any) error {
	encoded, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	return writeFileAtomic(path, append(encoded, '\n'))
}

// writeFileAtomic writes content to a temporary file beside path and
// renames it over path, so readers see the old file or the new one whole.
func writeFileAtomic(path string, content []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }() // fails harmlessly once renamed
	_, err = f.Write(content)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if syncErr := f.Sync(); err == nil {
		err = syncErr
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
