package experiment

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
	"github.com/m3ae-edge/m3ae-edge/native"
	"github.com/m3ae-edge/m3ae-edge/native/data"
	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

// Hooks connect a study to its caller. Every field is optional.
type Hooks struct {
	// Logger receives the study's lines: its start and end, and one line
	// per run as it resumes, finishes or is skipped. Nil discards them.
	Logger *slog.Logger
	// TrainLogger receives the lines of every training run
	// (trainrun.Hooks.Logger). Nil discards them.
	TrainLogger *slog.Logger
	// Progress is called after every training step and every image the
	// probe embeds.
	Progress func(Progress)
}

// Progress reports how far one phase of a run has come.
type Progress struct {
	// Run names the run's folder under runs/, such as
	// "text-mask-0.15-seed1".
	Run string
	// Phase is PhaseTraining or PhaseEmbedding.
	Phase       string
	Done, Total int64
}

// Phases of a run that report progress.
const (
	PhaseTraining  = "training"
	PhaseEmbedding = "embedding"
)

// study is a study being run.
type study struct {
	cfg   Config
	arms  []Arm
	hooks Hooks
	log   *slog.Logger
	probe *probeSet
	// absCaptions is cfg.Captions made absolute.
	absCaptions string
	// armData caches the prepared training sources per arm name.
	armData map[string]armData
	results Results
	// finished maps runName(arm, seed) to the finished run.
	finished map[string]RunResult
}

