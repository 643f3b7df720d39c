package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/evaluate"
	"github.com/m3ae-edge/m3ae-edge/evaluate/experiment"
	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

// Default data of the experiment command: the emoji dataset that
// "m3ae-edge data emoji --out data/emoji" writes.
const (
	experimentTrainData = "data/emoji/train.jsonl"
	experimentTestData  = "data/emoji/test.jsonl"
)

// experimentOptions are the flags of "m3ae-edge experiment" besides the
// training budget.
type experimentOptions struct {
	outDir          string
	captions        string
	numSeeds        int
	firstSeed       uint64
	textMaskRatios  []float64
	pairedFractions []float64
	randomInit      bool
	probe           experiment.ProbeConfig
}

// defaultExperimentBudget returns the training budget of an experiment
// without flags: the micro preset, 120 steps of batch 32 at a peak learning
// rate of 2e-3, clipped at gradient norm 1.
func defaultExperimentBudget() trainrun.Options {
	o := trainrun.DefaultOptions()
	o.Preset = "micro"
	o.BatchSize = 32
	o.Steps = 120
	o.LearningRate = 2e-3
	o.MaxGradNorm = 1
	o.EvalCaptions = experimentTestData
	o.EvalEvery = 0
	o.EvalExamples = 128
	o.ReconExamples = 4
	o.CheckpointEvery = 50
	o.Keep = 1
	return o
}

