package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/export"
	"github.com/m3ae-edge/m3ae-edge/export/onnx"
	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

// Values of export --format.
const (
	exportFormatSafetensors = "safetensors"
	exportFormatONNX        = "onnx"
)

// exportOptions holds the flags of the export command.
type exportOptions struct {
	format        string
	checkpointDir string
	step          int64
	inPath        string
	outPath       string
	models        []string
}

// newExportCommand returns "m3ae-edge export", which writes a training
// checkpoint as a float32 model file, or a checkpoint or model file as
// ONNX models.
func newExportCommand() *cobra.Command {
	var opts exportOptions
	var onnxNames []string
	for _, spec := range onnx.Specs() {
		onnxNames = append(onnxNames, spec.Name())
	}
	cmd := &cobra.Command{
		Use:   "export (--checkpoint RUN_DIR | --format onnx --in MODEL) --out PATH",
		Short: "Write a training checkpoint as a model file, or a model as ONNX",
		Long: `export reads a checkpoint that train saved and writes its model as one
float32 model file (safetensors layout, see docs/FORMAT.md) with the
architecture, the tokenizer vocabulary and the image normalization in its
header. The optimizer state is left out. It fails, listing every variable
that is missing, unused or mis-shaped, when the checkpoint does not match
its architecture.

With --format onnx it writes float32 ONNX models (opset 17) into the
folder --out, from a model file (--in) or from a checkpoint (--checkpoint).
A float32 or an int8 model file works, and int8 weights are dequantized.
There is one ONNX model per task and input modality, named after them:
  ` + strings.Join(onnxNames, ".onnx\n  ") + `.onnx
docs/ONNX.md lists their inputs and outputs.`,
		Example: `  m3ae-edge export --checkpoint runs/emoji --out emoji.safetensors
  m3ae-edge export --checkpoint runs/emoji --step 1000 --out emoji-1000.safetensors
  m3ae-edge export --format onnx --in emoji.int8.safetensors --out emoji-onnx
  m3ae-edge export --format onnx --in emoji.safetensors --out emoji-onnx --models embed-image-text,reconstruct-image-text`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			if err := opts.check(cmd); err != nil {
				return err
			}
			if opts.format == exportFormatONNX {
				return runExportONNX(cmd.OutOrStdout(), logger, opts)
			}
			return runExportSafetensors(cmd.OutOrStdout(), opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.format, "format", exportFormatSafetensors, "output format: safetensors (a model file) or onnx (a folder of ONNX models)")
	flags.StringVar(&opts.checkpointDir, "checkpoint", "", "run folder that train wrote, or one of its checkpoints/step-N folders (required for --format safetensors)")
	flags.Int64Var(&opts.step, "step", -1, "step of the checkpoint to export; -1 means the newest")
	flags.StringVar(&opts.inPath, "in", "", "model file to export with --format onnx, float32 or int8 (default none: give --in or --checkpoint)")
	flags.StringVar(&opts.outPath, "out", "", "model file to write, or with --format onnx the folder to write the ONNX models into (required)")
	flags.StringSliceVar(&opts.models, "models", nil, "ONNX models to write with --format onnx, comma-separated: "+strings.Join(onnxNames, ", ")+" (default all six)")
	cmd.MarkFlagRequired("out")
	return cmd
}

// check rejects flag combinations that the format does not use.
func (opts exportOptions) check(cmd *cobra.Command) error {
	flags := cmd.Flags()
	switch opts.format {
	case exportFormatSafetensors:
		if opts.inPath != "" {
			return fmt.Errorf("--in is only read with --format onnx: to write a model file, give --checkpoint with the run folder")
		}
		if flags.Changed("models") {
			return fmt.Errorf("--models is only read with --format onnx")
		}
		if opts.checkpointDir == "" {
			return fmt.Errorf(`required flag "checkpoint" not set: give the run folder that train wrote`)
		}
	case exportFormatONNX:
		if (opts.inPath == "") == (opts.checkpointDir == "") {
			return fmt.Errorf("--format onnx needs exactly one of --in (a model file) and --checkpoint (a run folder)")
		}
		if opts.inPath != "" && flags.Changed("step") {
			return fmt.Errorf("--step is only read with --checkpoint")
		}
	default:
		return fmt.Errorf("--format %q: use %s or %s", opts.format, exportFormatSafetensors, exportFormatONNX)
	}
	return nil
}

// runExportSafetensors writes the checkpoint as a float32 model file.
func runExportSafetensors(stdout io.Writer, opts exportOptions) error {
	mf, step, err := readCheckpointModel(opts.checkpointDir, opts.step)
	if err != nil {
		return err
	}
	size, err := writeModelFileAtomic(opts.outPath, mf)
	if err != nil {
		return err
	}
	cfg := mf.Config
	_, err = fmt.Fprintf(stdout,
		"wrote %s: %.1f MB, float32, step %d, %s parameters (encoder %dx%d, decoder %dx%d, %dx%d images, %s)\n",
		opts.outPath, float64(size)/1e6, step, groupThousands(int64(cfg.NumParams())),
		cfg.EmbedDim, cfg.Depth, cfg.DecoderEmbedDim, cfg.DecoderDepth, cfg.ImageSize, cfg.ImageSize, countNoun(cfg.TextLength, "text token"))
	return err
}

// readCheckpointModel reads the checkpoint of step (-1 for the newest) in
// checkpointDir as a float32 model file, and returns it with its step.
func readCheckpointModel(checkpointDir string, step int64) (*core.ModelFile, int64, error) {
	path, err := trainrun.FindCheckpoint(checkpointDir, step)
	if err != nil {
		return nil, 0, err
	}
	return export.FromCheckpoint(path)
}

// runExportONNX writes the ONNX models that opts.models names, or all of
// them, into the folder opts.outPath.
func runExportONNX(stdout io.Writer, logger *slog.Logger, opts exportOptions) error {
	specs := onnx.Specs()
	if len(opts.models) > 0 {
		specs = make([]onnx.Spec, 0, len(opts.models))
		for _, name := range opts.models {
			spec, err := onnx.ParseSpec(strings.TrimSpace(name))
			if err != nil {
				return fmt.Errorf("--models: %w", err)
			}
			specs = append(specs, spec)
		}
	}

	var mf *core.ModelFile
	source := opts.inPath
	if opts.inPath != "" {
		data, err := readInputFile("--in", opts.inPath, readModelBytes)
		if err != nil {
			return err
		}
		mf, err = core.ReadModelFile(data)
		if err != nil {
			return fmt.Errorf("--in %s: %w: give a model file written by m3ae-edge export or quantize", opts.inPath, err)
		}
	} else {
		var step int64
		var err error
		mf, step, err = readCheckpointModel(opts.checkpointDir, opts.step)
		if err != nil {
			return err
		}
		source = fmt.Sprintf("%s (step %d)", opts.checkpointDir, step)
	}

	if err := os.MkdirAll(opts.outPath, 0o755); err != nil {
		return fmt.Errorf("--out %s: %w", opts.outPath, err)
	}
	logger.Info("exporting ONNX models", "source", source, "quantization", mf.Quantization, "models", len(specs), "out", opts.outPath)
	for _, spec := range specs {
		path := filepath.Join(opts.outPath, spec.FileName())
		size, err := writeFileAtomic(path, func(w io.Writer) error { return onnx.Write(w, mf, spec) })
		if err != nil {
			return err
		}
		logger.Debug("wrote ONNX model", "path", path, "bytes", size)
		if _, err := fmt.Fprintf(stdout, "wrote %s: %.1f MB\n", path, float64(size)/1e6); err != nil {
			return err
		}
	}
	return nil
}

// writeModelFileAtomic writes mf to a temporary file beside path and
// renames it to path, so an interrupted export leaves no partial file
// there. It returns the file's size in bytes.
func writeModelFileAtomic(path string, mf *core.ModelFile) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".export-*")
	if err != nil {
		return 0, fmt.Errorf("write model file: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()) }() // fails harmlessly once renamed
	// CreateTemp makes the file private; a model file is for sharing.
	err = f.Chmod(0o644)
	if err == nil {
		err = core.WriteModelFile(f, mf)
	}
	if syncErr := f.Sync(); err == nil {
		err = syncErr
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return 0, fmt.Errorf("write model file %s: %w", path, err)
	}
	info, err := os.Stat(f.Name())
	if err != nil {
		return 0, fmt.Errorf("write model file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return 0, fmt.Errorf("write model file: %w", err)
	}
	return info.Size(), nil
}
