package main

import (
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/evaluate"
)

// evaluateOptions are the flags of "m3ae-edge evaluate".
type evaluateOptions struct {
	modelPath, captionsPath, trainCaptionsPath, jsonPath string
	limit                                                int
	gridPath                                             string
	gridExamples                                         int
	eval                                                 evaluate.Options
}

// newEvaluateCommand returns "m3ae-edge evaluate", which measures a model's
// reconstructions and masked-token predictions against baselines.
func newEvaluateCommand() *cobra.Command {
	opts := evaluateOptions{eval: evaluate.DefaultOptions()}
	cmd := &cobra.Command{
		Use:   "evaluate [--model FILE] --captions FILE [--train-captions FILE]",
		Short: "Measure reconstruction PSNR and masked-token accuracy against baselines",
		Long: `evaluate runs the model on the examples of a JSONL captions file
({"image": PATH, "caption": TEXT} per line, image paths relative to the
file) and measures, each beside a baseline that needs no model:

  - Image reconstruction PSNR with --image-mask-ratio of the patches hidden,
    in dB of 8-bit pixels against the preprocessed original, over the
    hidden patches and over the whole image (whose visible patches are
    exact), averaged over the images. The baseline fills each hidden patch
    with the mean colour of the image's visible patches. An exact
    reconstruction counts as 100 dB.
  - Masked-token top-1 and top-5 accuracy over the hidden caption tokens,
    from the same pass, with --text-mask-ratio of the text positions
    hidden (pads included, as in training).
  - The same accuracies with the whole caption hidden and the whole image
    visible: the caption predicted from the image alone.

The token baseline always predicts the most frequent tokens of the
--train-captions file, counted with the model's tokenizer on the tokens
the model sees; without that file it is not measured. Example i is masked
with seed --seed+i, so the figures are the same on every run. Float32 and
int8 model files both work. Without --model it evaluates the default model
embedded in m3ae-edge. --json writes every figure, with pooled MSEs and
counts, as one JSON object.`,
		Example: `  m3ae-edge evaluate --model emoji.int8.safetensors \
      --captions data/emoji/test.jsonl --train-captions data/emoji/train.jsonl --json evaluate.json
  m3ae-edge evaluate --captions data/emoji/test.jsonl --limit 100 --seed 7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			if opts.limit < 0 {
				return fmt.Errorf("--limit %d: use 0 for every example or a positive count", opts.limit)
			}
			if opts.gridExamples < 1 || opts.gridExamples > maxGridExamples {
				return fmt.Errorf("--grid-examples %d: use 1 to %d", opts.gridExamples, maxGridExamples)
			}
			return runEvaluate(cmd, logger, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.modelPath, "model", "", modelFlagUsage)
	flags.StringVar(&opts.captionsPath, "captions", "", "JSONL captions file of the held-out examples (required)")
	flags.StringVar(&opts.trainCaptionsPath, "train-captions", "", "JSONL captions file whose token frequencies give the token baseline (default none: no token baseline)")
	flags.Uint64Var(&opts.eval.Seed, "seed", 0, "seed of the masks; example i uses seed+i (default 0)")
	flags.IntVar(&opts.limit, "limit", 0, "number of examples evaluated, spread evenly over --captions; 0 evaluates all")
	flags.Float64Var(&opts.eval.ImageMaskRatio, "image-mask-ratio", opts.eval.ImageMaskRatio, "fraction of image patches hidden, above 0 and below 1")
	flags.Float64Var(&opts.eval.TextMaskRatio, "text-mask-ratio", opts.eval.TextMaskRatio, "fraction of text positions hidden in the masked pass, pads included, 0 to 1")
	flags.StringVar(&opts.jsonPath, "json", "", "JSON file to write the figures to (default none)")
	flags.StringVar(&opts.gridPath, "grid", "", "PNG file that shows --grid-examples evaluated examples with the masks of the masked pass: original, masked and reconstructed image, caption and predicted tokens (default none)")
	flags.IntVar(&opts.gridExamples, "grid-examples", 8, "number of examples drawn with --grid, spread evenly over the evaluated ones")
	cmd.MarkFlagRequired("captions")
	markFileFlags(cmd, map[string][]string{"model": modelExtensions, "captions": {"jsonl"}, "train-captions": {"jsonl"}, "json": {"json"}, "grid": {"png"}})
	return cmd
}

// evaluateJSON is the --json output of "m3ae-edge evaluate": the inputs,
// the wall time and the report's fields.
type evaluateJSON struct {
	Model         string  `json:"model"`
	Quantization  string  `json:"quantization"`
	Captions      string  `json:"captions"`
	TrainCaptions string  `json:"train_captions,omitempty"`
	Seconds       float64 `json:"seconds"`
	*evaluate.Report
}

func runEvaluate(cmd *cobra.Command, logger *slog.Logger, opts evaluateOptions) error {
	mf, err := readModelFile(opts.modelPath)
	if err != nil {
		return err
	}
	pipeline, err := core.NewPipeline(mf)
	if err != nil {
		return modelFileError("--model", opts.modelPath, err)
	}
	examples, err := evaluate.ReadCaptions(opts.captionsPath, "")
	if err != nil {
		return fmt.Errorf("--captions: %w", err)
	}
	examples = evaluate.Subsample(examples, opts.limit)
	if opts.trainCaptionsPath != "" {
		if opts.eval.Frequencies, err = countTrainTokens(pipeline, opts.trainCaptionsPath); err != nil {
			return err
		}
	}

	logger.Info("evaluating", "model", modelLabel(opts.modelPath), "quantization", mf.Quantization,
		"captions", opts.captionsPath, "examples", len(examples))
	bar := newProgressBar(cmd.ErrOrStderr(), "evaluating")
	opts.eval.Progress = bar.Update
	start := time.Now()
	report, err := evaluate.Evaluate(cmd.Context(), pipeline, examples, opts.eval)
	bar.Finish()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	out := evaluateJSON{
		Model:         modelLabel(opts.modelPath),
		Quantization:  mf.Quantization,
		Captions:      opts.captionsPath,
		TrainCaptions: opts.trainCaptionsPath,
		Seconds:       elapsed.Seconds(),
		Report:        report,
	}
	logger.Info("evaluated", "examples", report.Examples, "elapsed", elapsed.Round(time.Millisecond))

	if err := printEvaluation(cmd.OutOrStdout(), out, opts.eval); err != nil {
		return err
	}
	if opts.jsonPath != "" {
		if _, err := writeFileAtomic(opts.jsonPath, func(w io.Writer) error { return writeJSON(w, out) }); err != nil {
			return fmt.Errorf("--json: %w", err)
		}
		logger.Info("wrote figures", "path", opts.jsonPath)
	}
	if opts.gridPath != "" {
		if err := writeEvaluationGrid(pipeline, examples, opts); err != nil {
			return err
		}
		logger.Info("wrote reconstruction grid", "path", opts.gridPath, "examples", min(opts.gridExamples, len(examples)))
	}
	return nil
}

// maxGridExamples bounds --grid-examples, which keeps the PNG under about
// 30,000 pixels tall.
const maxGridExamples = 100

// writeEvaluationGrid reconstructs gridExamples of the evaluated examples,
// spread evenly, with the masks that Evaluate drew for them (seed+i for
// example i), and writes their reconstruction grids one under another as a
// PNG.
func writeEvaluationGrid(pipeline *core.Pipeline, examples []evaluate.Example, opts evaluateOptions) error {
	count := min(opts.gridExamples, len(examples))
	var rows []*image.RGBA
	width, height := 0, 0
	for k := range count {
		i := k * len(examples) / count
		example := examples[i]
		var img image.Image
		if example.HasImage() {
			var err error
			if img, err = example.LoadImage(); err != nil {
				return fmt.Errorf("--grid: %w", err)
			}
		}
		result, err := pipeline.Reconstruct(img, example.Caption, core.ReconstructOptions{
			ImageMaskRatio: opts.eval.ImageMaskRatio,
			TextMaskRatio:  opts.eval.TextMaskRatio,
			Seed:           opts.eval.Seed + uint64(i),
		})
		if err != nil {
			return fmt.Errorf("--grid: %s: %w", example.Name, err)
		}
		row := renderReconstructionGrid(result)
		rows = append(rows, row)
		width = max(width, row.Bounds().Dx())
		height += row.Bounds().Dy()
	}

	grid := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(grid, grid.Bounds(), image.NewUniform(gridBackground), image.Point{}, draw.Src)
	top := 0
	for _, row := range rows {
		draw.Draw(grid, row.Bounds().Add(image.Pt(0, top)), row, image.Point{}, draw.Src)
		top += row.Bounds().Dy()
	}
	if _, err := writeFileAtomic(opts.gridPath, func(w io.Writer) error { return png.Encode(w, grid) }); err != nil {
		return fmt.Errorf("write --grid: %w", err)
	}
	return nil
}

// readModelFile reads and decodes the model file at path, or the embedded
// default model when path is empty.
func readModelFile(path string) (*core.ModelFile, error) {
	data, err := readModel("--model", path)
	if err != nil {
		return nil, err
	}
	mf, err := core.ReadModelFile(data)
	if err != nil {
		return nil, modelFileError("--model", path, err)
	}
	return mf, nil
}

// countTrainTokens counts the token ids of the captions of a JSONL
// captions file with the pipeline's tokenizer.
func countTrainTokens(pipeline *core.Pipeline, path string) (*evaluate.TokenFrequencies, error) {
	examples, err := evaluate.ReadCaptions(path, "")
	if err != nil {
		return nil, fmt.Errorf("--train-captions: %w", err)
	}
	var captions []string
	for _, example := range examples {
		if example.Caption != "" {
			captions = append(captions, example.Caption)
		}
	}
	if len(captions) == 0 {
		return nil, fmt.Errorf("--train-captions %s has no captions, only images: give the training split's captions file", path)
	}
	return evaluate.CountTokens(pipeline.Tokenizer(), pipeline.Config().TextLength, captions), nil
}

// printEvaluation writes the figures, measured with opts, as tables.
func printEvaluation(w io.Writer, out evaluateJSON, opts evaluate.Options) error {
	r := out.Report
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s (quantization %s)\n", out.Model, out.Quantization)
	fmt.Fprintf(tw, "examples\t%d of %s, mask seed %d, %.1f s\n", r.Examples, out.Captions, r.Seed, out.Seconds)

	if img := r.Image; img != nil {
		fmt.Fprintf(tw, "\nimage reconstruction, %d of %s hidden (ratio %g), %s\n",
			img.HiddenPatches, countNoun(img.Patches, "patch"), img.ImageMaskRatio, countNoun(img.Examples, "image"))
		fmt.Fprintln(tw, "PSNR in dB, mean over images\thidden patches\twhole image")
		fmt.Fprintf(tw, "model\t%.2f\t%.2f\n", img.Model.HiddenPatches.MeanDB, img.Model.WholeImage.MeanDB)
		fmt.Fprintf(tw, "mean-colour baseline\t%.2f\t%.2f\n", img.MeanColour.HiddenPatches.MeanDB, img.MeanColour.WholeImage.MeanDB)
		if n := img.Model.HiddenPatches.PerfectExamples; n > 0 {
			verb := "were"
			if n == 1 {
				verb = "was"
			}
			fmt.Fprintf(tw, "%s %s reconstructed exactly and count as %g dB\n", countNoun(n, "image"), verb, evaluate.MaxPSNR)
		}
	} else {
		fmt.Fprintln(tw, "\nimage reconstruction: not measured, no example has an image")
	}

	fmt.Fprintln(tw, "\ncaption tokens\ttokens\tmodel top-1\tmodel top-5\tbaseline top-1\tbaseline top-5")
	for _, row := range []struct {
		name   string
		tokens *evaluate.TokenReport
	}{
		{fmt.Sprintf("masked (text %g, image %g)", opts.TextMaskRatio, opts.ImageMaskRatio), r.MaskedTokens},
		{"caption from the image alone (text 1, image 0)", r.CaptionFromImage},
	} {
		if row.tokens == nil {
			fmt.Fprintf(tw, "%s\t0\t-\t-\t-\t-\n", row.name)
			continue
		}
		t := row.tokens
		baseline1, baseline5 := "-", "-"
		if t.Baseline != nil {
			baseline1, baseline5 = percent(t.Baseline.Top1), percent(t.Baseline.Top5)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", row.name, t.Tokens, percent(t.Model.Top1), percent(t.Model.Top5), baseline1, baseline5)
	}
	if b := r.Baseline; b != nil {
		quoted := make([]string, len(b.Top))
		for i, token := range b.Top {
			quoted[i] = strconv.Quote(token)
		}
		fmt.Fprintf(tw, "baseline: the %d most frequent of the %s of %s in %s: %s\n",
			len(b.Top), countNoun(b.Tokens, "token"), countNoun(b.Captions, "caption"), out.TrainCaptions, strings.Join(quoted, " "))
	} else {
		fmt.Fprintln(tw, "baseline: not measured; pass --train-captions")
	}
	return tw.Flush()
}

func percent(fraction float64) string { return fmt.Sprintf("%.2f %%", 100*fraction) }