// newExperimentCommand returns "m3ae-edge experiment", which runs one of
// the studies of package experiment.
func newExperimentCommand() *cobra.Command {
	opts := experimentOptions{
		numSeeds: 2, firstSeed: 1, randomInit: true,
		probe: experiment.ProbeConfig{
			Train: experimentTrainData, Test: experimentTestData, LabelField: "group", Pooling: "cls",
			Classifier: evaluate.DefaultClassifierOptions(),
		},
	}
	budget := defaultExperimentBudget()
	var studies []string
	for _, name := range experiment.StudyNames() {
		studies = append(studies, fmt.Sprintf("  %-19s %s", name, experiment.StudyDescription(name)))
	}
	cmd := &cobra.Command{
		Use:   "experiment NAME --out DIR [flags]",
		Short: "Run a small seeded study of M3AE pretraining: train, export and probe every arm",
		Long: `experiment runs one of three small studies of the M3AE paper (Geng et
al. 2022) end to end. Every arm of the study trains with the same budget
once per seed (--seeds seeds from --seed on), is exported to a float32
model file, and a linear probe scores its image embeddings on the test
split, as "m3ae-edge probe" does. The studies:

` + strings.Join(studies, "\n") + `

The arms of paired-vs-unpaired keep a fixed share of the --captions pairs
as pairs and give the image and the caption of every other pair as one
image-only and one text-only example. Each source's share of a batch is its
share of the examples, so a batch of such an arm contains fewer images.

DIR receives results.json and results.md (one row per arm and seed: probe
accuracy, balanced accuracy, final losses, wall time; the budget, seeds and
versions), results.png (probe accuracy per arm, one mark per seed) and
runs/ARM-seedN, one training run folder per arm and seed. The results are
rewritten after every run. A rerun with the same --out skips the finished
runs and resumes a run stopped during training from its newest checkpoint;
SIGINT (Ctrl-C) saves a checkpoint first. --seed, --seeds and the arm
lists may change on a rerun; every other setting must stay as it was. The
results cover the arms and seeds of the latest call only: the run folders
of others stay in runs/ and return to the results when named again.

The defaults need the emoji data ("m3ae-edge data emoji --out data/emoji").
On a 2-core x86-64 machine a run with its probe took 2.5 to 3 minutes with
little other load and up to 12 minutes while other jobs loaded it, so the
text-mask-ratio study (4 arms, 2 seeds) takes 20 minutes or more.`,
		Example: `  m3ae-edge data emoji --out data/emoji
  m3ae-edge experiment text-mask-ratio --out runs/experiments/text-mask-ratio
  m3ae-edge experiment paired-vs-unpaired --out runs/experiments/paired --paired-fractions 1,0.25,0
  m3ae-edge experiment m3ae-vs-mae --out runs/experiments/mae --seeds 3 --steps 300`,
		Args:      experimentArgs,
		ValidArgs: experiment.StudyNames(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExperiment(cmd, args[0], opts, budget)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.outDir, "out", "", "study folder for the results and the run folders (required)")
	flags.StringVar(&opts.captions, "captions", experimentTrainData, "JSONL captions file of the training pairs, which every arm derives its data from")
	flags.IntVar(&opts.numSeeds, "seeds", opts.numSeeds, fmt.Sprintf("number of seeds each arm trains with, 1 to %d", experiment.MaxSeeds))
	flags.Uint64Var(&opts.firstSeed, "seed", opts.firstSeed, "first seed; the seeds are --seed, --seed+1, ...")
	flags.Float64SliceVar(&opts.textMaskRatios, "text-mask-ratios", nil, fmt.Sprintf(
		"arms of the text-mask-ratio study: comma-separated fractions of text positions hidden (default %s)", joinFloats(experiment.DefaultTextMaskRatios)))
	flags.Float64SliceVar(&opts.pairedFractions, "paired-fractions", nil, fmt.Sprintf(
		"arms of the paired-vs-unpaired study: comma-separated shares of the pairs kept paired, 0 to 1 (default %s)", joinFloats(experiment.DefaultPairedFractions)))
	// A nil list means the study's own arms, which the usage names. An
	// empty DefValue stops pflag from adding "(default [])" after it.
	for _, name := range []string{"text-mask-ratios", "paired-fractions"} {
		flags.Lookup(name).DefValue = ""
	}
	flags.BoolVar(&opts.randomInit, "random-init-baseline", opts.randomInit, "also probe the untrained model of each seed, the weights its runs start from")

	flags.StringVar(&opts.probe.Train, "probe-train", opts.probe.Train, "probe training examples: a JSONL captions file or a folder with one subfolder per class")
	flags.StringVar(&opts.probe.Test, "probe-test", opts.probe.Test, "probe test examples, in the same form as --probe-train")
	flags.StringVar(&opts.probe.LabelField, "label-field", opts.probe.LabelField, "JSONL field that holds each probe example's class")
	flags.StringVar(&opts.probe.Pooling, "pooling", opts.probe.Pooling, "pooling of the encoder outputs for the probe: cls or mean")
	flags.IntVar(&opts.probe.LimitTrain, "probe-limit-train", 0, "number of probe training examples used, spread evenly; 0 uses all")
	flags.IntVar(&opts.probe.LimitTest, "probe-limit-test", 0, "number of probe test examples used, spread evenly; 0 uses all")
	flags.Float64Var(&opts.probe.Classifier.L2, "l2", opts.probe.Classifier.L2, "weight of the L2 penalty on the probe classifier's weights, 0 or more")
	flags.IntVar(&opts.probe.Classifier.MaxIterations, "max-iterations", opts.probe.Classifier.MaxIterations, "maximum number of L-BFGS iterations of the probe fit")
	flags.Float64Var(&opts.probe.Classifier.GradientTolerance, "tolerance", opts.probe.Classifier.GradientTolerance,
		"the probe fit ends once no entry of the gradient of the mean loss exceeds this in absolute value")

	bindExperimentBudgetFlags(flags, &budget)
	cmd.MarkFlagRequired("out")
	markFileFlags(cmd, map[string][]string{"captions": {"jsonl"}, "eval-captions": {"jsonl", "csv"}})
	return cmd
}

// experimentArgs accepts exactly one study name.
func experimentArgs(_ *cobra.Command, args []string) error {
	names := strings.Join(experiment.StudyNames(), ", ")
	switch {
	case len(args) == 0:
		return fmt.Errorf("missing study name: use one of %s", names)
	case len(args) > 1:
		return fmt.Errorf("%d arguments %q: give one study name, one of %s", len(args), args, names)
	case experiment.StudyDescription(args[0]) == "":
		return fmt.Errorf("unknown study %q: use one of %s", args[0], names)
	}
	return nil
}

// bindExperimentBudgetFlags defines the flags of the budget that every arm
// shares, with o's values as the defaults.
func bindExperimentBudgetFlags(flags *pflag.FlagSet, o *trainrun.Options) {
	flags.StringVar(&o.Preset, "preset", o.Preset, "architecture: "+strings.Join(core.PresetNames(), ", "))
	flags.IntVar(&o.Steps, "steps", o.Steps, "training steps of every run; the learning rate reaches 0 at the last one")
	flags.IntVar(&o.BatchSize, "batch", o.BatchSize, "examples per step")
	flags.Float64Var(&o.LearningRate, "lr", o.LearningRate, "peak learning rate after warmup; 0 means 1.5e-4 x batch/256")
	flags.IntVar(&o.WarmupSteps, "warmup-steps", o.WarmupSteps, "steps of linear learning-rate warmup; -1 means 5% of --steps")
	flags.Float64Var(&o.WeightDecay, "weight-decay", o.WeightDecay, "AdamW decoupled weight decay of kernels and LayerNorm scales, 0 or more")
	flags.Float64Var(&o.MaxGradNorm, "grad-clip", o.MaxGradNorm, "maximum global gradient norm; 0 disables clipping")
	flags.Float64Var(&o.ImageMaskRatio, "image-mask-ratio", o.ImageMaskRatio, "fraction of image patches hidden from the encoder in every arm")
	flags.Float64Var(&o.TextMaskRatio, "text-mask-ratio", o.TextMaskRatio, "fraction of text positions hidden from the encoder, in every arm of the studies other than text-mask-ratio")
	flags.Float64Var(&o.ImageLossWeight, "image-loss-weight", o.ImageLossWeight, "weight of the image loss in the total, 0 or more")
	flags.Float64Var(&o.TextLossWeight, "text-loss-weight", o.TextLossWeight, "weight of the text loss in the total, 0 or more")
	flags.BoolVar(&o.Augment, "augment", o.Augment, "train on random resized crops and horizontal flips of the images")
	flags.Float64Var(&o.CropMinScale, "crop-min-scale", o.CropMinScale, "smallest crop area as a fraction of the image, with --augment")
	flags.Float64Var(&o.FlipProb, "flip-prob", o.FlipProb, "probability of a horizontal flip, 0 to 1, with --augment")
	flags.StringVar(&o.Norm, "norm", o.Norm, "pixel normalization: data (measured on the training images) or cc12m")
	flags.StringVar(&o.EvalCaptions, "eval-captions", o.EvalCaptions, "captions file of held-out pairs evaluated after the last step of each run, or none")
	flags.IntVar(&o.EvalExamples, "eval-examples", o.EvalExamples, "maximum number of held-out examples evaluated")
	flags.IntVar(&o.CheckpointEvery, "checkpoint-every", o.CheckpointEvery, "save a checkpoint every N steps of a run, so a stopped study resumes there; 0 saves only at the end")
	flags.IntVar(&o.Keep, "keep", o.Keep, "number of newest checkpoints kept per run; 0 keeps all")
	flags.IntVar(&o.LogEvery, "log-every", o.LogEvery, "average the losses recorded in each run's metrics.jsonl over N steps")
	flags.IntVar(&o.Workers, "workers", o.Workers, "goroutines that decode and augment images; 0 means one per CPU (default 0)")
}

// runExperiment checks the flags, runs the study and prints its summary.
func runExperiment(cmd *cobra.Command, study string, opts experimentOptions, budget trainrun.Options) error {
	flags := cmd.Flags()
	if study == experiment.StudyTextMaskRatio && flags.Changed("text-mask-ratio") {
		return fmt.Errorf("--text-mask-ratio is the variable of the %s study: set its arms with --text-mask-ratios", study)
	}
	if budget.EvalCaptions == "none" {
		budget.EvalCaptions = ""
	}
	if opts.numSeeds < 1 || opts.numSeeds > experiment.MaxSeeds {
		return fmt.Errorf("--seeds %d: want 1 to %d", opts.numSeeds, experiment.MaxSeeds)
	}
	for _, data := range []struct{ flag, path string }{
		{"captions", opts.captions}, {"eval-captions", budget.EvalCaptions},
		{"probe-train", opts.probe.Train}, {"probe-test", opts.probe.Test},
	} {
		if data.path == "" || flags.Changed(data.flag) {
			continue
		}
		if _, err := os.Stat(data.path); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--%s %s (the default): file not found: build the emoji data with m3ae-edge data emoji --out data/emoji, or pass --%s",
				data.flag, data.path, data.flag)
		}
	}

	seeds := make([]uint64, opts.numSeeds)
	for i := range seeds {
		seeds[i] = opts.firstSeed + uint64(i)
	}
	cfg := experiment.Config{
		Study: study, Dir: opts.outDir, Captions: opts.captions, Train: budget, Seeds: seeds,
		TextMaskRatios: opts.textMaskRatios, PairedFractions: opts.pairedFractions,
		Probe: opts.probe, RandomInitBaseline: opts.randomInit,
		Command: experimentCommandLine(cmd, study),
	}

	bars := &studyBars{w: cmd.ErrOrStderr()}
	logger, err := commandLogger(cmd)
	if err != nil {
		return err
	}
	results, err := experiment.Run(cmd.Context(), cfg, experiment.Hooks{
		Logger:      logger,
		TrainLogger: trainLogger(cmd, logger),
		Progress:    bars.update,
	})
	bars.finish()
	if err != nil {
		return err
	}
	return printExperimentSummary(cmd.OutOrStdout(), opts.outDir, results)
}

