// ScatterPlotPNG is left out of js/wasm builds, so the browser module can
// import the package without gonum's plot packages and their fonts.

//go:build !js

package analysis

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"maps"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// ScatterOptions are the settings of ScatterPlotPNG.
type ScatterOptions struct {
	Title string
	// Width and Height are the image's size in pixels.
	Width, Height int
}

// MaxScatterSide is the largest width or height of ScatterPlotPNG, which
// keeps the image under 256 MiB in memory.
const MaxScatterSide = 8192

// scatterDPI sets the size of text and marks relative to pixels.
const scatterDPI = 96

// Class colours: the ten of matplotlib's "tab10" palette.
var scatterColors = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

// scatterShapes mark classes beyond the tenth: class k gets colour k mod
// 10 and shape k/10 mod 5, so 50 classes look distinct.
var scatterShapes = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.PyramidGlyph{}, draw.BoxGlyph{}, draw.CrossGlyph{}, draw.RingGlyph{},
}

// ScatterPlotPNG draws points as a scatter plot, one colour and mark per
// distinct label, with a legend of the labels in sorted order to the right
// of the axes, and returns the PNG bytes. When the labels do not fit the
// image's height, the legend lists the first ones and the number left out.
func ScatterPlotPNG(points [][2]float64, labels []string, opts ScatterOptions) ([]byte, error) {
	if len(points) != len(labels) {
		return nil, fmt.Errorf("scatter plot: %d points for %d labels: give one label per point", len(points), len(labels))
	}
	if opts.Width < 1 || opts.Height < 1 || opts.Width > MaxScatterSide || opts.Height > MaxScatterSide {
		return nil, fmt.Errorf("scatter plot: size %dx%d is invalid: use 1 to %d pixels per side", opts.Width, opts.Height, MaxScatterSide)
	}
	byClass := map[string]plotter.XYs{}
	for i, point := range points {
		if math.IsNaN(point[0]) || math.IsNaN(point[1]) || math.IsInf(point[0], 0) || math.IsInf(point[1], 0) {
			return nil, fmt.Errorf("scatter plot: point %d is (%v, %v): give finite coordinates", i, point[0], point[1])
		}
		byClass[labels[i]] = append(byClass[labels[i]], plotter.XY{X: point[0], Y: point[1]})
	}
	classes := slices.Sorted(maps.Keys(byClass))

	p := plot.New()
	p.Title.Text = opts.Title
	p.Add(plotter.NewGrid())
	legend := plot.NewLegend()
	legend.Top, legend.Left = true, true
	canvas := vgimg.NewWith(vgimg.UseImage(image.NewRGBA(image.Rect(0, 0, opts.Width, opts.Height))), vgimg.UseDPI(scatterDPI))
	dc := draw.New(canvas)
	padding := 4 * vg.Millimeter
	lineHeight := legend.TextStyle.Rectangle("Xg").Max.Y
	maxEntries := max(int((dc.Max.Y-dc.Min.Y-2*padding)/lineHeight), 1)
	for k, class := range classes {
		scatter, err := plotter.NewScatter(byClass[class])
		if err != nil {
			return nil, fmt.Errorf("scatter plot: class %q: %w", class, err)
		}
		scatter.GlyphStyle = draw.GlyphStyle{
			Color:  scatterColors[k%len(scatterColors)],
			Radius: vg.Points(2.5),
			Shape:  scatterShapes[k/len(scatterColors)%len(scatterShapes)],
		}
		p.Add(scatter)
		switch {
		case len(classes) <= maxEntries || k < maxEntries-1:
			legend.Add(class, scatter)
		case k == maxEntries-1:
			legend.Add(fmt.Sprintf("and %d more", len(classes)-k))
		}
	}

	// Widen the axes by 4 % on each side, so no mark is cut at an edge.
	for _, axis := range []*plot.Axis{&p.X, &p.Y} {
		margin := max((axis.Max-axis.Min)*0.04, 1e-9)
		axis.Min -= margin
		axis.Max += margin
	}

	// The legend gets a strip on the right, at most half the width, and
	// the axes the rest.
	legendWidth := min(legend.Rectangle(dc).Max.X-legend.Rectangle(dc).Min.X+2*padding, (dc.Max.X-dc.Min.X)/2)
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	legend.Draw(draw.Crop(dc, dc.Max.X-dc.Min.X-legendWidth+padding, -padding, padding, -padding))

	var out bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: canvas}).WriteTo(&out); err != nil {
		return nil, fmt.Errorf("scatter plot: encode PNG: %w", err)
	}
	return out.Bytes(), nil
}
