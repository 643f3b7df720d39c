package trainrun

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Layout of recon-STEP.png, in pixels. The text uses the 7x13 bitmap face
// of golang.org/x/image, which covers ASCII only.
const (
	reconMargin     = 10
	reconGap        = 8
	reconMinCell    = 96 // images are scaled up by whole factors to at least this side
	reconTextChars  = 64 // characters per text line before it wraps
	reconLineHeight = 15
	glyphAdvance    = 7
)

var (
	colorInk     = color.RGBA{0x20, 0x20, 0x20, 0xff}
	colorLabel   = color.RGBA{0x60, 0x60, 0x60, 0xff}
	colorVisible = color.RGBA{0x80, 0x80, 0x80, 0xff}
	colorRight   = color.RGBA{0x00, 0x80, 0x20, 0xff}
	colorWrong   = color.RGBA{0xc0, 0x10, 0x10, 0xff}
	colorHidden  = color.RGBA{0x9a, 0x9a, 0x9a, 0xff} // fills hidden patches in the masked column
)

// span is a run of text in one colour. A span that continues a word
// (a WordPiece "##" piece) is drawn without a space before it.
type span struct {
	text      string
	color     color.Color
	continues bool
}

// renderRecon draws the reconstruction grid and returns it as PNG bytes.
// Each item gets one row: the original, masked and reconstructed images
// side by side, then three text lines. They show the caption's WordPiece
// tokens, the encoder's input with hidden tokens as [?], and the top-1
// prediction of each hidden token, green when right and red when wrong.
func renderRecon(items []reconItem, cfg core.Config, norm core.ImageNorm, tok *core.Tokenizer, title string) ([]byte, error) {
	scale := max(1, (reconMinCell+cfg.ImageSize-1)/cfg.ImageSize)
	cell := cfg.ImageSize * scale
	textX := reconMargin + 3*(cell+reconGap)
	width := textX + reconTextChars*glyphAdvance + reconMargin

	type row struct {
		lines [][]span
		top   int
	}
	rows := make([]row, len(items))
	y := reconMargin + 2*reconLineHeight + reconGap // title and column labels
	for i, item := range items {
		rows[i].top = y
		rows[i].lines = reconText(item, tok)
		y += max(cell, len(rows[i].lines)*reconLineHeight) + reconGap
	}
	height := y + reconMargin - reconGap

	img := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	drawText(img, reconMargin, reconMargin, []span{{text: title, color: colorInk}})
	labelY := reconMargin + reconLineHeight
	for c, label := range []string{"original", "masked", "reconstructed"} {
		drawText(img, reconMargin+c*(cell+reconGap), labelY, []span{{text: label, color: colorLabel}})
	}
	drawText(img, textX, labelY, []span{{text: "tokens; hidden in [ ]: green right, red wrong", color: colorLabel}})

	for i, item := range items {
		top := rows[i].top
		if item.image != nil {
			original := core.DenormalizeImage(item.image, cfg.ImageSize, norm)
			reconstructed := make([]float32, len(item.image))
			core.Unpatchify(reconstructed, item.patches, cfg)
			for c, src := range []*image.RGBA{
				original,
				maskedImage(original, item.masks.Image, cfg),
				core.DenormalizeImage(reconstructed, cfg.ImageSize, norm),
			} {
				drawScaled(img, src, reconMargin+c*(cell+reconGap), top, scale)
			}
		} else {
			drawText(img, reconMargin, top, []span{{text: "(no image)", color: colorLabel}})
		}
		for l, line := range rows[i].lines {
			drawText(img, textX, top+l*reconLineHeight, line)
		}
	}

	var out bytes.Buffer
	if err := png.Encode(&out, img); err != nil {
		return nil, fmt.Errorf("encode reconstruction grid: %w", err)
	}
	return out.Bytes(), nil
}

