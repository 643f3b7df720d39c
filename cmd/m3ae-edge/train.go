package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

// newTrainCommand returns "m3ae-edge train", which trains a model on
// image-caption, image-only and text-only data into a run folder.
func newTrainCommand() *cobra.Command {
	var (
		outDir string
		resume bool
	)
	opts := trainrun.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "train --out RUN_DIR [data flags]",
		Short: "Train an M3AE model, with evaluation, plots and resumable checkpoints",
		Long: `train pretrains an M3AE model on image-caption pairs (--captions,
--shards), images without captions (--image-folder) and text without images
(--text-lines), mixed in every batch in the proportions of the --*-weight
flags. Every batch contains the same number of examples of each source, so the
trainer compiles one graph per composition.

It writes into RUN_DIR: run.json (the options), metrics.jsonl (one JSON
line per logged interval and per evaluation), loss.png, recon-STEP.png
(held-out examples: original, masked and reconstructed images, the caption
and the predicted words of its hidden tokens) and checkpoints/step-N.

SIGINT (Ctrl-C) or SIGTERM lets the current step finish, saves a
checkpoint and exits with status 0. --resume continues the newest
checkpoint exactly (weights, optimizer state, step, learning-rate
schedule, masks and data position) with the options the run was started
with; flags given beside --resume override them, except the preset, batch,
seed and data flags, which must not change. A non-finite loss stops the run
with an error that names the checkpoint to resume from.`,
		Example: `  m3ae-edge data emoji --out data/emoji
  m3ae-edge train --out runs/emoji --captions data/emoji/train.jsonl \
      --eval-captions data/emoji/test.jsonl --steps 2000 --lr 1e-3
  m3ae-edge train --out runs/emoji --resume`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if resume {
				merged, err := resumeOptions(cmd, outDir)
				if err != nil {
					return err
				}
				opts = merged
			}
			return runTrain(cmd, outDir, opts, resume)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&outDir, "out", "", "run folder for checkpoints, metrics and plots (required)")
	flags.BoolVar(&resume, "resume", false, "continue the newest checkpoint in --out with its saved options (default false)")
	bindTrainFlags(flags, &opts)
	cmd.MarkFlagRequired("out")
	return cmd
}