// trainLogger returns the logger of the training runs: their warnings and
// errors, and with --log-level debug every line.
func trainLogger(cmd *cobra.Command, logger *slog.Logger) *slog.Logger {
	level := slog.LevelWarn
	if logger.Enabled(cmd.Context(), slog.LevelDebug) {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
}

// experimentCommandLine rebuilds the command line from the study name and
// the flags given, for the record in the results.
func experimentCommandLine(cmd *cobra.Command, study string) string {
	parts := []string{"m3ae-edge", "experiment", study}
	flags := cmd.Flags()
	flags.Visit(func(f *pflag.Flag) {
		value := f.Value.String()
		if values, err := flags.GetFloat64Slice(f.Name); err == nil {
			// pflag writes each float with six decimals.
			value = joinFloats(values)
		}
		if f.Value.Type() == "bool" {
			// A boolean flag takes its value only after "=".
			parts = append(parts, "--"+f.Name+"="+value)
			return
		}
		parts = append(parts, "--"+f.Name, value)
	})
	return strings.Join(parts, " ")
}

// printExperimentSummary writes the per-arm summary and the output paths.
func printExperimentSummary(w io.Writer, dir string, r *experiment.Results) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "arm\tseeds\tprobe accuracy\tbalanced accuracy\n")
	for _, s := range r.Summary {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.Label, s.Runs, spreadPercent(s.Accuracy), spreadPercent(s.BalancedAccuracy))
	}
	for _, run := range r.RandomInit {
		fmt.Fprintf(tw, "untrained model, seed %d\t1\t%s\t%s\n", run.Seed, percent(run.ProbeAccuracy), percent(run.ProbeBalancedAccuracy))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	runs := countNoun(len(r.Runs), "training run")
	if len(r.RandomInit) > 0 {
		runs += " and " + countNoun(len(r.RandomInit), "untrained baseline")
	}
	_, err := fmt.Fprintf(w, "wall time %s over %s\nwrote %s, %s and %s\n", formatSeconds(r.WallSeconds), runs,
		filepath.Join(dir, "results.json"), filepath.Join(dir, "results.md"), filepath.Join(dir, "results.png"))
	return err
}

