package trainrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gomlx/compute"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
	"github.com/m3ae-edge/m3ae-edge/native"
	"github.com/m3ae-edge/m3ae-edge/native/data"
)

// Files of a run folder besides its checkpoints.
const (
	runFileName  = "run.json"
	metricsName  = "metrics.jsonl"
	lossPlotName = "loss.png"
)

// normSample is the number of training images whose pixels are measured
// for the normalization of a new run.
const normSample = 1000

// Hooks connect a run to its caller. Every field is optional.
type Hooks struct {
	// Logger receives the run's log lines: one per logged interval and
	// per evaluation, checkpoint and warning. The trainer's own lines
	// (graph compilations) arrive at Debug level. Nil discards them.
	Logger *slog.Logger
	// Progress is called after every step with the step reached and the
	// run's total.
	Progress func(step, total int64)
}

// Run is one training run in a run folder, ready to train.
type Run struct {
	dir     string
	opts    Options
	cfg     core.Config
	logger  *slog.Logger
	hooks   Hooks
	summary Summary

	trainer    *native.Trainer
	evalModel  *native.Model // built at the first evaluation
	tokenizer  *core.Tokenizer
	mixer      *data.Mixer
	batcherCfg data.BatcherConfig
	// position is the mixer position of the next training batch.
	position data.Position
	eval     *evalSet
	metrics  *metricsFile

	lastCheckpoint string
	// savedStep is the step of lastCheckpoint, -1 before the first save.
	savedStep    int64
	lastEvalStep int64
}

// Summary describes a run as it starts: the figures derived from its
// options and data.
type Summary struct {
	Dir string
	// ResumedFrom is the checkpoint the run continues, "" for a new run,
	// and Step the step it starts from.
	ResumedFrom string
	Step        int64
	// Changes lists the options that differ from the resumed run's.
	Changes []OptionChange
	Options Options
	Config  core.Config
	// NumParams counts the model's float parameters.
	NumParams int
	Norm      core.ImageNorm
	// Sources lists the mixer's sources and their examples per batch.
	Sources []SourceShare
	// EncoderTokensPerStep and DecoderTokensPerStep count the positions
	// the encoder (CLS and kept tokens) and the decoder (CLS and every
	// position) process in one step.
	EncoderTokensPerStep, DecoderTokensPerStep int
	PeakLearningRate                           float64
	WarmupSteps                                int
	// ExamplesPerEpoch is the number of draws in one epoch: one pass over
	// the paired source, or the first source present.
	ExamplesPerEpoch int64
	// EvalExamples is the number of held-out examples evaluated, 0
	// without a held-out split.
	EvalExamples int
}

// SourceShare is one source of the mix.
type SourceShare struct {
	Name     string
	Examples int
	PerBatch int
}