// Run runs every arm of the study in cfg once per seed, skipping the runs
// that a previous call finished in cfg.Dir and resuming one stopped during
// training from its newest checkpoint. It rewrites results.json,
// results.md and results.png after every run, and returns the results.
//
// When ctx is cancelled during training, the run saves a checkpoint and
// Run returns an error wrapping context.Canceled. Calling Run again with
// the same Config continues from there. A cfg.Dir that an earlier call started with
// other settings, apart from the arms, the seeds and the baseline, is
// rejected with the differences named.
func Run(ctx context.Context, cfg Config, hooks Hooks) (*Results, error) {
	arms, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &study{
		cfg: cfg, arms: arms, hooks: hooks, log: hooks.Logger,
		armData: map[string]armData{}, finished: map[string]RunResult{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.absCaptions, err = filepath.Abs(cfg.Captions); err != nil {
		return nil, fmt.Errorf("--captions %s: %w", cfg.Captions, err)
	}
	if cfg.Train.EvalCaptions != "" {
		if s.cfg.Train.EvalCaptions, err = filepath.Abs(cfg.Train.EvalCaptions); err != nil {
			return nil, fmt.Errorf("--eval-captions %s: %w", cfg.Train.EvalCaptions, err)
		}
	}
	pairs, err := readPairs(s.absCaptions)
	if err != nil {
		return nil, err
	}
	if s.probe, err = loadProbeSet(cfg.Probe); err != nil {
		return nil, err
	}
	if err := s.checkManifest(); err != nil {
		return nil, err
	}

	budget := cfg.Train
	budget.Seed = 0
	s.results = Results{
		Study: cfg.Study, Description: StudyDescription(cfg.Study), Command: cfg.Command,
		Captions: cfg.Captions, Pairs: len(pairs), Budget: budget, Seeds: cfg.Seeds, Arms: arms,
		Probe:    s.probe.summary(),
		Versions: CurrentVersions(),
	}
	baselines := 0
	if cfg.RandomInitBaseline {
		baselines = len(cfg.Seeds)
	}
	s.log.Info("study started", "study", cfg.Study, "arms", len(arms), "seeds", len(cfg.Seeds),
		"runs", len(arms)*len(cfg.Seeds), "baselines", baselines,
		"steps", cfg.Train.Steps, "batch", cfg.Train.BatchSize, "preset", cfg.Train.Preset, "dir", cfg.Dir)

	// Seeds outermost, so an interrupted study has compared every arm at
	// the first seeds.
	for _, seed := range cfg.Seeds {
		for _, arm := range arms {
			run, err := s.runArm(ctx, arm, seed)
			if err != nil {
				return nil, err
			}
			s.finished[runName(arm.Name, seed)] = run
			if err := s.writeResults(false); err != nil {
				return nil, err
			}
		}
		if cfg.RandomInitBaseline {
			run, err := s.runBaseline(ctx, seed)
			if err != nil {
				return nil, err
			}
			s.finished[runName(randomInitArmName, seed)] = run
		}
	}
	if err := s.writeResults(true); err != nil {
		return nil, err
	}
	s.log.Info("study finished", "study", cfg.Study, "runs", len(s.results.Runs), "baselines", len(s.results.RandomInit),
		"wall", formatSeconds(s.results.WallSeconds), "results", filepath.Join(cfg.Dir, resultsMDName))
	return &s.results, nil
}

// runName returns the folder name of an arm's run at seed.
func runName(arm string, seed uint64) string {
	return fmt.Sprintf("%s-seed%d", arm, seed)
}

// runArm trains, exports and probes one arm at one seed, or returns the
// result of an earlier call that finished it.
func (s *study) runArm(ctx context.Context, arm Arm, seed uint64) (RunResult, error) {
	name := runName(arm.Name, seed)
	dir := filepath.Join(s.cfg.Dir, runsFolderName, name)
	if done, ok, err := readRunResult(dir); err != nil || ok {
		if ok {
			s.log.Info("run skipped, finished earlier", "run", name, "probe_accuracy", round4(done.ProbeAccuracy))
		}
		return done, err
	}

	start := time.Now()
	sources, ok := s.armData[arm.Name]
	if !ok {
		var err error
		if sources, err = prepareArmData(s.absCaptions, filepath.Join(s.cfg.Dir, dataFolderName), arm); err != nil {
			return RunResult{}, err
		}
		s.armData[arm.Name] = sources
	}
	opts := s.cfg.armOptions(arm, seed, sources)
	resumedFrom, err := s.checkSavedRun(dir, opts)
	if err != nil {
		return RunResult{}, err
	}
	if resumedFrom < int64(opts.Steps) {
		if resumedFrom > 0 {
			s.log.Info("run resumed", "run", name, "from_step", resumedFrom, "steps", opts.Steps)
		}
		if err := s.train(ctx, name, dir, opts, resumedFrom > 0); err != nil {
			return RunResult{}, err
		}
	}

	mf, step, err := exportModel(dir)
	if err != nil {
		return RunResult{}, fmt.Errorf("run %s: %w", name, err)
	}
	result := RunResult{
		Arm: arm.Name, Label: arm.Label, Seed: seed, Dir: filepath.Join(runsFolderName, name),
		Steps: step, ResumedFromStep: resumedFrom,
	}
	if err := s.probeModel(ctx, name, dir, mf, &result); err != nil {
		return RunResult{}, err
	}
	if err := readFinalMetrics(dir, &result); err != nil {
		return RunResult{}, fmt.Errorf("run %s: %w", name, err)
	}
	if !arm.WithText {
		result.TextLoss = trainrun.Float(nan())
	}
	return s.finishRun(dir, start, result)
}

// checkSavedRun returns the step of the newest checkpoint in dir, 0 for
// none, and rejects a run folder whose saved options differ from opts, the
// sign of a study folder reused with other settings.
func (s *study) checkSavedRun(dir string, opts trainrun.Options) (int64, error) {
	paths, err := native.Checkpoints(trainrun.CheckpointsDir(dir))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(paths) == 0) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	saved, err := trainrun.LoadOptions(dir)
	if err != nil {
		return 0, err
	}
	if diffs := differingFields(saved, opts, "workers"); len(diffs) > 0 {
		return 0, fmt.Errorf("run folder %s was trained with other options (%s): delete it to train it again, or rerun with the settings it was started with",
			dir, joinDiffs(diffs))
	}
	step, _ := native.CheckpointStep(paths[len(paths)-1])
	return step, nil
}

// train trains the run in dir to its last step, resuming its newest
// checkpoint when resume is set.
func (s *study) train(ctx context.Context, name, dir string, opts trainrun.Options, resume bool) error {
	hooks := trainrun.Hooks{Logger: s.hooks.TrainLogger}
	if s.hooks.Progress != nil {
		hooks.Progress = func(step, total int64) {
			s.hooks.Progress(Progress{Run: name, Phase: PhaseTraining, Done: step, Total: total})
		}
	}
	run, err := trainrun.New(ctx, dir, opts, resume, hooks)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted before run %s trained, nothing saved; rerun the same command to continue: %w", name, ctx.Err())
		}
		return fmt.Errorf("run %s: %w", name, err)
	}
	result, err := run.Train(ctx)
	if err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	if result.Interrupted {
		return fmt.Errorf("interrupted in run %s at step %d, saved %s; rerun the same command to continue: %w",
			name, result.Step, result.Checkpoint, context.Canceled)
	}
	return nil
}

// runBaseline probes the fresh weights that every run of seed starts
// from, or returns the result of an earlier call.
func (s *study) runBaseline(ctx context.Context, seed uint64) (RunResult, error) {
	name := runName(randomInitArmName, seed)
	dir := filepath.Join(s.cfg.Dir, runsFolderName, name)
	if done, ok, err := readRunResult(dir); err != nil || ok {
		return done, err
	}
	start := time.Now()
	mf, err := s.initialModel(seed)
	if err != nil {
		return RunResult{}, err
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return RunResult{}, err
	}
	result := RunResult{
		Arm: randomInitArmName, Label: "untrained model", Seed: seed, RandomInit: true,
		Dir: filepath.Join(runsFolderName, name), ImageLoss: trainrun.Float(nan()), TextLoss: trainrun.Float(nan()),
		EvalImageMSE: trainrun.Float(nan()), EvalTextLoss: trainrun.Float(nan()), EvalTokenAccuracy: trainrun.Float(nan()),
	}
	if err := s.probeModel(ctx, name, dir, mf, &result); err != nil {
		return RunResult{}, err
	}
	return s.finishRun(dir, start, result)
}

