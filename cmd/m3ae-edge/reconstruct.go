package main

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// reconstructOptions are the flags of "m3ae-edge reconstruct".
type reconstructOptions struct {
	modelPath, imagePath, text, outPath string
	imageMaskRatio, textMaskRatio       float64
	seed                                uint64
	topK                                int
	json                                bool
}

// newReconstructCommand returns "m3ae-edge reconstruct", which hides part
// of an image and a caption and shows what the model predicts for them.
func newReconstructCommand() *cobra.Command {
	opts := reconstructOptions{
		imageMaskRatio: core.DefaultMaskRatio,
		textMaskRatio:  core.DefaultMaskRatio,
		topK:           core.DefaultTopK,
	}
	cmd := &cobra.Command{
		Use:   "reconstruct [--model FILE] [--image FILE] [--text CAPTION] [--out grid.png]",
		Short: "Hide part of an image and a caption and predict the hidden parts",
		Long: `reconstruct hides a random part of the image patches and caption tokens,
runs the model and shows its predictions for what was hidden. Give --image,
--text or both. The masks depend only on --seed and the ratios. Without
--model it runs the default model embedded in m3ae-edge.

With an image, --out is required: it names a PNG file that shows the
original, masked and reconstructed images side by side, each scaled up
with nearest-neighbour sampling to at least 192 pixels wide. Under them
the PNG shows the caption with the hidden tokens in brackets, and the
caption with each hidden token replaced by its top prediction.

The plain output lists the caption's tokens with the hidden ones in
brackets and, for each hidden token, the top-k predicted tokens with their
probabilities. --json prints the masks, the tokens and the predictions as
one JSON object.`,
		Example: `  m3ae-edge reconstruct --image testdata/images/emoji64.png --text "grinning face" --out grid.png
  m3ae-edge reconstruct --model emoji.safetensors --image cat.png --text "grinning cat" --out grid.png
  m3ae-edge reconstruct --model emoji.safetensors --text "grinning cat face" --text-mask-ratio 0.3 --top-k 3 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			if err := checkReconstructOptions(opts); err != nil {
				return err
			}
			// With --out -, the PNG keeps stdout to itself, so the listing
			// moves to stderr.
			listing := cmd.OutOrStdout()
			if opts.outPath == "-" {
				listing = cmd.ErrOrStderr()
			}
			return runReconstruct(listing, logger, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.modelPath, "model", "", modelFlagUsage)
	bindInputFlags(flags, &opts.imagePath, &opts.text, "reconstruct")
	flags.StringVar(&opts.outPath, "out", "", "PNG file to write the image grid to (required with --image; default none)")
	flags.Float64Var(&opts.imageMaskRatio, "image-mask-ratio", opts.imageMaskRatio, "fraction of image patches hidden, 0 to 1")
	flags.Float64Var(&opts.textMaskRatio, "text-mask-ratio", opts.textMaskRatio, "fraction of text positions hidden, pads included, 0 to 1")
	flags.Uint64Var(&opts.seed, "seed", 0, "seed of the random masks (default 0), so the same seed and ratios draw the same masks")
	flags.IntVar(&opts.topK, "top-k", opts.topK, "number of predicted tokens listed for each hidden token, 1 to 100")
	flags.BoolVar(&opts.json, "json", false, "print one JSON object in place of the plain output")
	markFileFlags(cmd, map[string][]string{"model": modelExtensions, "image": imageExtensions, "out": {"png"}})
	return cmd
}

// checkReconstructOptions rejects flag values before the model is read.
func checkReconstructOptions(opts reconstructOptions) error {
	if err := checkInputGiven(opts.imagePath, opts.text); err != nil {
		return err
	}
	for _, ratio := range []struct {
		flag  string
		value float64
	}{{"--image-mask-ratio", opts.imageMaskRatio}, {"--text-mask-ratio", opts.textMaskRatio}} {
		if math.IsNaN(ratio.value) || ratio.value < 0 || ratio.value > 1 {
			return fmt.Errorf("%s %g is out of range: use a fraction from 0 to 1", ratio.flag, ratio.value)
		}
	}
	if opts.outPath == "-" && opts.json {
		return errors.New("--out - and --json both write to stdout: write the PNG to a file or leave out --json")
	}
	if opts.topK < 1 || opts.topK > core.MaxTopK {
		return fmt.Errorf("--top-k %d is out of range: use a count from 1 to %d", opts.topK, core.MaxTopK)
	}
	if opts.imagePath != "" && opts.outPath == "" {
		return fmt.Errorf("--image %s needs --out: name the PNG file for the image grid", opts.imagePath)
	}
	return nil
}

func runReconstruct(stdout io.Writer, logger *slog.Logger, opts reconstructOptions) error {
	pipeline, err := loadPipeline(opts.modelPath)
	if err != nil {
		return err
	}
	img, err := readInput(logger, pipeline, opts.imagePath, opts.text)
	if err != nil {
		return err
	}
	result, err := pipeline.Reconstruct(img, opts.text, core.ReconstructOptions{
		ImageMaskRatio: opts.imageMaskRatio,
		TextMaskRatio:  opts.textMaskRatio,
		Seed:           opts.seed,
		TopK:           opts.topK,
	})
	if err != nil {
		return modelError("reconstruct", opts.imagePath, err)
	}

	if opts.outPath != "" {
		grid := renderReconstructionGrid(result)
		size, err := writeFileAtomic(opts.outPath, func(w io.Writer) error { return png.Encode(w, grid) })
		if err != nil {
			return fmt.Errorf("write --out grid: %w", err)
		}
		bounds := grid.Bounds()
		logger.Info("wrote reconstruction grid", "path", opts.outPath, "width", bounds.Dx(), "height", bounds.Dy(), "bytes", size)
	}

	if opts.json {
		return writeJSON(stdout, newReconstructionJSON(opts, result))
	}
	return printReconstruction(stdout, result)
}

// reconstructionJSON is the --json output of "m3ae-edge reconstruct".
// Masks are true at hidden positions: ImageMask has one entry per patch,
// row-major over the patch grid, and TextMask one per text position.
type reconstructionJSON struct {
	Model          string           `json:"model"`
	ImageMaskRatio float64          `json:"image_mask_ratio"`
	TextMaskRatio  float64          `json:"text_mask_ratio"`
	Seed           uint64           `json:"seed"`
	ImageMask      []bool           `json:"image_mask,omitempty"`
	TextMask       []bool           `json:"text_mask,omitempty"`
	Tokens         []tokenJSON      `json:"tokens"`
	Predictions    []predictionJSON `json:"predictions"`
	Out            string           `json:"out,omitempty"`
}

// predictionJSON is the model's top-k guesses for one hidden text
// position, most probable first.
type predictionJSON struct {
	Position   int             `json:"position"`
	Original   string          `json:"original"`
	Candidates []candidateJSON `json:"candidates"`
}

// candidateJSON is one predicted token with its softmax probability.
type candidateJSON struct {
	ID    int32   `json:"id"`
	Token string  `json:"token"`
	Prob  float32 `json:"prob"`
}

// tokenJSON is one caption token and whether it was hidden.
type tokenJSON struct {
	Token  string `json:"token"`
	Hidden bool   `json:"hidden"`
}

func newReconstructionJSON(opts reconstructOptions, result *core.PipelineReconstruction) reconstructionJSON {
	out := reconstructionJSON{
		Model:          modelLabel(opts.modelPath),
		ImageMaskRatio: opts.imageMaskRatio,
		TextMaskRatio:  opts.textMaskRatio,
		Seed:           opts.seed,
		Tokens:         []tokenJSON{},
		Predictions:    []predictionJSON{},
		Out:            opts.outPath,
	}
	if result.Image != nil {
		out.ImageMask = result.Masks.Image
	}
	if text := result.Text; text != nil {
		out.TextMask = result.Masks.Text
		for i, token := range text.Tokens {
			out.Tokens = append(out.Tokens, tokenJSON{Token: token, Hidden: text.Hidden[i]})
		}
		for _, prediction := range text.Predictions {
			p := predictionJSON{Position: prediction.Position, Original: prediction.Original}
			for _, c := range prediction.Candidates {
				p.Candidates = append(p.Candidates, candidateJSON{ID: c.ID, Token: c.Token, Prob: c.Prob})
			}
			out.Predictions = append(out.Predictions, p)
		}
	}
	return out
}

// printReconstruction writes the hidden-patch count, the caption with the
// hidden tokens in brackets and the predictions for each hidden token.
func printReconstruction(w io.Writer, result *core.PipelineReconstruction) error {
	if result.Image != nil {
		hidden := 0
		for _, h := range result.Masks.Image {
			if h {
				hidden++
			}
		}
		fmt.Fprintf(w, "image: %d of %s hidden\n", hidden, countNoun(len(result.Masks.Image), "patch"))
	}
	text := result.Text
	if text == nil {
		return nil
	}
	fmt.Fprintf(w, "tokens: %s\n", quotedCaption(text))
	for _, prediction := range text.Predictions {
		candidates := make([]string, len(prediction.Candidates))
		for i, c := range prediction.Candidates {
			candidates[i] = fmt.Sprintf("%q %.3g", c.Token, c.Prob)
		}
		fmt.Fprintf(w, "position %d, hidden %q: %s\n", prediction.Position, prediction.Original, strings.Join(candidates, ", "))
	}
	_, err := fmt.Fprintf(w, "%d of %s hidden\n", len(text.Predictions), countNoun(len(text.Tokens), "token"))
	return err
}

// markedCaption joins the caption's tokens with the hidden ones in
// brackets. With predicted set, each hidden token is replaced by its top
// prediction. Predictions follow the hidden tokens in caption order.
func markedCaption(text *core.TextReconstruction, predicted bool) string {
	words := make([]string, len(text.Tokens))
	next := 0
	for i, token := range text.Tokens {
		if !text.Hidden[i] {
			words[i] = token
			continue
		}
		if predicted && next < len(text.Predictions) && len(text.Predictions[next].Candidates) > 0 {
			token = text.Predictions[next].Candidates[0].Token
		}
		next++
		words[i] = "[" + token + "]"
	}
	return strings.Join(words, " ")
}

// quotedCaption joins the caption's tokens, each quoted as a Go string
// literal, with the hidden ones in brackets. Quoting keeps tokens that
// contain brackets, spaces or colons apart from the markup.
func quotedCaption(text *core.TextReconstruction) string {
	words := make([]string, len(text.Tokens))
	for i, token := range text.Tokens {
		words[i] = strconv.Quote(token)
		if text.Hidden[i] {
			words[i] = "[" + words[i] + "]"
		}
	}
	return strings.Join(words, " ")
}

// Layout of the reconstruction grid, in pixels.
const (
	gridMinPanelWidth = 192 // smallest width of one scaled-up image
	gridMargin        = 8
	gridTextColumns   = 80 // caption line width, in characters, without an image
)

var (
	gridBackground = color.RGBA{R: 255, G: 255, B: 255, A: 255}
	gridForeground = color.RGBA{A: 255}
)

// renderReconstructionGrid draws the original, masked and reconstructed
// images side by side, each labelled, over the caption lines. Without an
// image only the caption lines are drawn, and without text only the images.
func renderReconstructionGrid(result *core.PipelineReconstruction) *image.RGBA {
	face := basicfont.Face7x13
	charWidth, lineHeight := face.Advance, face.Height+2

	panelWidth, scale := 0, 1
	var panels []*image.RGBA
	if result.Image != nil {
		size := result.Image.Original.Bounds().Dx()
		scale = max(1, (gridMinPanelWidth+size-1)/size)
		panelWidth = size * scale
		panels = []*image.RGBA{result.Image.Original, result.Image.Masked, result.Image.Reconstructed}
	}

	width := 2*gridMargin + gridTextColumns*charWidth
	if panels != nil {
		width = 2*gridMargin + len(panels)*panelWidth + (len(panels)-1)*gridMargin
	}
	var lines []string
	if result.Text != nil {
		columns := (width - 2*gridMargin) / charWidth
		lines = append(lines, wrapWords("caption: "+markedCaption(result.Text, false), columns)...)
		lines = append(lines, wrapWords("predicted: "+markedCaption(result.Text, true), columns)...)
	}

	height := gridMargin + len(lines)*lineHeight + gridMargin
	imageTop := gridMargin
	if panels != nil {
		height += lineHeight + panelWidth + gridMargin
		imageTop += lineHeight
	}
	grid := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(grid, grid.Bounds(), image.NewUniform(gridBackground), image.Point{}, draw.Src)

	drawer := &font.Drawer{Dst: grid, Src: image.NewUniform(gridForeground), Face: face}
	for i, panel := range panels {
		left := gridMargin + i*(panelWidth+gridMargin)
		drawer.Dot = fixed.P(left, gridMargin+face.Ascent)
		drawer.DrawString([]string{"original", "masked", "reconstructed"}[i])
		drawScaled(grid, panel, left, imageTop, scale)
	}
	textTop := gridMargin
	if panels != nil {
		textTop = imageTop + panelWidth + gridMargin
	}
	for i, line := range lines {
		// NOTE: basicfont has glyphs for ASCII and Latin-1 only, so tokens
		// in other scripts are not legible in the PNG.
		drawer.Dot = fixed.P(gridMargin, textTop+i*lineHeight+face.Ascent)
		drawer.DrawString(line)
	}
	return grid
}

// drawScaled copies src into dst at (left, top), each pixel as a
// scale x scale block (nearest-neighbour upscaling).
func drawScaled(dst, src *image.RGBA, left, top, scale int) {
	bounds := src.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			block := image.Rect(0, 0, scale, scale).Add(image.Pt(left+(x-bounds.Min.X)*scale, top+(y-bounds.Min.Y)*scale))
			draw.Draw(dst, block, image.NewUniform(src.RGBAAt(x, y)), image.Point{}, draw.Src)
		}
	}
}

// wrapWords breaks text at spaces into lines of at most columns
// characters. A word longer than columns gets a line of its own.
func wrapWords(text string, columns int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len([]rune(line))+1+len([]rune(word)) <= columns:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// warnTruncatedCaption logs a warning when text has more WordPiece tokens
// than the model's text length, because the model reads only the first
// ones and the rest would vanish without notice.
func warnTruncatedCaption(logger *slog.Logger, pipeline *core.Pipeline, text string) {
	tokens := len(pipeline.Tokenizer().EncodeNoPad(text))
	limit := pipeline.Config().TextLength
	if tokens > limit {
		logger.Warn("caption longer than the model reads: the last tokens are dropped",
			"tokens", tokens, "kept", limit, "dropped", tokens-limit)
	}
}
