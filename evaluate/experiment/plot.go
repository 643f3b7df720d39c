package experiment

import (
	"bytes"
	"fmt"
	"image"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// PlotWidth and PlotHeight are the size of results.png in pixels.
const (
	PlotWidth  = 1200
	PlotHeight = 500
)

// plotDPI sets the size of text and marks relative to pixels.
const plotDPI = 96

var (
	colorSeed      = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	colorMean      = color.RGBA{0x00, 0x00, 0x00, 0xff}
	colorUntrained = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	colorMajority  = color.RGBA{0x7f, 0x7f, 0x7f, 0xff}
)

// PlotPNG draws the probe's test accuracy and balanced accuracy per arm in
// two panels and returns the PNG bytes, PlotWidth x PlotHeight pixels. Each
// panel has one mark per seed and the mean over the seeds with a bar from
// the lowest to the highest seed. The untrained model's and the majority
// class's scores are horizontal lines.
func (r *Results) PlotPNG() ([]byte, error) {
	labels := make([]string, len(r.Arms))
	for i, arm := range r.Arms {
		labels[i] = arm.Label
	}
	panels := []struct {
		title    string
		value    func(RunResult) float64
		majority float64
	}{
		{"test accuracy", func(run RunResult) float64 { return run.ProbeAccuracy }, r.Probe.MajorityAccuracy},
		{"test balanced accuracy", func(run RunResult) float64 { return run.ProbeBalancedAccuracy }, r.Probe.MajorityBalancedAccuracy},
	}

	canvas := vgimg.NewWith(vgimg.UseImage(image.NewRGBA(image.Rect(0, 0, PlotWidth, PlotHeight))), vgimg.UseDPI(plotDPI))
	dc := draw.New(canvas)
	dc.FillPolygon(color.White, []vg.Point{dc.Min, {X: dc.Max.X, Y: dc.Min.Y}, dc.Max, {X: dc.Min.X, Y: dc.Max.Y}})
	plots := [][]*plot.Plot{make([]*plot.Plot, len(panels))}
	for i, panel := range panels {
		p, err := r.accuracyPanel(labels, panel.title, panel.value, panel.majority)
		if err != nil {
			return nil, err
		}
		plots[0][i] = p
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: 6 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	canvases := plot.Align(plots, tiles, dc)
	for i := range panels {
		plots[0][i].Draw(canvases[0][i])
	}
	var out bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: canvas}).WriteTo(&out); err != nil {
		return nil, fmt.Errorf("encode %s: %w", resultsPNGName, err)
	}
	return out.Bytes(), nil
}

// accuracyPanel draws one figure of the probe per arm, in percent.
func (r *Results) accuracyPanel(labels []string, title string, value func(RunResult) float64, majority float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: probe %s", r.Study, title)
	p.Y.Label.Text = title + " (%)"
	p.NominalX(labels...)
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.X.Min, p.X.Max = -0.5, float64(len(labels))-0.5

	// One mark per seed, spread sideways so equal values stay visible.
	var seeds plotter.XYs
	var means plotter.XYs
	var bars plotter.YErrors
	for armIndex, arm := range r.Arms {
		var values []float64
		for _, run := range r.Runs {
			if run.Arm == arm.Name {
				values = append(values, 100*value(run))
			}
		}
		for k, v := range values {
			offset := 0.0
			if len(values) > 1 {
				offset = 0.24 * (float64(k)/float64(len(values)-1) - 0.5)
			}
			seeds = append(seeds, plotter.XY{X: float64(armIndex) + offset, Y: v})
		}
		if len(values) > 0 {
			s := spreadOf(values)
			means = append(means, plotter.XY{X: float64(armIndex), Y: s.Mean})
			bars = append(bars, struct{ Low, High float64 }{s.Mean - s.Min, s.Max - s.Mean})
		}
	}
	if len(seeds) > 0 {
		scatter, err := plotter.NewScatter(seeds)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", title, err)
		}
		scatter.Color = colorSeed
		scatter.Shape = draw.CircleGlyph{}
		scatter.Radius = vg.Points(3.5)
		p.Add(scatter)
		p.Legend.Add("one seed", scatter)

		spread := &plotter.YErrorBars{XYs: means, YErrors: bars, LineStyle: plotter.DefaultLineStyle, CapWidth: vg.Points(12)}
		spread.LineStyle.Color = colorMean
		meanMarks, err := plotter.NewScatter(means)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", title, err)
		}
		meanMarks.Color = colorMean
		meanMarks.Shape = draw.BoxGlyph{}
		meanMarks.Radius = vg.Points(3)
		p.Add(spread, meanMarks)
		p.Legend.Add("mean, bar from lowest to highest seed", meanMarks)
	}

	if len(r.RandomInit) > 0 {
		var untrained []float64
		for _, run := range r.RandomInit {
			untrained = append(untrained, 100*value(run))
		}
		if err := addLevel(p, spreadOf(untrained).Mean, "untrained model (mean over seeds)", colorUntrained, len(labels)); err != nil {
			return nil, err
		}
	}
	if r.Probe.Classes > 0 {
		if err := addLevel(p, 100*majority, fmt.Sprintf("always %q", r.Probe.MajorityClass), colorMajority, len(labels)); err != nil {
			return nil, err
		}
	}
	// Leave the top third of the panel to the legend, and lift the lowest
	// line off the axis.
	span := p.Y.Max - p.Y.Min
	p.Y.Max += span / 2
	p.Y.Min -= span / 20
	return p, nil
}

// addLevel draws a dashed horizontal line at y across the arms.
func addLevel(p *plot.Plot, y float64, name string, c color.Color, numArms int) error {
	line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: y}, {X: float64(numArms) - 0.5, Y: y}})
	if err != nil {
		return fmt.Errorf("plot %s: %w", name, err)
	}
	line.Color = c
	line.Width = vg.Points(1.2)
	line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	p.Add(line)
	p.Legend.Add(name, line)
	return nil
}