// reconText returns the wrapped text lines of one item.
func reconText(item reconItem, tok *core.Tokenizer) [][]span {
	if item.tokens == nil {
		return [][]span{{{text: "(no caption)", color: colorLabel}}}
	}
	var caption, input, predicted []span
	numHidden := 0
	for pos, id := range item.tokens {
		if id == core.PadID {
			continue
		}
		text := tok.Token(id)
		continues := strings.HasPrefix(text, "##") && len(caption) > 0
		if continues {
			text = text[2:]
		}
		hidden := item.predicted != nil && item.predicted[pos] >= 0
		caption = append(caption, span{text: text, color: colorInk, continues: continues})
		if !hidden {
			input = append(input, span{text: text, color: colorInk, continues: continues})
			predicted = append(predicted, span{text: text, color: colorVisible, continues: continues})
			continue
		}
		numHidden++
		guess := strings.TrimPrefix(tok.Token(item.predicted[pos]), "##")
		colour := colorWrong
		if item.predicted[pos] == id {
			colour = colorRight
		}
		input = append(input, span{text: "[?]", color: colorLabel, continues: continues})
		predicted = append(predicted, span{text: "[" + guess + "]", color: colour, continues: continues})
	}
	if numHidden == 0 {
		predicted = []span{{text: "(no word hidden)", color: colorLabel}}
	}
	var lines [][]span
	for _, part := range []struct {
		label string
		spans []span
	}{{"caption:  ", caption}, {"input:    ", input}, {"predicted:", predicted}} {
		lines = append(lines, wrapSpans(append([]span{{text: part.label, color: colorLabel, continues: true}}, part.spans...))...)
	}
	return lines
}

// wrapSpans joins spans with spaces (none before a continuing span) into
// lines of at most reconTextChars characters, breaking before a span.
func wrapSpans(spans []span) [][]span {
	var lines [][]span
	var line []span
	used := 0
	for _, s := range spans {
		text := sanitizeASCII(s.text)
		if !s.continues && used > 0 {
			text = " " + text
		}
		if used > 0 && used+len(text) > reconTextChars {
			lines = append(lines, line)
			line, used = nil, 0
			text = "           " + strings.TrimPrefix(text, " ") // indent under the label
		}
		line = append(line, span{text: text, color: s.color})
		used += len(text)
	}
	return append(lines, line)
}

// sanitizeASCII replaces the characters the bitmap face lacks with '?'.
func sanitizeASCII(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// drawText draws spans from (x, top), each after the last.
func drawText(dst draw.Image, x, top int, spans []span) {
	face := basicfont.Face7x13
	d := font.Drawer{Dst: dst, Face: face, Dot: fixed.P(x, top+face.Ascent)}
	for _, s := range spans {
		d.Src = image.NewUniform(s.color)
		d.DrawString(s.text)
	}
}

// maskedImage returns a copy of img with its hidden patches filled grey.
func maskedImage(img *image.RGBA, hidden []bool, cfg core.Config) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	draw.Draw(out, out.Bounds(), img, image.Point{}, draw.Src)
	grid, p := cfg.GridSize(), cfg.PatchSize
	for n, h := range hidden {
		if h {
			row, col := n/grid, n%grid
			patch := image.Rect(col*p, row*p, (col+1)*p, (row+1)*p)
			draw.Draw(out, patch, image.NewUniform(colorHidden), image.Point{}, draw.Src)
		}
	}
	return out
}

// drawScaled draws src at (x, y) in dst, each pixel as a scale x scale
// block.
func drawScaled(dst *image.RGBA, src *image.RGBA, x, y, scale int) {
	b := src.Bounds()
	for sy := b.Min.Y; sy < b.Max.Y; sy++ {
		for sx := b.Min.X; sx < b.Max.X; sx++ {
			c := src.RGBAAt(sx, sy)
			block := image.Rect(x+(sx-b.Min.X)*scale, y+(sy-b.Min.Y)*scale, x+(sx-b.Min.X+1)*scale, y+(sy-b.Min.Y+1)*scale)
			draw.Draw(dst, block, &image.Uniform{c}, image.Point{}, draw.Src)
		}
	}
}
