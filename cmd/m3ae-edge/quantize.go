package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/quantize"
)

// quantizeOptions are the flags of "m3ae-edge quantize".
type quantizeOptions struct {
	inPath, outPath, reportPath string
	captionsPath                string
	limit                       int
	pooling                     string
	requireTargets              bool
	fidelity                    quantize.FidelityOptions
}

// newQuantizeCommand returns "m3ae-edge quantize", which converts a float32
// model file to int8 and reports what the conversion costs.
func newQuantizeCommand() *cobra.Command {
	opts := quantizeOptions{fidelity: quantize.DefaultFidelityOptions()}
	cmd := &cobra.Command{
		Use:   "quantize --in model.safetensors --out model.int8.safetensors",
		Short: "Convert a float32 model file to int8 and report its fidelity",
		Long: `quantize converts a float32 model file to the int8 scheme
int8-symmetric-v1 (docs/FORMAT.md): every dense kernel is stored as int8
with one float32 scale per output column, the text embedding table as int8
with one scale per row, and everything else stays float32.

It prints each quantized tensor's maximum and RMS error after
dequantization and the file sizes. With --captions it also runs both models
on the examples of a JSONL captions file ({"image": PATH, "caption": TEXT}
per line, image paths relative to the file) and compares them: embedding
cosine similarity for the image alone, the caption alone and both,
reconstruction PSNR of the hidden image patches with the same masks, and
top-1 agreement at the hidden text positions. A targets section says which
release targets pass: size ratio <= 0.27, cosine mean >= 0.999 and worst
>= 0.99, PSNR within 0.1 dB, top-1 agreement >= 99 %. --report writes all
of it as JSON.`,
		Example: `  m3ae-edge quantize --in emoji.safetensors --out emoji.int8.safetensors
  m3ae-edge quantize --in emoji.safetensors --out emoji.int8.safetensors \
      --captions data/emoji/test.jsonl --limit 200 --report quantize-report.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			switch opts.pooling {
			case "cls":
				opts.fidelity.Pooling = core.PoolCLS
			case "mean":
				opts.fidelity.Pooling = core.PoolMean
			default:
				return fmt.Errorf("--pooling %q: use cls or mean", opts.pooling)
			}
			if opts.limit < 0 {
				return fmt.Errorf("--limit %d: use 0 for every example or a positive count", opts.limit)
			}
			for _, ratio := range []struct {
				flag  string
				value float64
			}{{"--image-mask-ratio", opts.fidelity.ImageMaskRatio}, {"--text-mask-ratio", opts.fidelity.TextMaskRatio}} {
				if math.IsNaN(ratio.value) || ratio.value < 0 || ratio.value > 1 {
					return fmt.Errorf("%s %g is out of range: use a fraction from 0 to 1", ratio.flag, ratio.value)
				}
			}
			return runQuantize(cmd, logger, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.inPath, "in", "", "float32 model file to quantize (required)")
	flags.StringVar(&opts.outPath, "out", "", "int8 model file to write (required)")
	flags.StringVar(&opts.reportPath, "report", "", "JSON report to write (default none)")
	flags.StringVar(&opts.captionsPath, "captions", "", "JSONL captions file of the examples that fidelity is measured on (default none: no fidelity figures)")
	flags.IntVar(&opts.limit, "limit", 0, "number of examples read from --captions, from the top; 0 reads all")
	flags.Uint64Var(&opts.fidelity.Seed, "seed", 0, "seed of the reconstruction masks; example i uses seed+i (default 0)")
	flags.Float64Var(&opts.fidelity.ImageMaskRatio, "image-mask-ratio", opts.fidelity.ImageMaskRatio, "fraction of image patches hidden in the reconstructions, 0 to 1")
	flags.Float64Var(&opts.fidelity.TextMaskRatio, "text-mask-ratio", opts.fidelity.TextMaskRatio, "fraction of text positions hidden in the reconstructions, 0 to 1")
	flags.StringVar(&opts.pooling, "pooling", "cls", "embedding compared: cls (the CLS output) or mean (the mean of the token outputs)")
	flags.BoolVar(&opts.requireTargets, "require-targets", false, "exit with an error when a target is missed or not measured, after writing the files")
	cmd.MarkFlagRequired("in")
	cmd.MarkFlagRequired("out")
	return cmd
}

func runQuantize(cmd *cobra.Command, logger *slog.Logger, opts quantizeOptions) error {
	// Read the examples first, so a bad --captions fails before any file
	// is written.
	var examples []quantize.Example
	if opts.captionsPath != "" {
		var err error
		if examples, err = quantize.ReadExamples(opts.captionsPath, opts.limit); err != nil {
			return err
		}
	}

	// Read the float32 file and quantize it.
	data, err := readInputFile("--in", opts.inPath, readModelBytes)
	if err != nil {
		return err
	}
	float32File, err := core.ReadModelFile(data)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.inPath, err)
	}
	logger.Info("read float32 model", "path", opts.inPath, "bytes", len(data))
	int8File, tensors, err := quantize.QuantizeModelFile(float32File)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.inPath, err)
	}

	// Write the int8 file, then read it back, so the fidelity figures are
	// those of the file as written.
	int8Size, err := writeFileAtomic(opts.outPath, func(w io.Writer) error { return core.WriteModelFile(w, int8File) })
	if err != nil {
		return fmt.Errorf("write int8 model file: %w", err)
	}
	logger.Info("wrote int8 model", "path", opts.outPath, "bytes", int8Size)
	sizes := quantize.NewSizes(int64(len(data)), int8Size)

	var fidelity *quantize.FidelityReport
	if opts.captionsPath != "" {
		if fidelity, err = measureFidelity(cmd, logger, float32File, examples, opts); err != nil {
			return err
		}
	}

	report := quantize.NewReport(sizes, tensors, fidelity, quantize.DefaultTargets())
	if err := printReport(cmd.OutOrStdout(), report); err != nil {
		return err
	}
	if opts.reportPath != "" {
		if _, err := writeFileAtomic(opts.reportPath, func(w io.Writer) error { return writeReportJSON(w, report) }); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		logger.Info("wrote report", "path", opts.reportPath)
	}
	if !report.TargetsMet {
		logger.Warn("targets missed", "summary", report.Summary)
		if opts.requireTargets {
			return fmt.Errorf("--require-targets: %s", report.Summary)
		}
	}
	return nil
}

// measureFidelity compares the float32 model with the int8 file at
// opts.outPath on examples, read from opts.captionsPath, with a progress
// bar. It stops at the next example once the command's context is done,
// as on Ctrl-C.
func measureFidelity(cmd *cobra.Command, logger *slog.Logger, float32File *core.ModelFile, examples []quantize.Example, opts quantizeOptions) (*quantize.FidelityReport, error) {
	float32Pipeline, err := core.NewPipeline(float32File)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.inPath, err)
	}
	int8Data, err := os.ReadFile(opts.outPath)
	if err != nil {
		return nil, err
	}
	int8Pipeline, err := core.Load(int8Data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opts.outPath, err)
	}
	logger.Info("measuring fidelity", "captions", opts.captionsPath, "examples", len(examples))
	bar := newProgressBarOf(cmd.ErrOrStderr(), "fidelity", "examples")
	defer bar.Finish()
	return quantize.MeasureFidelity(cmd.Context(), float32Pipeline, int8Pipeline, examples, opts.fidelity, bar.Update)
}

// printReport writes the report as tables: the tensors, the sizes, the
// fidelity figures when measured and the targets.
func printReport(w io.Writer, r *quantize.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tensor\tshape\tscales\tmax |error|\tRMS error\trelative RMS")
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "%s\t%v\t%s\t%.3g\t%.3g\t%.2f %%\n",
			t.Name, t.Shape, t.Granularity, t.MaxAbsError, t.RMSError, 100*t.RelativeRMSError)
	}
	fmt.Fprintf(tw, "\nfile size: float32 %s, int8 %s, ratio %.4f\n",
		countNoun(r.Sizes.Float32Bytes, "byte"), countNoun(r.Sizes.Int8Bytes, "byte"), r.Sizes.Ratio)

	if f := r.Fidelity; f != nil {
		fmt.Fprintf(tw, "\nfidelity on %s (image mask ratio %g, text mask ratio %g, mask seed %d, %s pooling):\n",
			countNoun(f.Examples, "example"), f.ImageMaskRatio, f.TextMaskRatio, f.Seed, f.Pooling)
		fmt.Fprintln(tw, "embedding cosine\tmean\tworst\texamples")
		for _, kind := range []struct {
			name  string
			stats quantize.CosineStats
		}{{"image", f.ImageEmbedding}, {"text", f.TextEmbedding}, {"paired", f.PairedEmbedding}} {
			fmt.Fprintf(tw, "%s\t%.6f\t%.6f\t%d\n", kind.name, kind.stats.Mean, kind.stats.Worst, kind.stats.Count)
		}
		p := f.Reconstruction
		fmt.Fprintf(tw, "reconstruction PSNR of hidden patches: float32 %.3f dB, int8 %.3f dB, difference %.4f dB (largest per example %.4f dB, %s)\n",
			p.Float32DB, p.Int8DB, p.DiffDB, p.MaxExampleDiffDB, countNoun(p.Count, "example"))
		a := f.TokenTop1
		fmt.Fprintf(tw, "masked token top-1 agreement: %d of %s (%.2f %%)\n", a.Agree, countNoun(a.Total, "hidden token"), 100*a.Rate)
	}

	fmt.Fprintln(tw, "\ntarget\tstatus\tvalue\twant")
	for _, t := range r.Targets {
		value := "-"
		if t.Value != nil {
			value = fmt.Sprintf("%.6g", *t.Value)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Status, value, t.Want)
	}
	fmt.Fprintln(tw, r.Summary)
	return tw.Flush()
}

func writeReportJSON(w io.Writer, r *quantize.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
