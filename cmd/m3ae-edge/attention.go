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
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// attention reads --model and --image and writes --out and --json, so the
// pre-run checks keep its outputs off its inputs and off each other.
func init() {
	pathFlags["attention"] = commandPaths{inputs: []string{"model", "image"}, outputs: []string{"out", "json"}, checkFolders: true}
}

// attentionOptions are the flags of "m3ae-edge attention".
type attentionOptions struct {
	modelPath, imagePath, text string
	outPath, jsonPath          string
	layer                      int
	rollout                    bool
	head                       string
	scale                      int
}

// Bounds of --scale, in output pixels per model input pixel.
const (
	defaultAttentionScale = 6
	maxAttentionScale     = 32
)

// newAttentionCommand returns "m3ae-edge attention", which draws where the
// encoder's CLS token attends on an image and its caption.
func newAttentionCommand() *cobra.Command {
	opts := attentionOptions{head: "mean", scale: defaultAttentionScale}
	cmd := &cobra.Command{
		Use:   "attention [--model FILE] [--image FILE] [--text CAPTION] --out attn.png [--layer N | --rollout] [--head H]",
		Short: "Draw what the encoder's CLS token attends to on an image and a caption",
		Long: `attention runs the model's encoder on an unmasked image, caption or both,
as embed does, and draws the softmax attention of the CLS token, whose
output is the embedding, over the other tokens. Give --image, --text or
both. Without --model it runs the default model embedded in m3ae-edge.

--out names a PNG file. It shows the image as the model sees it (resized,
cropped and composited, then scaled up --scale times with nearest-neighbour
sampling) beside the same image under a heat overlay: one square per
patch, redder and more opaque the more weight the patch gets relative to
the patch or token with the most. Under them it draws the caption's
WordPiece tokens as boxes tinted on the same scale, each with its weight
in percent.

By default the map is the attention rollout of Abnar and Zuidema (2020):
each block's attention is averaged over its heads, the identity is added
for the residual connection, each row is divided by its sum and the
blocks' matrices are multiplied from the first up. --layer N shows block N
alone, 1 being the first, and --head picks one of its heads in place of
their mean. Pads get no attention. The weights on CLS itself, on the
patches and on the tokens sum to 100 %.

--json FILE writes the numbers: the caption's tokens and the CLS row of
the rollout, of every block's head mean and of every head.`,
		Example: `  m3ae-edge attention --image www/static/gallery/images/google/1f62c.png --text "grimacing face" --out attn.png
  m3ae-edge attention --model emoji.safetensors --image cat.png --text "grinning cat" --layer 6 --head 2 --out attn.png
  m3ae-edge attention --image cat.png --out attn.png --json attn.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := commandLogger(cmd)
			if err != nil {
				return err
			}
			if err := checkAttentionOptions(cmd, opts); err != nil {
				return err
			}
			// A file written to stdout keeps stdout to itself, so the
			// summary moves to stderr.
			summary := cmd.OutOrStdout()
			if opts.outPath == "-" || opts.jsonPath == "-" {
				summary = cmd.ErrOrStderr()
			}
			return runAttention(summary, logger, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.modelPath, "model", "", modelFlagUsage)
	bindInputFlags(flags, &opts.imagePath, &opts.text, "look at")
	flags.StringVar(&opts.outPath, "out", "", "PNG file to write the attention map to (required)")
	flags.StringVar(&opts.jsonPath, "json", "", "JSON file to write the attention weights to (default none)")
	flags.IntVar(&opts.layer, "layer", 0, "encoder block to show, from 1 to the model's depth (6 for the default model); 0 means the rollout over all blocks")
	flags.BoolVar(&opts.rollout, "rollout", false, "show the attention rollout over all blocks, the default when --layer is not given")
	flags.StringVar(&opts.head, "head", opts.head, "head of --layer to show, from 1 to the model's number of heads (4 for the default model), or mean for the mean over the heads")
	flags.IntVar(&opts.scale, "scale", opts.scale, fmt.Sprintf("output pixels per model input pixel, 1 to %d", maxAttentionScale))
	cmd.MarkFlagRequired("out")
	markFileFlags(cmd, map[string][]string{"model": modelExtensions, "image": imageExtensions, "out": {"png"}, "json": {"json"}})
	return cmd
}

// checkAttentionOptions rejects flag values before the model is read.
// The ranges of --layer and --head depend on the model and are checked
// in selectAttention.
func checkAttentionOptions(cmd *cobra.Command, opts attentionOptions) error {
	if err := checkInputGiven(opts.imagePath, opts.text); err != nil {
		return err
	}
	if opts.outPath == "-" && opts.jsonPath == "-" {
		return errors.New("--out - and --json - both write to stdout: send at most one of them there")
	}
	if opts.layer < 0 {
		return fmt.Errorf("--layer %d is out of range: use a block from 1 to the model's depth, or 0 for the rollout", opts.layer)
	}
	if opts.rollout && opts.layer != 0 {
		return fmt.Errorf("--rollout and --layer %d are both set: give --layer N for one block or --rollout for all of them", opts.layer)
	}
	if opts.layer == 0 && cmd.Flags().Changed("head") && opts.head != "mean" {
		return fmt.Errorf("--head %s needs --layer N: the rollout averages the heads of every block", opts.head)
	}
	if opts.scale < 1 || opts.scale > maxAttentionScale {
		return fmt.Errorf("--scale %d is out of range: use 1 to %d output pixels per input pixel", opts.scale, maxAttentionScale)
	}
	return nil
}

// attentionSelection is the CLS row that the PNG shows.
type attentionSelection struct {
	layer int // encoder block, 1 to depth, or 0 for the rollout
	head  int // head, 1 to H, or 0 for the mean over the heads
}

// selectAttention checks --layer and --head against the model.
func selectAttention(opts attentionOptions, cfg core.Config) (attentionSelection, error) {
	if opts.layer > cfg.Depth {
		return attentionSelection{}, fmt.Errorf("--layer %d is out of range: the model has %d encoder blocks, so use 1 to %d, or 0 for the rollout",
			opts.layer, cfg.Depth, cfg.Depth)
	}
	selection := attentionSelection{layer: opts.layer}
	if opts.head == "mean" {
		return selection, nil
	}
	head, err := strconv.Atoi(opts.head)
	if err != nil || head < 1 || head > cfg.NumHeads {
		return attentionSelection{}, fmt.Errorf("--head %q: use a head from 1 to %d, the model's number of heads, or mean", opts.head, cfg.NumHeads)
	}
	selection.head = head
	return selection, nil
}

func (s attentionSelection) String() string {
	switch {
	case s.layer == 0:
		return "rollout over all blocks, heads averaged"
	case s.head == 0:
		return fmt.Sprintf("block %d, heads averaged", s.layer)
	}
	return fmt.Sprintf("block %d, head %d", s.layer, s.head)
}

// clsRow returns the CLS row [K] that s selects.
func (s attentionSelection) clsRow(a *core.Attention) []float32 {
	k := a.NumTokens()
	switch {
	case s.layer == 0:
		return a.Rollout()[:k]
	case s.head == 0:
		return a.HeadMean(s.layer - 1)[:k]
	}
	return a.Row(s.layer-1, s.head-1, 0)
}

func runAttention(stdout io.Writer, logger *slog.Logger, opts attentionOptions) error {
	pipeline, err := loadPipeline(opts.modelPath)
	if err != nil {
		return err
	}
	selection, err := selectAttention(opts, pipeline.Config())
	if err != nil {
		return err
	}
	img, err := readInput(logger, pipeline, opts.imagePath, opts.text)
	if err != nil {
		return err
	}
	logger.Debug("computing attention", "model", modelLabel(opts.modelPath), "image", opts.imagePath, "drawn", selection)
	result, err := pipeline.EmbedWithAttention(img, opts.text, core.PoolCLS)
	if err != nil {
		return modelError("attention", opts.imagePath, err)
	}

	drawn := newAttentionRow(result, selection)
	picture := renderAttention(result, drawn, selection, pipeline.Config(), opts.scale)
	size, err := writeFileAtomic(opts.outPath, func(w io.Writer) error { return png.Encode(w, picture) })
	if err != nil {
		return fmt.Errorf("write --out: %w", err)
	}
	bounds := picture.Bounds()
	logger.Info("wrote attention map", "path", opts.outPath, "width", bounds.Dx(), "height", bounds.Dy(), "bytes", size)

	if opts.jsonPath != "" {
		out := newAttentionJSON(opts, result, selection, pipeline.Config())
		if _, err := writeFileAtomic(opts.jsonPath, func(w io.Writer) error { return writeJSON(w, out) }); err != nil {
			return fmt.Errorf("write --json: %w", err)
		}
		logger.Info("wrote attention weights", "path", opts.jsonPath, "rows", len(out.Rows))
	}
	return printAttention(stdout, result, drawn, selection, pipeline.Config())
}

// attentionRowJSON is one CLS row of attention probabilities split by input
// position.
type attentionRowJSON struct {
	// Block is the encoder block, 1 to depth, or 0 for the rollout.
	Block int `json:"block"`
	// Head is the head, 1 to num_heads, or 0 for the mean over the heads.
	Head int     `json:"head"`
	CLS  float32 `json:"cls"`
	// Patches has one weight per patch, row-major over the patch grid, or
	// none without an image.
	Patches []float32 `json:"patches,omitempty"`
	// Text has one weight per caption token in tokens, or none without a
	// caption.
	Text []float32 `json:"text,omitempty"`
}

// attentionJSON is the --json output of "m3ae-edge attention".
type attentionJSON struct {
	Model      string   `json:"model"`
	Image      string   `json:"image,omitempty"`
	Text       string   `json:"text,omitempty"`
	Depth      int      `json:"depth"`
	NumHeads   int      `json:"num_heads"`
	GridSize   int      `json:"grid_size"`
	Tokens     []string `json:"tokens"`
	Convention string   `json:"convention"`
	// Drawn is the index in Rows of the row that --out draws.
	Drawn int                `json:"drawn"`
	Rows  []attentionRowJSON `json:"rows"`
}

const attentionConvention = "each row is the softmax attention of the CLS token on itself (cls), on each patch (patches, " +
	"row-major over the grid) and on each caption token (text); the three sum to 1. Block 0 is the rollout over all blocks " +
	"(Abnar and Zuidema 2020), head 0 the mean over the heads. Rows: the rollout, then for each block its head mean and its heads"

// newAttentionRow splits the CLS row of selection by input position. The
// text weights stop at the last caption token, since pads get none.
func newAttentionRow(result *core.PipelineAttention, selection attentionSelection) attentionRowJSON {
	cls, patches, text := result.Attention.ByPosition(selection.clsRow(result.Attention))
	row := attentionRowJSON{Block: selection.layer, Head: selection.head, CLS: cls, Patches: patches}
	if text != nil {
		row.Text = text[:len(result.Tokens)]
	}
	return row
}

func newAttentionJSON(opts attentionOptions, result *core.PipelineAttention, selection attentionSelection, cfg core.Config) attentionJSON {
	a := result.Attention
	out := attentionJSON{
		Model:      modelLabel(opts.modelPath),
		Image:      opts.imagePath,
		Text:       opts.text,
		Depth:      a.Depth,
		NumHeads:   a.NumHeads,
		GridSize:   cfg.GridSize(),
		Tokens:     result.Tokens,
		Convention: attentionConvention,
	}
	if out.Tokens == nil {
		out.Tokens = []string{}
	}
	selections := []attentionSelection{{}}
	for layer := 1; layer <= a.Depth; layer++ {
		for head := 0; head <= a.NumHeads; head++ {
			selections = append(selections, attentionSelection{layer: layer, head: head})
		}
	}
	for i, s := range selections {
		if s == selection {
			out.Drawn = i
		}
		out.Rows = append(out.Rows, newAttentionRow(result, s))
	}
	return out
}

// printAttention writes where the drawn row puts its weight.
func printAttention(w io.Writer, result *core.PipelineAttention, drawn attentionRowJSON, selection attentionSelection, cfg core.Config) error {
	fmt.Fprintf(w, "CLS attention, %s\n", selection)
	if drawn.Patches != nil {
		maxIndex := argMax(drawn.Patches)
		grid := cfg.GridSize()
		fmt.Fprintf(w, "image patches: %s in total, the most %s at row %d, column %d of %dx%d\n",
			formatWeight(sum32(drawn.Patches)), formatWeight(drawn.Patches[maxIndex]), maxIndex/grid+1, maxIndex%grid+1, grid, grid)
	}
	if drawn.Text != nil {
		words := make([]string, len(drawn.Text))
		for i, weight := range drawn.Text {
			words[i] = fmt.Sprintf("%q %s", result.Tokens[i], formatWeight(weight))
		}
		fmt.Fprintf(w, "caption tokens: %s in total: %s\n", formatWeight(sum32(drawn.Text)), strings.Join(words, ", "))
	}
	_, err := fmt.Fprintf(w, "CLS itself: %s\n", formatWeight(drawn.CLS))
	return err
}

func sum32(values []float32) float64 {
	var total float64
	for _, v := range values {
		total += float64(v)
	}
	return total
}

// argMax returns the index of the largest value, the first on a tie.
func argMax(values []float32) int {
	best := 0
	for i, v := range values {
		if v > values[best] {
			best = i
		}
	}
	return best
}

// formatWeight writes a probability as a percentage with one decimal.
func formatWeight[F float32 | float64](p F) string {
	return strconv.FormatFloat(100*float64(p), 'f', 1, 64) + " %"
}

// Layout of the attention PNG, in pixels.
const (
	attentionMargin       = 8
	attentionMinWidth     = 60 * 7 // room for 60 characters of basicfont.Face7x13
	attentionLegendHeight = 10
	attentionBoxPadding   = 4
	attentionOverlayAlpha = 0.75 // opacity of the patch or token with the most weight
)

// attentionBoxBorder outlines the token boxes.
var attentionBoxBorder = color.RGBA{R: 160, G: 160, B: 160, A: 255}

// heatColor returns the overlay colour of a weight w in [0, 1], relative
// to the largest: yellow for little weight, red for the most.
func heatColor(w float64) color.RGBA {
	return color.RGBA{R: 255, G: uint8(200*(1-w) + 0.5), B: 0, A: 255}
}

// blend returns base covered by the heat colour of w at opacity
// attentionOverlayAlpha·w.
func blend(base color.RGBA, w float64) color.RGBA {
	alpha := attentionOverlayAlpha * w
	heat := heatColor(w)
	mix := func(b, h uint8) uint8 { return uint8(float64(b)*(1-alpha) + float64(h)*alpha + 0.5) }
	return color.RGBA{R: mix(base.R, heat.R), G: mix(base.G, heat.G), B: mix(base.B, heat.B), A: 255}
}

// renderAttention draws the title, then with an image the input and the
// input under the heat overlay side by side with a legend, then with a
// caption one tinted box per token.
func renderAttention(result *core.PipelineAttention, drawn attentionRowJSON, selection attentionSelection, cfg core.Config, scale int) *image.RGBA {
	face := basicfont.Face7x13
	lineHeight := face.Height + 2
	panel := cfg.ImageSize * scale
	contentWidth := attentionMinWidth
	if result.Image != nil {
		contentWidth = max(contentWidth, 2*panel+attentionMargin)
	}
	width := 2*attentionMargin + contentWidth

	boxes := layoutTokenBoxes(result.Tokens, face, contentWidth)
	height := attentionMargin + lineHeight
	if result.Image != nil {
		height += lineHeight + panel + attentionMargin + attentionLegendHeight + lineHeight
	}
	if drawn.Text != nil {
		height += attentionMargin + lineHeight + boxes.height
	}
	height += attentionMargin

	picture := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(picture, picture.Bounds(), image.NewUniform(gridBackground), image.Point{}, draw.Src)
	drawer := &font.Drawer{Dst: picture, Src: image.NewUniform(gridForeground), Face: face}
	text := func(left, top int, s string) {
		// NOTE: basicfont has glyphs for ASCII and Latin-1 only, so tokens
		// in other scripts are not legible in the PNG.
		drawer.Dot = fixed.P(left, top+face.Ascent)
		drawer.DrawString(s)
	}

	top := attentionMargin
	text(attentionMargin, top, fmt.Sprintf("CLS attention, %s; CLS itself %s", selection, formatWeight(drawn.CLS)))
	top += lineHeight

	// One colour scale for patches and tokens, so their tints compare.
	var maxWeight float32
	for _, weights := range [][]float32{drawn.Patches, drawn.Text} {
		if weights != nil {
			maxWeight = max(maxWeight, weights[argMax(weights)])
		}
	}

	if result.Image != nil {
		right := attentionMargin + panel + attentionMargin
		text(attentionMargin, top, fmt.Sprintf("input, %dx%d", cfg.ImageSize, cfg.ImageSize))
		text(right, top, fmt.Sprintf("patches: %s in total", formatWeight(sum32(drawn.Patches))))
		top += lineHeight
		drawScaled(picture, result.Image, attentionMargin, top, scale)
		drawScaled(picture, overlayPatches(result.Image, drawn.Patches, maxWeight, cfg), right, top, scale)
		top += panel + attentionMargin

		// Legend: the colour scale from no weight to maxWeight.
		for x := range panel {
			c := blend(gridBackground, float64(x)/float64(max(panel-1, 1)))
			draw.Draw(picture, image.Rect(right+x, top, right+x+1, top+attentionLegendHeight), image.NewUniform(c), image.Point{}, draw.Src)
		}
		top += attentionLegendHeight
		text(right, top, "0 %")
		label := "max " + formatWeight(maxWeight)
		text(right+panel-len(label)*face.Advance, top, label)
		top += lineHeight
	}

	if drawn.Text != nil {
		top += attentionMargin
		text(attentionMargin, top, fmt.Sprintf("caption tokens: %s in total", formatWeight(sum32(drawn.Text))))
		top += lineHeight
		for i, box := range boxes.rects {
			r := box.Add(image.Pt(attentionMargin, top))
			w := 0.0
			if maxWeight > 0 {
				w = float64(drawn.Text[i] / maxWeight)
			}
			draw.Draw(picture, r, image.NewUniform(attentionBoxBorder), image.Point{}, draw.Src)
			draw.Draw(picture, r.Inset(1), image.NewUniform(blend(gridBackground, w)), image.Point{}, draw.Src)
			text(r.Min.X+attentionBoxPadding, r.Min.Y+attentionBoxPadding, result.Tokens[i])
			text(r.Min.X+attentionBoxPadding, r.Min.Y+attentionBoxPadding+lineHeight, formatWeight(drawn.Text[i]))
		}
	}
	return picture
}

// overlayPatches returns img with each patch covered by the heat colour of
// its weight relative to maxWeight.
func overlayPatches(img *image.RGBA, patches []float32, maxWeight float32, cfg core.Config) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	grid, size := cfg.GridSize(), cfg.PatchSize
	for y := range cfg.ImageSize {
		for x := range cfg.ImageSize {
			w := 0.0
			if maxWeight > 0 {
				w = float64(patches[(y/size)*grid+x/size] / maxWeight)
			}
			out.SetRGBA(x, y, blend(img.RGBAAt(x, y), w))
		}
	}
	return out
}

// tokenBoxes are the boxes of the caption's tokens, relative to the top
// left of the token area, in rows that fit its width.
type tokenBoxes struct {
	rects  []image.Rectangle
	height int
}

// layoutTokenBoxes places one box per token, wide enough for the token and
// for a weight such as "100.0 %", two text lines high, wrapping to a new
// row at width.
func layoutTokenBoxes(tokens []string, face *basicfont.Face, width int) tokenBoxes {
	lineHeight := face.Height + 2
	boxHeight := 2*lineHeight + 2*attentionBoxPadding
	var out tokenBoxes
	left, top := 0, 0
	for _, token := range tokens {
		columns := max(len([]rune(token)), len("100.0 %"))
		boxWidth := min(columns*face.Advance+2*attentionBoxPadding, width)
		if left > 0 && left+boxWidth > width {
			left, top = 0, top+boxHeight+attentionBoxPadding
		}
		out.rects = append(out.rects, image.Rect(left, top, left+boxWidth, top+boxHeight))
		left += boxWidth + attentionBoxPadding
	}
	if len(tokens) > 0 {
		out.height = top + boxHeight
	}
	return out
}
