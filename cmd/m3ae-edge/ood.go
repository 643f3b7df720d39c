package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/analysis"
	"github.com/m3ae-edge/m3ae-edge/evaluate"
)

// oodOptions are the flags of "m3ae-edge ood".
type oodOptions struct {
	embedding               embeddingFlags
	fitPath, labelField     string
	scorePath               string
	eval                    bool
	inDistPath, outDistPath string
	ridge                   float64
	limitFit, limit         int
	jsonPath                string
}

// newOODCommand returns "m3ae-edge ood", which scores how far inputs lie
// from a labelled set's embeddings.
func newOODCommand() *cobra.Command {
	opts := oodOptions{ridge: analysis.DefaultRidge}
	cmd := &cobra.Command{
		Use:   "ood [--model FILE] --fit DATA (--score DATA | --eval --in-dist DATA --out-dist DATA)",
		Short: "Score inputs as out-of-distribution by Mahalanobis distance to a labelled set",
		Long: `ood fits one Gaussian per class, with a covariance shared by all classes,
to the embeddings of a labelled in-distribution set (--fit), and scores
inputs by their Mahalanobis distance to the nearest class mean (Lee et al.
2018). In-distribution inputs score low, and out-of-distribution ones
high. By default the encoder sees each example's image alone and its
output is CLS-pooled.

The covariance is the maximum-likelihood estimate, plus --ridge times the
mean variance (its trace over the embedding length) on the diagonal. The
ridge makes the covariance invertible when --fit has fewer examples than
the embedding has dimensions, and gives each direction in which no fit
example varies a variance of --ridge times the mean.

--score prints each input's score and nearest class, in the order of the
input. --eval scores --in-dist and --out-dist and prints how well the
scores separate them, with in-distribution as the positive class that
should score lower. AUROC is the probability that a random
out-of-distribution input scores higher than a random in-distribution one,
ties counting one half: 1 is perfect, 0.5 chance. FPR at 95 % TPR is the
fraction of out-of-distribution inputs accepted at the lowest threshold
that accepts at least 95 % of the in-distribution inputs (scores at or
below the threshold are accepted); lower is better.

--fit names a JSONL captions file whose --label-field gives each example's
class, or a folder with one subfolder of images per class. --score,
--in-dist and --out-dist take a JSONL captions file, a folder of images
(searched recursively) or one image file, and need no labels. Without
--model it runs the default model embedded in m3ae-edge.`,
		Example: `  m3ae-edge ood --model emoji.int8.safetensors --fit data/emoji/train.jsonl --score photo.png
  m3ae-edge ood --fit data/emoji/train.jsonl --score new-emoji/ --json scores.json
  m3ae-edge ood --fit data/emoji/train.jsonl --eval \
      --in-dist data/emoji/test.jsonl --out-dist data/fashion-mnist/test.jsonl --limit 1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			if err := checkOODOptions(opts); err != nil {
				return err
			}
			return runOOD(cmd, logger, opts)
		},
	}
	flags := cmd.Flags()
	opts.embedding.register(flags)
	flags.StringVar(&opts.fitPath, "fit", "", "in-distribution examples to fit: a JSONL captions file or a folder with one subfolder per class (required)")
	flags.StringVar(&opts.labelField, "label-field", "group", "JSONL field of --fit that contains each example's class: a string or a number")
	flags.StringVar(&opts.scorePath, "score", "", "inputs to score: a JSONL captions file, a folder of images or an image file (default none, but one of --score and --eval is required)")
	flags.BoolVar(&opts.eval, "eval", false, "score --in-dist and --out-dist and print AUROC and FPR at 95 % TPR")
	flags.StringVar(&opts.inDistPath, "in-dist", "", "in-distribution inputs of --eval, in the form of --score (default none)")
	flags.StringVar(&opts.outDistPath, "out-dist", "", "out-of-distribution inputs of --eval, in the form of --score (default none)")
	flags.Float64Var(&opts.ridge, "ridge", opts.ridge, "amount added to each variance of the shared covariance, as a fraction of the mean variance, 0 or more")
	flags.IntVar(&opts.limitFit, "limit-fit", 0, "number of --fit examples used, spread evenly over the file; 0 uses all")
	flags.IntVar(&opts.limit, "limit", 0, "number of inputs kept from each of --score, --in-dist and --out-dist, spread evenly; 0 uses all")
	flags.StringVar(&opts.jsonPath, "json", "", "JSON file to write the scores and figures to (default none)")
	cmd.MarkFlagRequired("fit")
	markFileFlags(cmd, map[string][]string{"model": modelExtensions, "json": {"json"}})
	return cmd
}

func checkOODOptions(opts oodOptions) error {
	if opts.limitFit < 0 || opts.limit < 0 {
		return fmt.Errorf("--limit-fit %d and --limit %d: use 0 for every example or a positive count", opts.limitFit, opts.limit)
	}
	if !(opts.ridge >= 0) || math.IsInf(opts.ridge, 0) {
		return fmt.Errorf("--ridge %g: use a finite value of 0 or more, such as %g", opts.ridge, analysis.DefaultRidge)
	}
	switch {
	case opts.eval && opts.scorePath != "":
		return errors.New("--score and --eval are both set: give --score to score inputs, or --eval with --in-dist and --out-dist")
	case opts.eval && (opts.inDistPath == "" || opts.outDistPath == ""):
		return fmt.Errorf("--eval needs --in-dist and --out-dist (got %q and %q)", opts.inDistPath, opts.outDistPath)
	case !opts.eval && (opts.inDistPath != "" || opts.outDistPath != ""):
		return errors.New("--in-dist and --out-dist need --eval: add it")
	case !opts.eval && opts.scorePath == "":
		return errors.New("nothing to score: give --score DATA, or --eval with --in-dist and --out-dist")
	}
	return nil
}

// oodInput is one scored input in the JSON output.
type oodInput struct {
	Name         string  `json:"name"`
	Score        float64 `json:"score"`
	NearestClass string  `json:"nearest_class"`
}

// oodSet is a scored set in the JSON output of --eval.
type oodSet struct {
	Data      string     `json:"data"`
	Examples  int        `json:"examples"`
	MeanScore float64    `json:"mean_score"`
	Scores    []oodInput `json:"scores"`
}

// oodJSON is the --json output of "m3ae-edge ood". --score fills
// ScoreData and Scores, and --eval the rest.
type oodJSON struct {
	embeddingSource
	FitData    string `json:"fit_data"`
	LabelField string `json:"label_field,omitempty"`
	// FitExamples and FitUnlabelled count the labelled examples fitted
	// and those left out.
	FitExamples   int      `json:"fit_examples"`
	FitUnlabelled int      `json:"fit_unlabelled"`
	Classes       []string `json:"classes"`
	Ridge         float64  `json:"ridge"`
	// Convention states how to read the figures.
	Convention string `json:"convention"`

	ScoreData string     `json:"score_data,omitempty"`
	Scores    []oodInput `json:"scores,omitempty"`

	InDist     *oodSet                  `json:"in_dist,omitempty"`
	OutDist    *oodSet                  `json:"out_dist,omitempty"`
	AUROC      *float64                 `json:"auroc,omitempty"`
	FPRAt95TPR *analysis.OperatingPoint `json:"fpr_at_95_tpr,omitempty"`
}

const oodConvention = "score: Mahalanobis distance to the nearest class mean, lower is more in-distribution; " +
	"AUROC and FPR at 95 % TPR take in-distribution as the positive class"

func runOOD(cmd *cobra.Command, logger *slog.Logger, opts oodOptions) error {
	embedder, err := opts.embedding.load(logger)
	if err != nil {
		return err
	}
	fit, err := readProbeExamples("--fit", opts.fitPath, opts.labelField, opts.limitFit)
	if err != nil {
		return err
	}
	out := oodJSON{embeddingSource: embedder.source, FitData: opts.fitPath, Ridge: opts.ridge, Convention: oodConvention}
	var fitExamples []evaluate.Example
	fitExamples, out.FitUnlabelled = evaluate.Labelled(fit.examples)
	if len(fitExamples) == 0 {
		return fmt.Errorf("--fit %s has no labelled examples: give a file whose %q field contains each example's class, such as a dataset that m3ae-edge data emoji wrote, or a folder with one subfolder per class",
			opts.fitPath, opts.labelField)
	}
	if out.FitUnlabelled > 0 {
		logger.Warn("left out --fit examples without a label", "examples", out.FitUnlabelled, "field", opts.labelField)
	}
	if fit.fromJSONL {
		out.LabelField = opts.labelField
	}
	out.FitExamples = len(fitExamples)

	// Read every set before embedding, so a wrong path fails at once.
	sets := [][]evaluate.Example{fitExamples}
	paths := []struct{ flag, path string }{{"--score", opts.scorePath}}
	if opts.eval {
		paths = []struct{ flag, path string }{{"--in-dist", opts.inDistPath}, {"--out-dist", opts.outDistPath}}
	}
	for _, p := range paths {
		examples, err := readScoreExamples(p.flag, p.path, opts.limit)
		if err != nil {
			return err
		}
		sets = append(sets, examples)
	}

	logger.Info("embedding", "model", out.Model, "fit", len(fitExamples), "scored", countExamples(sets[1:]),
		"input", embedder.input, "pooling", embedder.pool)
	embeddings, err := embedder.embedSets(cmd, sets)
	if err != nil {
		return err
	}
	model, err := analysis.FitGaussians(embeddings[0], evaluate.Labels(fitExamples), opts.ridge)
	if err != nil {
		return fmt.Errorf("--fit %s: %w", opts.fitPath, err)
	}
	out.Classes = model.Classes
	logger.Info("fitted Gaussians", "classes", len(model.Classes), "dim", model.Dim, "ridge", opts.ridge)

	scored := make([][]oodInput, len(sets)-1)
	for i := range scored {
		if scored[i], err = scoreInputs(model, sets[i+1], embeddings[i+1]); err != nil {
			return err
		}
	}
	if opts.eval {
		if err := evaluateOOD(&out, opts, scored[0], scored[1]); err != nil {
			return err
		}
		err = printOODEval(cmd.OutOrStdout(), out)
	} else {
		out.ScoreData, out.Scores = opts.scorePath, scored[0]
		err = printOODScores(cmd.OutOrStdout(), out.Scores)
	}
	if err != nil {
		return err
	}
	if opts.jsonPath != "" {
		if _, err := writeFileAtomic(opts.jsonPath, func(w io.Writer) error { return writeJSON(w, out) }); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
		logger.Info("wrote scores", "path", opts.jsonPath)
	}
	return nil
}

func countExamples(sets [][]evaluate.Example) int {
	n := 0
	for _, set := range sets {
		n += len(set)
	}
	return n
}

func scoreInputs(model *analysis.GaussianModel, examples []evaluate.Example, embeddings [][]float32) ([]oodInput, error) {
	inputs := make([]oodInput, len(examples))
	for i, embedding := range embeddings {
		score, class, err := model.Score(embedding)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", examples[i].Name, err)
		}
		inputs[i] = oodInput{Name: examples[i].Name, Score: score, NearestClass: model.Classes[class]}
	}
	return inputs, nil
}

// evaluateOOD fills the --eval fields of out from the two sets' scores.
func evaluateOOD(out *oodJSON, opts oodOptions, in, outOfDist []oodInput) error {
	inScores, outScores := inputScores(in), inputScores(outOfDist)
	auroc, err := analysis.AUROC(inScores, outScores)
	if err != nil {
		return err
	}
	point, err := analysis.FPRAt95TPR(inScores, outScores)
	if err != nil {
		return err
	}
	out.InDist = &oodSet{Data: opts.inDistPath, Examples: len(in), MeanScore: mean(inScores), Scores: in}
	out.OutDist = &oodSet{Data: opts.outDistPath, Examples: len(outOfDist), MeanScore: mean(outScores), Scores: outOfDist}
	out.AUROC, out.FPRAt95TPR = &auroc, &point
	return nil
}

func inputScores(inputs []oodInput) []float64 {
	scores := make([]float64, len(inputs))
	for i, input := range inputs {
		scores[i] = input.Score
	}
	return scores
}

func mean(values []float64) float64 {
	var sum float64
	for _, v := range values {
		sum += v
	}
	return sum / float64(len(values))
}

// printOODScores writes one line per input: the score, the nearest class
// and the input's name.
func printOODScores(w io.Writer, scores []oodInput) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "score\tnearest class\tinput")
	for _, s := range scores {
		fmt.Fprintf(tw, "%.4f\t%s\t%s\n", s.Score, s.NearestClass, s.Name)
	}
	return tw.Flush()
}

// printOODEval writes the --eval figures as a table.
func printOODEval(w io.Writer, out oodJSON) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s (quantization %s), %s embeddings, %s pooling\n", out.Model, out.Quantization, out.Input, out.Pooling)
	fmt.Fprintf(tw, "fit\t%s of %s in %s, ridge %g\n", countNoun(out.FitExamples, "example"), out.FitData, countNoun(len(out.Classes), "class"), out.Ridge)
	fmt.Fprintf(tw, "in-distribution\t%s of %s, mean score %.4f\n", countNoun(out.InDist.Examples, "input"), out.InDist.Data, out.InDist.MeanScore)
	fmt.Fprintf(tw, "out-of-distribution\t%s of %s, mean score %.4f\n", countNoun(out.OutDist.Examples, "input"), out.OutDist.Data, out.OutDist.MeanScore)
	fmt.Fprintf(tw, "AUROC\t%s (50 %% is chance and 100 %% perfect, with in-distribution as the positive class scoring lower)\n", percent(*out.AUROC))
	p := out.FPRAt95TPR
	fmt.Fprintf(tw, "FPR at 95 %% TPR\t%s (threshold %.4f accepts %s of in-distribution inputs)\n", percent(p.FPR), p.Threshold, percent(p.TPR))
	return tw.Flush()
}

// readScoreExamples reads inputs to score from a JSONL captions file, a
// folder of images searched recursively or one image file, and keeps
// limit of them (0 keeps all). Labels are not read.
func readScoreExamples(flag, path string, limit int) ([]evaluate.Example, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: give a JSONL captions file, a folder of images or an image file", flag, path, err)
	}
	var examples []evaluate.Example
	switch {
	case info.IsDir():
		examples, err = readImageTree(path)
	case isImageFile(path):
		examples = []evaluate.Example{{Name: path, ImagePath: path}}
	default:
		examples, err = evaluate.ReadCaptions(path, "")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	return evaluate.Subsample(examples, limit), nil
}

func isImageFile(path string) bool {
	return slices.Contains(imageExtensions, strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), "."))
}

// readImageTree lists every image file below root as an unlabelled
// example, in lexical path order.
func readImageTree(root string) ([]evaluate.Example, error) {
	var examples []evaluate.Example
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if entry.Type().IsRegular() && isImageFile(path) {
			examples = append(examples, evaluate.Example{Name: path, ImagePath: path})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(examples) == 0 {
		return nil, fmt.Errorf("%s contains no .png, .jpg or .jpeg files", root)
	}
	return examples, nil
}
