package main

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/evaluate"
)

// probeOptions are the flags of "m3ae-edge probe".
type probeOptions struct {
	modelPath, trainPath, testPath, jsonPath string
	labelField, pooling                      string
	randomInit                               bool
	initSeed                                 uint64
	limitTrain, limitTest                    int
	classifier                               evaluate.ClassifierOptions
}

// newProbeCommand returns "m3ae-edge probe", which fits a linear
// classifier to a model's frozen image embeddings.
func newProbeCommand() *cobra.Command {
	opts := probeOptions{classifier: evaluate.DefaultClassifierOptions()}
	cmd := &cobra.Command{
		Use:   "probe [--model FILE] --train DATA --test DATA [--label-field FIELD]",
		Short: "Fit a linear classifier to frozen image embeddings and report its accuracy",
		Long: `probe measures how much class information a model's image embeddings
carry. It embeds the image of every example alone, with the encoder
frozen, fits a softmax (multinomial logistic regression) classifier to the
training embeddings, and prints its accuracy on both splits beside the
majority-class baseline.

The classifier standardizes each embedding dimension by its training mean
and standard deviation and minimizes the mean cross-entropy plus
(--l2/2)*||W||^2 with full-batch L-BFGS from zero weights, so a run is
deterministic.

--train and --test each name a JSONL captions file whose --label-field
gives each image's class, or a folder with one subfolder of images per
class. "m3ae-edge data emoji" writes the emoji dataset's emojibase group
(field group), and "m3ae-edge data fashion-mnist" the Fashion-MNIST class
(field class). Examples without a label are left out and counted.

--random-init runs the same probe on a model of the same architecture with
fresh weights (core.InitModelFile with --init-seed, as training starts),
the baseline that shows what pretraining adds. Without --model it probes
the default model embedded in m3ae-edge.`,
		Example: `  m3ae-edge probe --model emoji.int8.safetensors \
      --train data/emoji/train.jsonl --test data/emoji/test.jsonl --json probe.json
  m3ae-edge probe --model emoji.int8.safetensors --random-init \
      --train data/emoji/train.jsonl --test data/emoji/test.jsonl
  m3ae-edge probe --train data/fashion-mnist/train.jsonl --test data/fashion-mnist/test.jsonl \
      --label-field class --limit-train 10000
  m3ae-edge probe --train photos/train --test photos/test`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			if opts.limitTrain < 0 || opts.limitTest < 0 {
				return fmt.Errorf("--limit-train %d and --limit-test %d: use 0 for every example or a positive count", opts.limitTrain, opts.limitTest)
			}
			if err := checkClassifierFlags(opts.classifier); err != nil {
				return err
			}
			return runProbe(cmd, logger, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.modelPath, "model", "", modelFlagUsage)
	flags.StringVar(&opts.trainPath, "train", "", "training examples: a JSONL captions file or a folder with one subfolder per class (required)")
	flags.StringVar(&opts.testPath, "test", "", "test examples, in the same form as --train (required)")
	flags.StringVar(&opts.labelField, "label-field", "group", "JSONL field that holds each example's class: a string or a number")
	flags.StringVar(&opts.pooling, "pooling", "cls", "pooling of the encoder outputs: cls (the CLS output) or mean (the mean of the image patch outputs)")
	flags.BoolVar(&opts.randomInit, "random-init", false, "probe a model of the same architecture with freshly initialized weights in place of the trained ones")
	flags.Uint64Var(&opts.initSeed, "init-seed", 1, "seed of the weights of --random-init")
	flags.Float64Var(&opts.classifier.L2, "l2", opts.classifier.L2, "weight of the L2 penalty on the classifier's weights, 0 or more")
	flags.IntVar(&opts.classifier.MaxIterations, "max-iterations", opts.classifier.MaxIterations, "maximum number of L-BFGS iterations of the fit")
	flags.Float64Var(&opts.classifier.GradientTolerance, "tolerance", opts.classifier.GradientTolerance,
		"the fit ends once no entry of the gradient of the mean loss exceeds this in absolute value")
	flags.IntVar(&opts.limitTrain, "limit-train", 0, "number of training examples used, spread evenly over --train; 0 uses all")
	flags.IntVar(&opts.limitTest, "limit-test", 0, "number of test examples used, spread evenly over --test; 0 uses all")
	flags.StringVar(&opts.jsonPath, "json", "", "JSON file to write the figures to (default none)")
	cmd.MarkFlagRequired("train")
	cmd.MarkFlagRequired("test")
	markFileFlags(cmd, map[string][]string{"model": modelExtensions, "json": {"json"}})
	return cmd
}

// checkClassifierFlags rejects the classifier settings that
// evaluate.TrainClassifier rejects, so that a bad flag fails at once and
// not after embedding every image.
func checkClassifierFlags(o evaluate.ClassifierOptions) error {
	if !(o.L2 >= 0) || math.IsInf(o.L2, 0) {
		return fmt.Errorf("--l2 %v: use a finite value of 0 or more, such as %v", o.L2, evaluate.DefaultClassifierOptions().L2)
	}
	if o.MaxIterations < 1 {
		return fmt.Errorf("--max-iterations %d: use 1 or more", o.MaxIterations)
	}
	if !(o.GradientTolerance >= 0) {
		return fmt.Errorf("--tolerance %v: use 0 or more, such as %v", o.GradientTolerance, evaluate.DefaultClassifierOptions().GradientTolerance)
	}
	return nil
}

// probeJSON is the --json output of "m3ae-edge probe": the inputs, the wall
// times and the report's fields.
type probeJSON struct {
	Model        string  `json:"model"`
	Quantization string  `json:"quantization"`
	RandomInit   bool    `json:"random_init"`
	InitSeed     *uint64 `json:"init_seed,omitempty"`
	Pooling      string  `json:"pooling"`
	TrainData    string  `json:"train_data"`
	TestData     string  `json:"test_data"`
	LabelField   string  `json:"label_field,omitempty"`
	// TrainUnlabelled and TestUnlabelled count the examples left out
	// because they have no label.
	TrainUnlabelled int     `json:"train_unlabelled"`
	TestUnlabelled  int     `json:"test_unlabelled"`
	EmbedSeconds    float64 `json:"embed_seconds"`
	FitSeconds      float64 `json:"fit_seconds"`
	*evaluate.ProbeReport
}

func runProbe(cmd *cobra.Command, logger *slog.Logger, opts probeOptions) error {
	pool, err := parsePooling(opts.pooling)
	if err != nil {
		return err
	}
	pipeline, out, err := probePipeline(logger, opts)
	if err != nil {
		return err
	}
	out.Pooling = pool.String()

	train, err := readProbeExamples("--train", opts.trainPath, opts.labelField, opts.limitTrain)
	if err != nil {
		return err
	}
	test, err := readProbeExamples("--test", opts.testPath, opts.labelField, opts.limitTest)
	if err != nil {
		return err
	}
	train.examples, out.TrainUnlabelled = evaluate.Labelled(train.examples)
	test.examples, out.TestUnlabelled = evaluate.Labelled(test.examples)
	if len(train.examples) == 0 || len(test.examples) == 0 {
		return fmt.Errorf("--train %s has %d and --test %s has %d labelled examples: give files whose %q field contains each class, such as a dataset that m3ae-edge data emoji wrote",
			opts.trainPath, len(train.examples), opts.testPath, len(test.examples), opts.labelField)
	}
	if out.TrainUnlabelled+out.TestUnlabelled > 0 {
		logger.Warn("left out examples without a label", "train", out.TrainUnlabelled, "test", out.TestUnlabelled, "field", opts.labelField)
	}
	out.TrainData, out.TestData = opts.trainPath, opts.testPath
	if train.fromJSONL || test.fromJSONL {
		out.LabelField = opts.labelField
	}

	// Embed both splits with one progress bar.
	logger.Info("embedding images", "model", out.Model, "train", len(train.examples), "test", len(test.examples), "pooling", pool)
	bar := newProgressBar(cmd.ErrOrStderr(), "embedding")
	total := len(train.examples) + len(test.examples)
	start := time.Now()
	trainFeatures, err := evaluate.EmbedImages(cmd.Context(), pipeline, train.examples, pool,
		func(done, _ int) { bar.Update(done, total) })
	if err != nil {
		bar.Finish()
		return err
	}
	testFeatures, err := evaluate.EmbedImages(cmd.Context(), pipeline, test.examples, pool,
		func(done, _ int) { bar.Update(len(train.examples)+done, total) })
	bar.Finish()
	if err != nil {
		return err
	}
	out.EmbedSeconds = time.Since(start).Seconds()

	start = time.Now()
	report, err := evaluate.ProbeEmbeddings(trainFeatures, evaluate.Labels(train.examples), testFeatures, evaluate.Labels(test.examples), opts.classifier)
	if err != nil {
		return err
	}
	out.FitSeconds = time.Since(start).Seconds()
	out.ProbeReport = report
	if !report.Fit.Converged {
		logger.Warn("the classifier fit did not converge: raise --max-iterations, --tolerance or --l2",
			"iterations", report.Fit.Iterations, "max_gradient", report.Fit.MaxGradient)
	}

	if err := printProbe(cmd.OutOrStdout(), out); err != nil {
		return err
	}
	if opts.jsonPath != "" {
		if _, err := writeFileAtomic(opts.jsonPath, func(w io.Writer) error { return writeJSON(w, out) }); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
		logger.Info("wrote figures", "path", opts.jsonPath)
	}
	return nil
}

// probePipeline loads the model of opts, or with --random-init a fresh
// model of the same architecture, and starts the JSON output with its
// description.
func probePipeline(logger *slog.Logger, opts probeOptions) (*core.Pipeline, probeJSON, error) {
	mf, err := readModelFile(opts.modelPath)
	if err != nil {
		return nil, probeJSON{}, err
	}
	out := probeJSON{Model: modelLabel(opts.modelPath), Quantization: mf.Quantization}
	if opts.randomInit {
		mf, err = core.InitModelFile(mf.Config, mf.Vocab, mf.Norm, opts.initSeed)
		if err != nil {
			return nil, probeJSON{}, fmt.Errorf("--random-init: %w", err)
		}
		out.RandomInit, out.InitSeed, out.Quantization = true, &opts.initSeed, mf.Quantization
		logger.Info("replaced the model's weights with fresh ones", "init_seed", opts.initSeed)
	}
	pipeline, err := core.NewPipeline(mf)
	if err != nil {
		return nil, probeJSON{}, modelFileError("--model", opts.modelPath, err)
	}
	return pipeline, out, nil
}

// probeSplit is one split's examples. fromJSONL is true when they come
// from a captions file and false for a folder laid out by class.
type probeSplit struct {
	examples  []evaluate.Example
	fromJSONL bool
}

// readProbeExamples reads a split from a folder laid out by class or from a
// JSONL captions file, and keeps limit of its examples (0 keeps all).
func readProbeExamples(flag, path, labelField string, limit int) (probeSplit, error) {
	info, err := os.Stat(path)
	if err != nil {
		return probeSplit{}, fmt.Errorf("%s %s: %w: give a JSONL captions file or a folder with one subfolder per class", flag, path, err)
	}
	var split probeSplit
	if info.IsDir() {
		split.examples, err = evaluate.ReadImageFolder(path)
	} else {
		split.examples, err = evaluate.ReadCaptions(path, labelField)
		split.fromJSONL = true
	}
	if err != nil {
		return probeSplit{}, fmt.Errorf("%s: %w", flag, err)
	}
	split.examples = evaluate.Subsample(split.examples, limit)
	return split, nil
}

// printProbe writes the figures as tables.
func printProbe(w io.Writer, out probeJSON) error {
	r := out.ProbeReport
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	model := fmt.Sprintf("%s (quantization %s)", out.Model, out.Quantization)
	if out.RandomInit {
		model = fmt.Sprintf("%s with fresh weights (init seed %d)", out.Model, *out.InitSeed)
	}
	fmt.Fprintf(tw, "model\t%s, image embeddings, %s pooling\n", model, out.Pooling)
	labels := "the class subfolders"
	if out.LabelField != "" {
		labels = fmt.Sprintf("field %q", out.LabelField)
	}
	fmt.Fprintf(tw, "classes\t%d, from %s: %s\n", len(r.Classes), labels, strings.Join(r.Classes, ", "))
	fmt.Fprintf(tw, "train\t%s of %s (%d without a label left out)\n", countNoun(r.Train.Examples, "example"), out.TrainData, out.TrainUnlabelled)
	fmt.Fprintf(tw, "test\t%s of %s (%d without a label left out)\n", countNoun(r.Test.Examples, "example"), out.TestData, out.TestUnlabelled)
	converged := "converged"
	if !r.Fit.Converged {
		converged = fmt.Sprintf("not converged, max |gradient| %.3g", r.Fit.MaxGradient)
	}
	fmt.Fprintf(tw, "fit\tL2 %g, %s, %s, loss %.4f nats\n", r.L2, countNoun(r.Fit.Iterations, "L-BFGS iteration"), converged, r.Fit.Loss)
	fmt.Fprintf(tw, "time\tembedding %.1f s, fit %.1f s\n", out.EmbedSeconds, out.FitSeconds)

	fmt.Fprintln(tw, "\n\taccuracy\tbalanced accuracy")
	fmt.Fprintf(tw, "probe, train\t%s\t%s\n", percent(r.Train.Accuracy), percent(r.Train.BalancedAccuracy))
	fmt.Fprintf(tw, "probe, test\t%s\t%s\n", percent(r.Test.Accuracy), percent(r.Test.BalancedAccuracy))
	fmt.Fprintf(tw, "majority class %q, test\t%s\t%s\n", r.Majority.Class, percent(r.Majority.TestAccuracy), percent(r.Majority.TestBalancedAccuracy))
	if r.Test.UnknownLabels > 0 {
		if r.Test.UnknownLabels == 1 {
			fmt.Fprintln(tw, "1 test example has a label that no training example has and counts as wrong")
		} else {
			fmt.Fprintf(tw, "%d test examples have a label that no training example has and count as wrong\n", r.Test.UnknownLabels)
		}
	}

	fmt.Fprintln(tw, "\ntest class\texamples\taccuracy")
	for _, c := range r.Test.PerClass {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", c.Class, c.Examples, percent(c.Accuracy))
	}
	return tw.Flush()
}