// spreadPercent writes a spread of fractions as "mean (min to max)".
func spreadPercent(s experiment.Spread) string {
	if s.Min == s.Max {
		return percent(s.Mean)
	}
	return fmt.Sprintf("%s (%s to %s)", percent(s.Mean), percent(s.Min), percent(s.Max))
}

func formatSeconds(seconds float64) string {
	return fmt.Sprintf("%.0f s", seconds)
}

func joinFloats(values []float64) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ",")
}

// studyBars draws one progress bar per run and phase on a terminal:
// training steps, then the probe's embedded images.
type studyBars struct {
	w       io.Writer
	current string
	bar     *progressBar
}

func (b *studyBars) update(p experiment.Progress) {
	key := p.Run + " " + p.Phase
	if key != b.current {
		b.finish()
		unit := "steps"
		if p.Phase == experiment.PhaseEmbedding {
			unit = "images"
		}
		b.current, b.bar = key, newProgressBarOf(b.w, key, unit)
	}
	b.bar.Update(int(p.Done), int(p.Total))
	if p.Done == p.Total {
		b.finish()
	}
}

// finish completes and clears the current bar, so the next log line
// starts on a clean line.
func (b *studyBars) finish() {
	if b.bar != nil {
		b.bar.Finish()
	}
	b.current, b.bar = "", nil
}
