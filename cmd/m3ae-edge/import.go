package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/export"
)

type importOptions struct {
	from, checkpointPath, outPath, vocabPath string
	imageSize, textLength                    int
	numHeads, decoderNumHeads                int
}

// newImportCommand returns "m3ae-edge import", which converts an official
// M3AE checkpoint into a float32 model file.
func newImportCommand() *cobra.Command {
	var opts importOptions
	cmd := &cobra.Command{
		Use:   "import --from m3ae-jax CHECKPOINT.pkl --out model.safetensors",
		Short: "Convert an official M3AE checkpoint into a float32 model file",
		Long: `import reads a pretrained M3AE checkpoint and writes its weights as one
float32 model file (safetensors layout, see docs/FORMAT.md).

--from m3ae-jax reads the pickles of the official JAX/flax code
(m3ae_small.pkl, m3ae_base.pkl, m3ae_large.pkl). import interprets the
pickle itself and never runs code from it: it rebuilds numpy arrays,
dtypes, dicts, lists, tuples and numbers, and keeps everything else, such
as pickled functions, as inert placeholders. The weights come from
state.params["params"]; the optimizer's moment trees are skipped.

The architecture comes from the parameter shapes. Three sizes are not
stored: the image size and text length (position embeddings are fixed
sin-cos tables) and the encoder's head count, which follows the official
rule of width/64 (decoder: 16). The defaults are the official values.

The import holds about the float32 model in memory, not the checkpoint:
large arrays are read from the file only when they are parameters.`,
		Example: `  m3ae-edge import --from m3ae-jax m3ae_base.pkl --out m3ae-base.safetensors
  m3ae-edge import --from m3ae-jax my_run.pkl --out my.safetensors \
      --vocab vocab.txt --image-size 128 --text-length 32`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			if opts.from != export.M3AEJaxFormat {
				return fmt.Errorf("--from %q is not supported: use %s, the official M3AE JAX/flax pickle", opts.from, export.M3AEJaxFormat)
			}
			opts.checkpointPath = args[0]
			return runImport(cmd.OutOrStdout(), logger, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.from, "from", "", "checkpoint format: m3ae-jax, the official M3AE JAX/flax pickle (required)")
	flags.StringVar(&opts.outPath, "out", "", "model file to write (required)")
	flags.IntVar(&opts.imageSize, "image-size", export.DefaultM3AEImageSize, "side in pixels of the square images the model takes, a multiple of the patch size")
	flags.IntVar(&opts.textLength, "text-length", export.DefaultM3AETextLength, "number of text token positions")
	flags.IntVar(&opts.numHeads, "num-heads", 0, "encoder attention heads; 0 means the encoder width / 64, the official rule")
	flags.IntVar(&opts.decoderNumHeads, "dec-num-heads", 0, "decoder attention heads; 0 means 16, the official value")
	flags.StringVar(&opts.vocabPath, "vocab", "", "vocabulary file, one token per line in id order (default: the bert-base-uncased vocabulary of the official models)")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("out")
	markFileFlags(cmd, map[string][]string{"out": modelExtensions, "vocab": {"txt"}})
	return cmd
}

func runImport(stdout io.Writer, logger *slog.Logger, opts importOptions) error {
	if opts.imageSize <= 0 {
		return fmt.Errorf("--image-size %d: use a positive multiple of the patch size, such as the official %d", opts.imageSize, export.DefaultM3AEImageSize)
	}
	if opts.textLength <= 0 {
		return fmt.Errorf("--text-length %d: use a positive number of token positions, such as the official %d", opts.textLength, export.DefaultM3AETextLength)
	}
	var vocab []string
	if opts.vocabPath != "" {
		var err error
		if vocab, err = readVocabFile(opts.vocabPath); err != nil {
			return err
		}
	}

	f, err := os.Open(opts.checkpointPath)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file: pass the checkpoint's .pkl file", opts.checkpointPath)
	}
	logger.Info("reading checkpoint", "path", opts.checkpointPath, "bytes", info.Size())
	ckpt, err := export.ImportM3AEJax(f, info.Size(), export.M3AEJaxOptions{
		ImageSize:       opts.imageSize,
		TextLength:      opts.textLength,
		NumHeads:        opts.numHeads,
		DecoderNumHeads: opts.decoderNumHeads,
		Vocab:           vocab,
	})
	if err != nil {
		return fmt.Errorf("%s: %w", opts.checkpointPath, err)
	}
	cfg := ckpt.Model.Config
	warnStaleModelType(logger, ckpt.ModelType, cfg)

	size, err := writeModelFileAtomic(opts.outPath, ckpt.Model)
	if err != nil {
		return err
	}
	logger.Info("wrote model file", "path", opts.outPath, "bytes", size)
	_, err = fmt.Fprintf(stdout,
		"wrote %s: %.1f MB, float32, step %d, %s parameters (encoder %dx%d with %s, decoder %dx%d with %s, %dx%d images in %d-pixel patches, %s)\n",
		opts.outPath, float64(size)/1e6, ckpt.Step, groupThousands(int64(cfg.NumParams())),
		cfg.EmbedDim, cfg.Depth, countNoun(cfg.NumHeads, "head"), cfg.DecoderEmbedDim, cfg.DecoderDepth, countNoun(cfg.DecoderNumHeads, "head"),
		cfg.ImageSize, cfg.ImageSize, cfg.PatchSize, countNoun(cfg.TextLength, "text token"))
	return err
}

// warnStaleModelType logs a warning when the checkpoint's variant names an
// official model type whose widths and depths differ from the shapes. The
// import follows the shapes.
func warnStaleModelType(logger *slog.Logger, modelType string, cfg core.Config) {
	if modelType == "" {
		return
	}
	preset, err := core.Preset(modelType)
	if err != nil {
		logger.Debug("variant names a model type that is not an official size", "model_type", modelType)
		return
	}
	if preset.EmbedDim != cfg.EmbedDim || preset.Depth != cfg.Depth ||
		preset.DecoderEmbedDim != cfg.DecoderEmbedDim || preset.DecoderDepth != cfg.DecoderDepth {
		logger.Warn("the variant's model type does not match the parameter shapes; the shapes are used",
			"model_type", modelType, "emb_dim", cfg.EmbedDim, "depth", cfg.Depth,
			"dec_emb_dim", cfg.DecoderEmbedDim, "dec_depth", cfg.DecoderDepth)
	}
}

// maxVocabFileSize bounds a vocabulary file. bert-base-uncased's takes
// about 0.23 MB.
const maxVocabFileSize = 64 << 20

// readVocabFile reads one token per line, in id order. A final newline is
// optional, and a CR before each newline is dropped.
func readVocabFile(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--vocab: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("--vocab %s is not a regular file (%s): give a text file with one token per line", path, info.Mode().Type())
	}
	if info.Size() > maxVocabFileSize {
		return nil, fmt.Errorf("--vocab %s has %d bytes, more than the %d a vocabulary file may have", path, info.Size(), maxVocabFileSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--vocab: %w", err)
	}
	text := strings.TrimSuffix(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	tokens := strings.Split(text, "\n")
	for i, token := range tokens {
		if token == "" {
			return nil, fmt.Errorf("--vocab %s: line %d is empty, want one token per line", path, i+1)
		}
	}
	// Apply the tokenizer's checks, which every command applies when it
	// reads the model file, so import never writes a file they reject.
	if _, err := core.NewTokenizer(tokens); err != nil {
		return nil, fmt.Errorf("--vocab %s: %w: give a WordPiece vocabulary with %q at line 1 and %q on some line", path, err, core.PadToken, core.UnkToken)
	}
	return tokens, nil
}