// initialModel returns the weights that a run of seed on the whole
// captions file starts from, with the pixel statistics it measures.
func (s *study) initialModel(seed uint64) (*core.ModelFile, error) {
	cfg, err := core.Preset(s.cfg.Train.Preset)
	if err != nil {
		return nil, err
	}
	norm := core.CC12MNorm
	if s.cfg.Train.Norm == trainrun.NormData {
		// trainrun measures 1000 images of its first image source, drawn
		// with the run's seed.
		src, err := data.OpenCaptions(s.absCaptions, data.CaptionsOptions{SkipBad: s.cfg.Train.SkipBad})
		if err != nil {
			return nil, fmt.Errorf("--captions: %w", err)
		}
		norm, _, err = data.ComputeNorm(src, data.NormOptions{Sample: 1000, ImageSize: cfg.ImageSize, Seed: seed, SkipBad: s.cfg.Train.SkipBad})
		if err != nil {
			return nil, fmt.Errorf("measure pixel statistics: %w", err)
		}
	}
	return core.InitModelFile(cfg, bertvocab.Tokens(), norm, seed)
}

// probeModel runs the probe on mf, writes the report to dir/probe.json
// and fills the probe's fields of result.
func (s *study) probeModel(ctx context.Context, name, dir string, mf *core.ModelFile, result *RunResult) error {
	var progress func(done, total int)
	if s.hooks.Progress != nil {
		progress = func(done, total int) {
			s.hooks.Progress(Progress{Run: name, Phase: PhaseEmbedding, Done: int64(done), Total: int64(total)})
		}
	}
	report, timing, err := s.probe.run(ctx, mf, progress)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while probing run %s; rerun the same command to continue: %w", name, err)
		}
		return fmt.Errorf("run %s: probe: %w", name, err)
	}
	if err := writeJSONFile(filepath.Join(dir, probeFileName), report); err != nil {
		return err
	}
	result.ProbeAccuracy = report.Test.Accuracy
	result.ProbeBalancedAccuracy = report.Test.BalancedAccuracy
	result.ProbeTrainAccuracy = report.Train.Accuracy
	result.ProbeConverged = report.Fit.Converged
	result.ProbeSeconds = (timing.embed + timing.fit).Seconds()
	if !report.Fit.Converged {
		s.log.Warn("the probe's classifier fit did not converge: raise --max-iterations or --l2",
			"run", name, "iterations", report.Fit.Iterations, "max_gradient", report.Fit.MaxGradient)
	}
	return nil
}

// finishRun stamps result with its wall time since start, writes it to
// dir/result.json, which marks the run finished, and logs it.
func (s *study) finishRun(dir string, start time.Time, result RunResult) (RunResult, error) {
	result.WallSeconds = time.Since(start).Seconds()
	result.Finished = time.Now().UTC()
	if err := writeJSONFile(filepath.Join(dir, runResultName), result); err != nil {
		return RunResult{}, err
	}
	attrs := []any{
		"run", filepath.Base(dir),
		"probe_accuracy", round4(result.ProbeAccuracy),
		"balanced_accuracy", round4(result.ProbeBalancedAccuracy),
	}
	for _, loss := range []struct {
		key   string
		value trainrun.Float
	}{{"image_loss", result.ImageLoss}, {"text_loss", result.TextLoss}} {
		if !math.IsNaN(float64(loss.value)) {
			attrs = append(attrs, loss.key, round4(float64(loss.value)))
		}
	}
	attrs = append(attrs, "wall", formatSeconds(result.WallSeconds))
	s.log.Info("run finished", attrs...)
	return result, nil
}

// writeResults orders the finished runs and rewrites results.json,
// results.md and results.png.
func (s *study) writeResults(complete bool) error {
	r := &s.results
	r.Complete = complete
	r.Runs, r.RandomInit = nil, nil
	for _, arm := range s.arms {
		for _, seed := range s.cfg.Seeds {
			if run, ok := s.finished[runName(arm.Name, seed)]; ok {
				r.Runs = append(r.Runs, run)
			}
		}
	}
	for _, seed := range s.cfg.Seeds {
		if run, ok := s.finished[runName(randomInitArmName, seed)]; ok {
			r.RandomInit = append(r.RandomInit, run)
		}
	}
	r.summarize()
	r.Updated = time.Now().UTC()

	if err := writeJSONFile(filepath.Join(s.cfg.Dir, resultsJSONName), r); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(s.cfg.Dir, resultsMDName), []byte(r.Markdown())); err != nil {
		return err
	}
	png, err := r.PlotPNG()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.cfg.Dir, resultsPNGName), png)
}