// bindTrainFlags defines a flag for every field of o, with o's values as
// the defaults.
func bindTrainFlags(flags *pflag.FlagSet, o *trainrun.Options) {
	flags.StringVar(&o.Preset, "preset", o.Preset, "architecture: "+strings.Join(core.PresetNames(), ", "))

	// Data.
	flags.StringArrayVar(&o.Captions, "captions", o.Captions, "captions file (.jsonl or .csv) of an image folder, read as paired examples; repeatable (default none)")
	flags.StringArrayVar(&o.Shards, "shards", o.Shards, "WebDataset tar shards: a path or a brace pattern such as 'shards/{00000..00009}.tar'; repeatable (default none)")
	flags.StringArrayVar(&o.ImageFolders, "image-folder", o.ImageFolders, "folder of .png and .jpg images, read as image-only examples; repeatable (default none)")
	flags.StringArrayVar(&o.TextLines, "text-lines", o.TextLines, "text file read as one text-only example per non-blank line; repeatable (default none)")
	flags.Float64Var(&o.PairedWeight, "paired-weight", o.PairedWeight, "share of each batch for paired examples, relative to the other two weights of the sources given")
	flags.Float64Var(&o.ImageOnlyWeight, "image-only-weight", o.ImageOnlyWeight, "share of each batch for --image-folder examples, relative weight")
	flags.Float64Var(&o.TextOnlyWeight, "text-only-weight", o.TextOnlyWeight, "share of each batch for --text-lines examples, relative weight")
	flags.StringVar(&o.EvalCaptions, "eval-captions", o.EvalCaptions, "captions file of held-out examples for evaluation and recon-STEP.png (default none)")
	flags.Float64Var(&o.EvalFraction, "eval-fraction", o.EvalFraction, "fraction of the paired examples held out for evaluation instead of --eval-captions, 0 to 1 (default 0, none)")
	flags.IntVar(&o.EvalExamples, "eval-examples", o.EvalExamples, "maximum number of held-out examples evaluated")
	flags.IntVar(&o.ReconExamples, "recon-examples", o.ReconExamples, "held-out examples drawn in each recon-STEP.png")
	flags.BoolVar(&o.Augment, "augment", o.Augment, "train on random resized crops and horizontal flips of the images")
	flags.Float64Var(&o.CropMinScale, "crop-min-scale", o.CropMinScale, "smallest crop area as a fraction of the image, with --augment")
	flags.Float64Var(&o.FlipProb, "flip-prob", o.FlipProb, "probability of a horizontal flip, 0 to 1, with --augment")
	flags.StringVar(&o.Norm, "norm", o.Norm, "pixel normalization: data (mean and std of up to 1000 training images) or cc12m (the official checkpoints')")
	flags.BoolVar(&o.SkipBad, "skip-bad", o.SkipBad, "skip unreadable lines, samples and images, logging a count, instead of failing (default false)")

	// Optimization.
	flags.IntVar(&o.BatchSize, "batch", o.BatchSize, "examples per step")
	flags.IntVar(&o.Steps, "steps", o.Steps, "total training steps; the learning rate reaches 0 at the last one")
	flags.IntVar(&o.WarmupSteps, "warmup-steps", o.WarmupSteps, "steps of linear learning-rate warmup; -1 means 5% of --steps")
	flags.Float64Var(&o.LearningRate, "lr", o.LearningRate, fmt.Sprintf(
		"peak learning rate after warmup; 0 means 1.5e-4 x batch/256, which is %.4g at the default batch of %d (default 0)",
		trainrun.Options{BatchSize: o.BatchSize}.PeakLearningRate(), o.BatchSize))
	flags.Float64Var(&o.Beta1, "beta1", o.Beta1, "AdamW first-moment decay rate, 0 up to but not including 1")
	flags.Float64Var(&o.Beta2, "beta2", o.Beta2, "AdamW second-moment decay rate, 0 up to but not including 1")
	flags.Float64Var(&o.Epsilon, "adam-epsilon", o.Epsilon, "AdamW epsilon, added to the root of the second moment")
	flags.Float64Var(&o.WeightDecay, "weight-decay", o.WeightDecay, "AdamW decoupled weight decay of kernels and LayerNorm scales, 0 or more")
	flags.Float64Var(&o.MaxGradNorm, "grad-clip", o.MaxGradNorm, "maximum global gradient norm; 0 disables clipping (default 0)")
	flags.Float64Var(&o.ImageMaskRatio, "image-mask-ratio", o.ImageMaskRatio, "fraction of image patches hidden from the encoder, 0 up to but not including 1; at least one patch must stay visible")
	flags.Float64Var(&o.TextMaskRatio, "text-mask-ratio", o.TextMaskRatio, "fraction of text positions hidden from the encoder, 0 up to but not including 1; at least one position must stay visible")
	flags.Float64Var(&o.ImageLossWeight, "image-loss-weight", o.ImageLossWeight, "weight of the image loss in the total, 0 or more; the two loss weights must not both be 0")
	flags.Float64Var(&o.TextLossWeight, "text-loss-weight", o.TextLossWeight, "weight of the text loss in the total, 0 or more; the two loss weights must not both be 0")
	flags.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the initial weights, masks, data order and augmentation")
	flags.IntVar(&o.Workers, "workers", o.Workers, "goroutines that decode and augment images; 0 means one per CPU (default 0)")

	// Output.
	flags.IntVar(&o.CheckpointEvery, "checkpoint-every", o.CheckpointEvery, "save a checkpoint every N steps, besides the last step and interruptions; 0 saves only those")
	flags.IntVar(&o.Keep, "keep", o.Keep, "number of newest checkpoints kept; 0 keeps all")
	flags.IntVar(&o.EvalEvery, "eval-every", o.EvalEvery, "evaluate and draw loss.png and recon-STEP.png every N steps, besides the last; 0 only at the last")
	flags.IntVar(&o.LogEvery, "log-every", o.LogEvery, "write one log line and metrics record, averaged over N steps, every N steps")
}

// resumeOptions returns the options of the run in outDir with the flags
// given on this command line applied over them.
func resumeOptions(cmd *cobra.Command, outDir string) (trainrun.Options, error) {
	merged, err := trainrun.LoadOptions(outDir)
	if err != nil {
		return merged, err
	}
	replay := pflag.NewFlagSet("resume", pflag.ContinueOnError)
	bindTrainFlags(replay, &merged)
	var replayErr error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		target := replay.Lookup(f.Name)
		if target == nil || replayErr != nil {
			return
		}
		if list, ok := f.Value.(pflag.SliceValue); ok {
			replayErr = target.Value.(pflag.SliceValue).Replace(list.GetSlice())
			return
		}
		replayErr = target.Value.Set(f.Value.String())
	})
	if replayErr != nil {
		return merged, fmt.Errorf("apply flags over the saved options: %w", replayErr)
	}
	return merged, nil
}

