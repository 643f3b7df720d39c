package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/m3ae-edge/m3ae-edge/analysis"
	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/evaluate"
)

// tsneOptions are the flags of "m3ae-edge tsne".
type tsneOptions struct {
	embedding            embeddingFlags
	dataPath, labelField string
	limit                int
	outPath, csvPath     string
	width, height        int
	tsne                 analysis.TSNEOptions
}

// newTSNECommand returns "m3ae-edge tsne", which draws a t-SNE map of a
// labelled set's embeddings.
func newTSNECommand() *cobra.Command {
	opts := tsneOptions{tsne: analysis.DefaultTSNEOptions(), width: 900, height: 700}
	cmd := &cobra.Command{
		Use:   "tsne [--model FILE] --data DATA --out PLOT.png [--label-field FIELD]",
		Short: "Map the embeddings of a labelled set to 2-D with t-SNE and plot them by label",
		Long: `tsne embeds every example of a labelled set, by default its image alone
with CLS pooling, maps the embeddings to two dimensions with exact t-SNE
(van der Maaten and Hinton 2008) and draws them as a scatter plot coloured
by label. It also writes the 2-D points as CSV with the header
x,y,label,name, one row per example in the order of --data.

--data names a JSONL captions file whose --label-field gives each
example's class, or a folder with one subfolder of images per class.
Examples without a label are left out and counted.

t-SNE runs on Euclidean distances between the embeddings, in one
goroutine, so the same flags give the same points. It takes time
proportional to the square of the number of examples times --iterations,
and 8 bytes of memory per pair of examples, so --limit helps on large
sets. The defaults are scikit-learn's, but t-SNE starts from random
points drawn with --seed where scikit-learn starts from PCA. Without
--model it maps the default model embedded in m3ae-edge.`,
		Example: `  m3ae-edge tsne --model emoji.int8.safetensors --data data/emoji/test.jsonl --out tsne.png
  m3ae-edge tsne --data data/emoji/train.jsonl --limit 2000 --input both --pooling mean --out tsne-both.png
  m3ae-edge tsne --data photos/test --perplexity 10 --out photos.png --csv photos-points.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			if err := checkTSNEOptions(&opts); err != nil {
				return err
			}
			return runTSNE(cmd, logger, opts)
		},
	}
	flags := cmd.Flags()
	opts.embedding.register(flags)
	flags.StringVar(&opts.dataPath, "data", "", "examples to map: a JSONL captions file or a folder with one subfolder per class (required)")
	flags.StringVar(&opts.labelField, "label-field", "group", "JSONL field that contains each example's class: a string or a number")
	flags.IntVar(&opts.limit, "limit", 0, "number of examples used, spread evenly over --data; 0 uses all")
	flags.StringVar(&opts.outPath, "out", "", "PNG file to write the scatter plot to (required)")
	flags.StringVar(&opts.csvPath, "csv", "", "CSV file to write the 2-D points to (default: --out with the extension .csv)")
	flags.IntVar(&opts.width, "width", opts.width, "width of the plot in pixels")
	flags.IntVar(&opts.height, "height", opts.height, "height of the plot in pixels")
	flags.Float64Var(&opts.tsne.Perplexity, "perplexity", opts.tsne.Perplexity,
		"effective number of neighbours of each example, above 0 and below the number of examples less 1")
	flags.IntVar(&opts.tsne.Iterations, "iterations", opts.tsne.Iterations, "number of gradient descent iterations")
	flags.Float64Var(&opts.tsne.LearningRate, "learning-rate", 0,
		"step size of gradient descent, where 0 means automatic: max(N / early exaggeration / 4, 50) for N examples")
	flags.Float64Var(&opts.tsne.EarlyExaggeration, "early-exaggeration", opts.tsne.EarlyExaggeration,
		"factor on the input affinities during the first --exaggeration-iterations, at least 1")
	flags.IntVar(&opts.tsne.ExaggerationIterations, "exaggeration-iterations", opts.tsne.ExaggerationIterations,
		"number of iterations with early exaggeration and momentum 0.5; the rest use momentum 0.8")
	flags.Uint64Var(&opts.tsne.Seed, "seed", opts.tsne.Seed, "seed of the random initial points")
	cmd.MarkFlagRequired("data")
	cmd.MarkFlagRequired("out")
	markFileFlags(cmd, map[string][]string{"model": modelExtensions, "out": {"png"}, "csv": {"csv"}})
	return cmd
}

func checkTSNEOptions(opts *tsneOptions) error {
	if opts.limit < 0 {
		return fmt.Errorf("--limit %d: use 0 for every example or a positive count", opts.limit)
	}
	if opts.width < 1 || opts.height < 1 || opts.width > analysis.MaxScatterSide || opts.height > analysis.MaxScatterSide {
		return fmt.Errorf("--width %d and --height %d: use 1 to %d pixels each", opts.width, opts.height, analysis.MaxScatterSide)
	}
	if opts.csvPath == "" {
		opts.csvPath = strings.TrimSuffix(opts.outPath, filepath.Ext(opts.outPath)) + ".csv"
	}
	if sameFile(opts.outPath, opts.csvPath) {
		return fmt.Errorf("--out %s and --csv %s name one file: give the CSV another name", opts.outPath, opts.csvPath)
	}
	return nil
}

func runTSNE(cmd *cobra.Command, logger *slog.Logger, opts tsneOptions) error {
	embedder, err := opts.embedding.load(logger)
	if err != nil {
		return err
	}
	split, err := readProbeExamples("--data", opts.dataPath, opts.labelField, opts.limit)
	if err != nil {
		return err
	}
	examples, unlabelled := evaluate.Labelled(split.examples)
	if len(examples) == 0 {
		return fmt.Errorf("--data %s has no labelled examples: give a file whose %q field contains each example's class, such as a dataset that m3ae-edge data emoji wrote, or a folder with one subfolder per class",
			opts.dataPath, opts.labelField)
	}
	if unlabelled > 0 {
		logger.Warn("left out examples without a label", "examples", unlabelled, "field", opts.labelField)
	}
	if err := opts.tsne.Validate(len(examples)); err != nil {
		return fmt.Errorf("t-SNE of the %d labelled examples of --data %s: %w: set --perplexity, --iterations, --learning-rate or --early-exaggeration, or use more examples",
			len(examples), opts.dataPath, err)
	}

	logger.Info("embedding", "model", embedder.source.Model, "examples", len(examples),
		"input", embedder.input, "pooling", embedder.pool)
	embeddings, err := embedder.embedSets(cmd, [][]evaluate.Example{examples})
	if err != nil {
		return err
	}

	n := len(examples)
	logger.Info("running t-SNE", "points", n, "dim", len(embeddings[0][0]), "iterations", opts.tsne.Iterations,
		"perplexity", opts.tsne.Perplexity, "affinity_bytes", 8*int64(n)*int64(n-1)/2)
	bar := newProgressBarOf(cmd.ErrOrStderr(), "t-SNE", "iterations")
	start := time.Now()
	result, err := analysis.TSNE(cmd.Context(), embeddings[0], opts.tsne, bar.Update)
	bar.Finish()
	if err != nil {
		return err
	}
	logger.Info("ran t-SNE", "elapsed", time.Since(start).Round(time.Millisecond),
		"kl_divergence", result.KLDivergence, "learning_rate", result.LearningRate)

	labels := evaluate.Labels(examples)
	title := fmt.Sprintf("t-SNE of %d %s embeddings (%s pooling, perplexity %g), %s",
		n, embedder.input, embedder.pool, opts.tsne.Perplexity, filepath.Base(embedder.source.Model))
	plot, err := analysis.ScatterPlotPNG(result.Points, labels, analysis.ScatterOptions{Title: title, Width: opts.width, Height: opts.height})
	if err != nil {
		return err
	}
	if _, err := writeFileAtomic(opts.outPath, func(w io.Writer) error {
		_, err := w.Write(plot)
		return err
	}); err != nil {
		return fmt.Errorf("write --out: %w", err)
	}
	logger.Info("wrote scatter plot", "path", opts.outPath, "width", opts.width, "height", opts.height, "bytes", len(plot))
	if _, err := writeFileAtomic(opts.csvPath, func(w io.Writer) error { return writePointsCSV(w, result.Points, examples) }); err != nil {
		return fmt.Errorf("write --csv: %w", err)
	}
	logger.Info("wrote points", "path", opts.csvPath, "rows", n)

	_, err = fmt.Fprintf(cmd.OutOrStdout(), "t-SNE of %s in %s: KL divergence %.4f nats after %s\nplot %s, points %s\n",
		countNoun(n, "example"), countNoun(countDistinct(labels), "class"), result.KLDivergence, countNoun(opts.tsne.Iterations, "iteration"), opts.outPath, opts.csvPath)
	return err
}

// writePointsCSV writes the header x,y,label,name and one row per point.
func writePointsCSV(w io.Writer, points [][2]float64, examples []evaluate.Example) error {
	out := csv.NewWriter(w)
	if err := out.Write([]string{"x", "y", "label", "name"}); err != nil {
		return err
	}
	for i, point := range points {
		row := []string{
			strconv.FormatFloat(point[0], 'g', -1, 64),
			strconv.FormatFloat(point[1], 'g', -1, 64),
			examples[i].Label,
			examples[i].Name,
		}
		if err := out.Write(row); err != nil {
			return err
		}
	}
	out.Flush()
	return out.Error()
}

func countDistinct(values []string) int {
	seen := map[string]bool{}
	for _, v := range values {
		seen[v] = true
	}
	return len(seen)
}

// embeddingFlags are the flags of tsne and ood that choose the model and
// what it embeds.
type embeddingFlags struct {
	modelPath, pooling, input string
	randomInit                bool
	initSeed                  uint64
}

func (f *embeddingFlags) register(flags *pflag.FlagSet) {
	flags.StringVar(&f.modelPath, "model", "", modelFlagUsage)
	flags.StringVar(&f.pooling, "pooling", "cls", "pooling of the encoder outputs: cls (the CLS output) or mean (the mean of the image patch and caption token outputs)")
	flags.StringVar(&f.input, "input", "image", "what the encoder sees of each example: image, text (the caption) or both")
	flags.BoolVar(&f.randomInit, "random-init", false, "use a model of the same architecture with freshly initialized weights in place of the trained ones")
	flags.Uint64Var(&f.initSeed, "init-seed", 1, "seed of the weights of --random-init")
}

// embeddingSource describes the model and the embeddings in JSON outputs.
type embeddingSource struct {
	Model        string  `json:"model"`
	Quantization string  `json:"quantization"`
	RandomInit   bool    `json:"random_init"`
	InitSeed     *uint64 `json:"init_seed,omitempty"`
	Input        string  `json:"input"`
	Pooling      string  `json:"pooling"`
}

// embedder is a loaded model with the input and pooling of embeddingFlags.
type embedder struct {
	pipeline *core.Pipeline
	input    analysis.Input
	pool     core.Pooling
	source   embeddingSource
}

// load parses the flags and loads the model, or with --random-init a
// fresh model of the same architecture.
func (f *embeddingFlags) load(logger *slog.Logger) (*embedder, error) {
	pool, err := parsePooling(f.pooling)
	if err != nil {
		return nil, err
	}
	input, err := parseEmbeddingInput(f.input)
	if err != nil {
		return nil, err
	}
	pipeline, described, err := probePipeline(logger, probeOptions{modelPath: f.modelPath, randomInit: f.randomInit, initSeed: f.initSeed})
	if err != nil {
		return nil, err
	}
	return &embedder{
		pipeline: pipeline,
		input:    input,
		pool:     pool,
		source: embeddingSource{
			Model:        described.Model,
			Quantization: described.Quantization,
			RandomInit:   described.RandomInit,
			InitSeed:     described.InitSeed,
			Input:        input.String(),
			Pooling:      pool.String(),
		},
	}, nil
}

// embedSets embeds each set of examples with one progress bar over all
// of them.
func (e *embedder) embedSets(cmd *cobra.Command, sets [][]evaluate.Example) ([][][]float32, error) {
	total := 0
	for _, set := range sets {
		total += len(set)
	}
	bar := newProgressBar(cmd.ErrOrStderr(), "embedding")
	defer bar.Finish()
	out := make([][][]float32, len(sets))
	done := 0
	for i, set := range sets {
		var err error
		out[i], err = analysis.EmbedExamples(cmd.Context(), e.pipeline, set, e.input, e.pool,
			func(n, _ int) { bar.Update(done+n, total) })
		if err != nil {
			return nil, err
		}
		done += len(set)
	}
	return out, nil
}

func parseEmbeddingInput(name string) (analysis.Input, error) {
	for _, input := range []analysis.Input{analysis.InputImage, analysis.InputText, analysis.InputBoth} {
		if name == input.String() {
			return input, nil
		}
	}
	return 0, fmt.Errorf("--input %q: use image, text or both", name)
}
