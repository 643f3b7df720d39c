package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// embedOptions are the flags of "m3ae-edge embed".
type embedOptions struct {
	modelPath, imagePath, text string
	pooling                    string
	json                       bool
}

// newEmbedCommand returns "m3ae-edge embed", which prints the embedding of
// an image, a caption or both.
func newEmbedCommand() *cobra.Command {
	var opts embedOptions
	cmd := &cobra.Command{
		Use:   "embed [--model FILE] [--image FILE] [--text CAPTION]",
		Short: "Print the embedding of an image, a caption or both",
		Long: `embed runs the model's encoder on an unmasked image, caption or both and
prints the pooled output of its final LayerNorm. Give --image, --text or
both. Without --model it runs the default model embedded in m3ae-edge.
The plain output is the dimension on the first line and the values,
space-separated, on the second. --json prints one object with the fields
model, pooling, dim and embedding.`,
		Example: `  m3ae-edge embed --text "red apple"
  m3ae-edge embed --model emoji.safetensors --image cat.png
  m3ae-edge embed --model emoji.safetensors --image cat.png --text "grinning cat" --pooling mean --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			pool, err := parsePooling(opts.pooling)
			if err != nil {
				return err
			}
			if err := checkInputGiven(opts.imagePath, opts.text); err != nil {
				return err
			}
			pipeline, err := loadPipeline(opts.modelPath)
			if err != nil {
				return err
			}
			img, err := readInput(logger, pipeline, opts.imagePath, opts.text)
			if err != nil {
				return err
			}
			logger.Debug("embedding", "model", modelLabel(opts.modelPath), "image", opts.imagePath, "pooling", pool)
			embedding, err := pipeline.Embed(img, opts.text, pool)
			if err != nil {
				return modelError("embed", opts.imagePath, err)
			}
			return printEmbedding(cmd.OutOrStdout(), opts, embedding)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.modelPath, "model", "", modelFlagUsage)
	bindInputFlags(flags, &opts.imagePath, &opts.text, "embed")
	flags.StringVar(&opts.pooling, "pooling", "cls", "pooling of the encoder outputs: cls (the CLS output) or mean (the mean of the image patch and caption token outputs)")
	flags.BoolVar(&opts.json, "json", false, "print one JSON object in place of the plain output")
	markFileFlags(cmd, map[string][]string{"model": modelExtensions, "image": imageExtensions})
	return cmd
}

// embeddingJSON is the --json output of "m3ae-edge embed".
type embeddingJSON struct {
	Model     string    `json:"model"`
	Pooling   string    `json:"pooling"`
	Dim       int       `json:"dim"`
	Embedding []float32 `json:"embedding"`
}

func printEmbedding(w io.Writer, opts embedOptions, embedding []float32) error {
	if opts.json {
		return writeJSON(w, embeddingJSON{Model: modelLabel(opts.modelPath), Pooling: opts.pooling, Dim: len(embedding), Embedding: embedding})
	}
	values := make([]string, len(embedding))
	for i, v := range embedding {
		values[i] = strconv.FormatFloat(float64(v), 'g', -1, 32)
	}
	_, err := fmt.Fprintf(w, "%d\n%s\n", len(embedding), strings.Join(values, " "))
	return err
}

func parsePooling(name string) (core.Pooling, error) {
	switch name {
	case "cls":
		return core.PoolCLS, nil
	case "mean":
		return core.PoolMean, nil
	}
	return 0, fmt.Errorf("--pooling %q: use cls or mean", name)
}

// bindInputFlags defines --image and --text, the model inputs of the
// commands that run one image and caption. action completes "image file
// to ..." and "caption to ..." in the help text.
func bindInputFlags(flags *pflag.FlagSet, imagePath, text *string, action string) {
	flags.StringVar(imagePath, "image", "", "image file to "+action+": PNG or JPEG (default none)")
	flags.StringVar(text, "text", "", "caption to "+action+"; the model reads its first text_length WordPiece tokens (16 for the default model) and a warning names how many more were dropped (default none)")
}

// checkInputGiven rejects a command line that gives neither --image nor a
// non-blank --text.
func checkInputGiven(imagePath, text string) error {
	if imagePath == "" && strings.TrimSpace(text) == "" {
		return errors.New("no input: give --image FILE, --text CAPTION or both")
	}
	return nil
}

// readInput decodes the --image file at imagePath, or returns nil for an
// empty path, and logs a warning when text has more WordPiece tokens than
// pipeline reads.
func readInput(logger *slog.Logger, pipeline *core.Pipeline, imagePath, text string) (image.Image, error) {
	img, err := readImage(imagePath)
	if err != nil {
		return nil, err
	}
	warnTruncatedCaption(logger, pipeline, text)
	return img, nil
}

// modelError wraps an error of the model's call. An image that fails
// preprocessing is named by its --image path, as a decoding error is.
func modelError(command, imagePath string, err error) error {
	if imagePath != "" && errors.Is(err, core.ErrInvalidImage) {
		return fmt.Errorf("--image %s: %w", imagePath, err)
	}
	return fmt.Errorf("%s: %w", command, err)
}

// readImage decodes the image file at path, or returns nil for an empty
// path.
func readImage(path string) (image.Image, error) {
	if path == "" {
		return nil, nil
	}
	data, err := readInputFile("--image", path, core.ReadImageFile)
	if err != nil {
		return nil, err
	}
	img, err := core.DecodeImage(data)
	if err != nil {
		return nil, fmt.Errorf("--image %s: %w", path, err)
	}
	return img, nil
}

// readInputFile reads the file at path with read, such as
// core.ReadImageFile or readModelBytes, which bound what they read. Its
// errors name flag, so the user knows which value to fix.
func readInputFile(flag, path string, read func(string) ([]byte, error)) ([]byte, error) {
	data, err := read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s %s: file not found: check the path", flag, path)
	case errors.Is(err, syscall.EISDIR):
		return nil, fmt.Errorf("%s %s is a folder: give a file inside it", flag, path)
	case err != nil:
		return nil, fmt.Errorf("%s %s: %w", flag, path, err)
	}
	return data, nil
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