// runTrain prepares the run, prints its figures, trains and reports the
// outcome.
func runTrain(cmd *cobra.Command, outDir string, opts trainrun.Options, resume bool) error {
	ctx := cmd.Context()
	bar := newStepBar(cmd.ErrOrStderr())
	cmd.SetErr(bar.logWriter())
	logger, err := commandLogger(cmd)
	if err != nil {
		return err
	}
	run, err := trainrun.New(ctx, outDir, opts, resume, trainrun.Hooks{Logger: logger, Progress: bar.update})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted before the first step, nothing saved: %w", err)
		}
		return err
	}
	if err := printTrainSummary(cmd.OutOrStdout(), run.Summary()); err != nil {
		return err
	}

	result, err := run.Train(ctx)
	bar.finish()
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if result.Interrupted {
		fmt.Fprintf(cmd.ErrOrStderr(), "interrupted at step %d; saved %s\ncontinue with: m3ae-edge train --out %s --resume\n",
			result.Step, result.Checkpoint, outDir)
		return nil
	}
	fmt.Fprintf(out, "finished step %d of %d in %s\n", result.Step, opts.Steps, result.Elapsed.Round(1e9))
	if t := result.LastTrain; t != nil {
		fmt.Fprintf(out, "last %s: image loss %.4f, text loss %.4f\n", countNoun(t.Steps, "step"), float64(t.ImageLoss), float64(t.TextLoss))
	}
	if e := result.LastEval; e != nil {
		fmt.Fprintf(out, "held-out: masked-patch MSE %.4f, text loss %.4f, token accuracy %.3f on %s\n",
			float64(e.ImageMSE), float64(e.TextLoss), float64(e.TokenAccuracy), countNoun(e.Examples, "example"))
	}
	_, err = fmt.Fprintf(out, "checkpoint %s\nexport with: m3ae-edge export --checkpoint %s --out model.safetensors\n", result.Checkpoint, outDir)
	return err
}

// printTrainSummary writes the run's derived figures as aligned lines.
func printTrainSummary(w io.Writer, s trainrun.Summary) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	o, cfg := s.Options, s.Config
	start := "new run"
	if s.ResumedFrom != "" {
		start = fmt.Sprintf("resumed at step %d from %s", s.Step, filepath.Base(s.ResumedFrom))
	}

	fmt.Fprintf(tw, "run folder\t%s (%s)\n", s.Dir, start)
	fmt.Fprintf(tw, "model\t%s: %dx%d images in %s of %dx%d, %s; encoder %d wide x %s, decoder %d x %d; %s parameters\n",
		o.Preset, cfg.ImageSize, cfg.ImageSize, countNoun(cfg.NumPatches(), "patch"), cfg.PatchSize, cfg.PatchSize, countNoun(cfg.TextLength, "text token"),
		cfg.EmbedDim, countNoun(cfg.Depth, "block"), cfg.DecoderEmbedDim, cfg.DecoderDepth, groupThousands(int64(s.NumParams)))
	var mix []string
	for _, src := range s.Sources {
		mix = append(mix, fmt.Sprintf("%d %s (of %d)", src.PerBatch, src.Name, src.Examples))
	}
	fmt.Fprintf(tw, "batch\t%s: %s\n", countNoun(o.BatchSize, "example"), strings.Join(mix, ", "))
	fmt.Fprintf(tw, "tokens per step\tencoder %s, decoder %s (mask ratios: image %g, text %g)\n",
		groupThousands(int64(s.EncoderTokensPerStep)), groupThousands(int64(s.DecoderTokensPerStep)), o.ImageMaskRatio, o.TextMaskRatio)

	lr := fmt.Sprintf("%.4g", s.PeakLearningRate)
	if o.LearningRate == 0 {
		lr += fmt.Sprintf(" (1.5e-4 x %d/256)", o.BatchSize)
	}
	fmt.Fprintf(tw, "learning rate\tpeak %s, warmup %s, cosine to 0 at step %d\n", lr, countNoun(s.WarmupSteps, "step"), o.Steps)
	fmt.Fprintf(tw, "epoch\t%s examples = %.1f steps; %s = %.2f epochs\n",
		groupThousands(s.ExamplesPerEpoch), float64(s.ExamplesPerEpoch)/float64(o.BatchSize),
		countNoun(o.Steps, "step"), float64(o.Steps)*float64(o.BatchSize)/float64(s.ExamplesPerEpoch))
	held := "none"
	if s.EvalExamples > 0 {
		held = fmt.Sprintf("%s, evaluated every %s", countNoun(s.EvalExamples, "example"), countNoun(o.EvalEvery, "step"))
	}
	fmt.Fprintf(tw, "held-out\t%s\n", held)
	fmt.Fprintf(tw, "pixel norm\tmean %.4f, std %.4f\n", s.Norm.Mean, s.Norm.Std)
	return tw.Flush()
}

// groupThousands formats n with commas between groups of three digits.
func groupThousands(n int64) string {
	digits := fmt.Sprint(n)
	if n < 0 {
		return "-" + groupThousands(-n)
	}
	var b strings.Builder
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}
