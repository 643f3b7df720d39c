package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/export"
	"github.com/m3ae-edge/m3ae-edge/native"
	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

// newExportCommand returns "m3ae-edge export", which writes a training
// checkpoint as a float32 model file.
func newExportCommand() *cobra.Command {
	var (
		checkpointDir, outPath string
		step                   int64
	)
	cmd := &cobra.Command{
		Use:   "export --checkpoint RUN_DIR --out model.safetensors",
		Short: "Write a training checkpoint as a float32 model file",
		Long: `export reads a checkpoint that train saved and writes its model as one
float32 model file (safetensors layout, see docs/FORMAT.md) with the
architecture, the tokenizer vocabulary and the image normalization in its
header. The optimizer state is left out. It fails, listing every variable
that is missing, unused or mis-shaped, when the checkpoint does not match
its architecture.`,
		Example: `  m3ae-edge export --checkpoint runs/emoji --out emoji.safetensors
  m3ae-edge export --checkpoint runs/emoji --step 1000 --out emoji-1000.safetensors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := trainrun.FindCheckpoint(checkpointDir, step)
			if err != nil {
				return err
			}
			saved, err := native.ReadCheckpoint(path)
			if err != nil {
				return err
			}
			mf, err := export.FromStore(saved.Store, saved.Config, saved.Vocab, saved.Norm)
			if err != nil {
				return fmt.Errorf("checkpoint %s: %w", path, err)
			}
			size, err := writeModelFileAtomic(outPath, mf)
			if err != nil {
				return err
			}
			cfg := saved.Config
			_, err = fmt.Fprintf(cmd.OutOrStdout(),
				"wrote %s: %.1f MB, float32, step %d, %s parameters (encoder %dx%d, decoder %dx%d, %dx%d images, %d text tokens)\n",
				outPath, float64(size)/1e6, saved.Step, groupThousands(int64(cfg.NumParams())),
				cfg.EmbedDim, cfg.Depth, cfg.DecoderEmbedDim, cfg.DecoderDepth, cfg.ImageSize, cfg.ImageSize, cfg.TextLength)
			return err
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&checkpointDir, "checkpoint", "", "run folder that train wrote, or one of its checkpoints/step-N folders (required)")
	flags.Int64Var(&step, "step", -1, "step of the checkpoint to export; -1 means the newest")
	flags.StringVar(&outPath, "out", "", "model file to write (required)")
	cmd.MarkFlagRequired("checkpoint")
	cmd.MarkFlagRequired("out")
	return cmd
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