// New prepares the run in dir: it opens the data, builds or restores the
// trainer and preprocesses the held-out examples. With resume it continues
// the newest checkpoint in dir, and fails when opts changes the preset,
// batch, seed or data of the saved run, naming each difference. Without
// resume it fails when dir already contains checkpoints.
func New(ctx context.Context, dir string, opts Options, resume bool, hooks Hooks) (*Run, error) {
	r := &Run{dir: dir, hooks: hooks, logger: hooks.Logger}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	var err error
	if opts.DataOptions, err = opts.DataOptions.withAbsolutePaths(); err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	r.opts = opts
	r.cfg, _ = core.Preset(opts.Preset) // Validate checked the name

	backend, err := native.NewBackend()
	if err != nil {
		return nil, err
	}
	var state runState
	var resumedFrom string
	if resume {
		if resumedFrom, state, err = r.checkResume(); err != nil {
			return nil, err
		}
	} else if err := checkNewRunDir(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(CheckpointsDir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("run folder: %w", err)
	}
	if err := removeLeftovers(CheckpointsDir(dir)); err != nil {
		return nil, err
	}

	if r.tokenizer, err = core.NewTokenizer(bertvocab.Tokens()); err != nil {
		return nil, err
	}
	runData, err := openData(opts.DataOptions, r.logger)
	if err != nil {
		return nil, err
	}
	if err := r.buildTrainer(backend, runData, resume, state); err != nil {
		return nil, err
	}
	if err := r.buildData(ctx, runData, resume, state); err != nil {
		return nil, err
	}
	if r.metrics, err = openMetrics(filepath.Join(dir, metricsName), r.trainer.GlobalStep()); err != nil {
		return nil, err
	}
	for _, p := range r.metrics.history {
		if p.Kind == KindEval {
			r.lastEvalStep = p.Step
		}
	}
	r.lastCheckpoint, r.savedStep = resumedFrom, -1
	if resume {
		r.savedStep = state.Step
	}
	r.summary = r.summarize(resumedFrom)
	if err := r.writeRunFile(); err != nil {
		return nil, err
	}
	return r, nil
}

// checkResume reads the newest checkpoint's run state and rejects options
// that would not continue the same run.
func (r *Run) checkResume() (string, runState, error) {
	path, state, err := latestState(r.dir)
	if err != nil {
		return "", state, err
	}
	conflicts, changes := compareOptions(state.Options, r.opts)
	if len(conflicts) > 0 {
		return "", state, conflictError(conflicts)
	}
	for _, c := range changes {
		r.logger.Warn("option changed on resume", "option", c.Flag, "saved", c.Saved, "now", c.Requested)
	}
	r.summary.Changes = changes
	return path, state, nil
}

// checkNewRunDir rejects a folder that contains checkpoints of another run.
func checkNewRunDir(dir string) error {
	paths, err := native.Checkpoints(CheckpointsDir(dir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(paths) > 0 {
		return fmt.Errorf("run folder %s already contains checkpoints (newest %s): pass --resume to continue that run, or choose another --out",
			dir, filepath.Base(paths[len(paths)-1]))
	}
	return nil
}

// buildTrainer creates the trainer: from the newest checkpoint when
// resuming, from core's initialization with the run's seed otherwise.
func (r *Run) buildTrainer(backend compute.Backend, d *runData, resume bool, state runState) error {
	tc := r.opts.TrainConfig()
	tc.Logger = slog.New(demoteHandler{r.logger.Handler()})
	if resume {
		trainer, err := native.ResumeTrainer(backend, CheckpointsDir(r.dir), tc)
		if err != nil {
			return err
		}
		if trainer.Config() != r.cfg {
			return fmt.Errorf("resume: the checkpoint's architecture %+v differs from preset %s: resume with the run's preset", trainer.Config(), r.opts.Preset)
		}
		if trainer.GlobalStep() != state.Step {
			return fmt.Errorf("resume: the checkpoint is at step %d but its %s records step %d; the checkpoint is damaged: delete it to resume from the one before",
				trainer.GlobalStep(), runStateFile, state.Step)
		}
		r.trainer = trainer
		return nil
	}

	norm := core.CC12MNorm
	if r.opts.Norm == NormData && d.imageSource != nil {
		measured, count, err := data.ComputeNorm(d.imageSource, data.NormOptions{
			Sample: normSample, ImageSize: r.cfg.ImageSize, Seed: r.opts.Seed, SkipBad: r.opts.SkipBad, Logger: r.logger,
		})
		if err != nil {
			return fmt.Errorf("measure pixel statistics: %w", err)
		}
		r.logger.Info("measured pixel statistics", "images", count, "mean", measured.Mean, "std", measured.Std)
		norm = measured
	}
	init, err := core.InitModelFile(r.cfg, bertvocab.Tokens(), norm, r.opts.Seed)
	if err != nil {
		return err
	}
	r.trainer, err = native.NewTrainer(backend, init, tc)
	return err
}

// buildData sets up the training mix at its position and loads the
// held-out examples.
func (r *Run) buildData(ctx context.Context, d *runData, resume bool, state runState) error {
	// One cycle per batch gives every batch the same number of examples
	// of each source, so the trainer compiles one graph per composition
	// instead of one per random mix.
	mixer, err := data.NewMixer(data.MixerConfig{
		Sources: d.train, Seed: r.opts.Seed, CycleLength: r.opts.BatchSize, Shuffle: true,
	})
	if err != nil {
		return fmt.Errorf("--batch %d with %d sources: %w", r.opts.BatchSize, len(d.train), err)
	}
	r.mixer = mixer
	r.position = mixer.PositionAt(0)
	if resume {
		if err := mixer.Seek(state.Position); err != nil {
			return fmt.Errorf("resume: the data differs from the saved run's, so its files changed: %w", err)
		}
		r.position = state.Position
	}

	r.batcherCfg = data.BatcherConfig{
		Model:        r.cfg,
		Norm:         r.trainer.Norm(),
		Tokenizer:    r.tokenizer,
		BatchSize:    r.opts.BatchSize,
		Workers:      r.opts.Workers,
		Augment:      r.opts.Augment,
		Augmentation: r.opts.Augmentation(),
		Seed:         r.opts.Seed,
		SkipBad:      r.opts.SkipBad,
		Logger:       r.logger,
	}

	if d.eval == nil {
		r.logger.Warn("no held-out split: pass --eval-captions or --eval-fraction to evaluate and draw reconstructions")
		return nil
	}
	r.eval, err = loadEvalSet(ctx, d.eval, r.batcherCfg, r.opts.EvalExamples, r.opts.ImageMaskRatio, r.opts.TextMaskRatio)
	return err
}

// summarize computes the derived figures of the run.
func (r *Run) summarize(resumedFrom string) Summary {
	s := r.summary
	s.Dir, s.ResumedFrom, s.Step = r.dir, resumedFrom, r.trainer.GlobalStep()
	s.Options, s.Config, s.NumParams, s.Norm = r.opts, r.cfg, r.cfg.NumParams(), r.trainer.Norm()
	s.PeakLearningRate, s.WarmupSteps = r.opts.PeakLearningRate(), r.opts.Warmup()
	s.ExamplesPerEpoch = r.mixer.EpochLength()
	if r.eval != nil {
		s.EvalExamples = len(r.eval.examples)
	}
	keptImage := int(float64(r.cfg.NumPatches()) * (1 - r.opts.ImageMaskRatio))
	keptText := int(float64(r.cfg.TextLength) * (1 - r.opts.TextMaskRatio))
	quotas := r.mixer.Quotas()
	for i, src := range r.mixer.Sources() {
		s.Sources = append(s.Sources, SourceShare{Name: src.Name, Examples: src.Source.Len(), PerBatch: quotas[i]})
		encoder, decoder := 1, 1
		if src.Name != sourceTextOnly {
			encoder, decoder = encoder+keptImage, decoder+r.cfg.NumPatches()
		}
		if src.Name != sourceImageOnly {
			encoder, decoder = encoder+keptText, decoder+r.cfg.TextLength
		}
		s.EncoderTokensPerStep += quotas[i] * encoder
		s.DecoderTokensPerStep += quotas[i] * decoder
	}
	return s
}

// Summary returns the derived figures of the run.
func (r *Run) Summary() Summary { return r.summary }

// writeRunFile writes run.json: the options and the summary, for readers
// of the run folder. Resuming reads the copy in each checkpoint instead.
func (r *Run) writeRunFile() error {
	encoded, err := json.MarshalIndent(struct {
		Options          Options        `json:"options"`
		Config           core.Config    `json:"model_config"`
		NumParams        int            `json:"parameters"`
		Norm             core.ImageNorm `json:"image_norm"`
		Sources          []SourceShare  `json:"sources"`
		ExamplesPerEpoch int64          `json:"examples_per_epoch"`
	}{r.opts, r.cfg, r.summary.NumParams, r.summary.Norm, r.summary.Sources, r.summary.ExamplesPerEpoch}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(r.dir, runFileName), append(encoded, '\n')); err != nil {
		return fmt.Errorf("run file: %w", err)
	}
	return nil
}

// demoteHandler passes Info records on at Debug level, so the trainer's
// per-compilation and per-save lines stay out of the run's Info log.
type demoteHandler struct{ next slog.Handler }

func (h demoteHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, demote(level))
}

func (h demoteHandler) Handle(ctx context.Context, record slog.Record) error {
	record.Level = demote(record.Level)
	if !h.next.Enabled(ctx, record.Level) {
		return nil
	}
	return h.next.Handle(ctx, record)
}

func (h demoteHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demoteHandler{h.next.WithAttrs(attrs)}
}

func (h demoteHandler) WithGroup(name string) slog.Handler {
	return demoteHandler{h.next.WithGroup(name)}
}

func demote(level slog.Level) slog.Level {
	if level == slog.LevelInfo {
		return slog.LevelDebug
	}
	return level
}
