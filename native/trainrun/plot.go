package trainrun

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var (
	colorTrain = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	colorEval  = color.RGBA{0xd6, 0x5f, 0x0e, 0xff}
)

// series is one curve of the loss plot.
type series struct {
	name   string
	color  color.Color
	points bool // mark each value, for the sparse evaluation curves
	value  func(historyPoint) *Float
	kind   string
}

// renderLossPlot draws loss.png from the metrics history: the image loss,
// the text loss and the held-out token accuracy over steps, in three
// panels. It returns the PNG bytes.
func renderLossPlot(history []historyPoint) ([]byte, error) {
	panels := []struct {
		title, yLabel string
		// yMin and yMax fix the Y range when set; loss panels fit theirs
		// to the data.
		yMin, yMax *float64
		series     []series
	}{
		{"image: MSE over hidden patches", "MSE (normalized pixels)", nil, nil, []series{
			{"train", colorTrain, false, func(p historyPoint) *Float { return p.ImageLoss }, KindTrain},
			{"held-out", colorEval, true, func(p historyPoint) *Float { return p.ImageMSE }, KindEval},
		}},
		{"text: cross-entropy over hidden tokens", "nats", nil, nil, []series{
			{"train", colorTrain, false, func(p historyPoint) *Float { return p.TextLoss }, KindTrain},
			{"held-out", colorEval, true, func(p historyPoint) *Float { return p.TextLoss }, KindEval},
		}},
		{"held-out top-1 accuracy of hidden tokens", "accuracy", ptr(0.0), ptr(1.0), []series{
			{"held-out", colorEval, true, func(p historyPoint) *Float { return p.TokenAccuracy }, KindEval},
		}},
	}

	lastStep := 1.0
	for _, h := range history {
		lastStep = max(lastStep, float64(h.Step))
	}
	plots := make([][]*plot.Plot, len(panels))
	for i, panel := range panels {
		p := plot.New()
		p.Title.Text = panel.title
		p.X.Label.Text = "step"
		p.Y.Label.Text = panel.yLabel
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		for _, s := range panel.series {
			if err := addSeries(p, history, s); err != nil {
				return nil, err
			}
		}
		// Every panel spans the same steps, and the top quarter is left
		// free for the legend.
		p.X.Min, p.X.Max = 0, lastStep
		if panel.yMin != nil {
			p.Y.Min, p.Y.Max = *panel.yMin, *panel.yMax
		}
		p.Y.Max += (p.Y.Max - p.Y.Min) / 3
		plots[i] = []*plot.Plot{p}
	}

	canvas := vgimg.NewWith(vgimg.UseWH(8*vg.Inch, 9*vg.Inch), vgimg.UseDPI(96))
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	canvases := plot.Align(plots, tiles, draw.New(canvas))
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	var out bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: canvas}).WriteTo(&out); err != nil {
		return nil, fmt.Errorf("encode loss plot: %w", err)
	}
	return out.Bytes(), nil
}

// addSeries adds the finite values of s in history to p, if any.
func addSeries(p *plot.Plot, history []historyPoint, s series) error {
	var xys plotter.XYs
	for _, h := range history {
		if h.Kind != s.kind {
			continue
		}
		v := s.value(h)
		if v == nil || math.IsNaN(float64(*v)) || math.IsInf(float64(*v), 0) {
			continue
		}
		xys = append(xys, plotter.XY{X: float64(h.Step), Y: float64(*v)})
	}
	if len(xys) == 0 {
		return nil
	}
	line, err := plotter.NewLine(xys)
	if err != nil {
		return fmt.Errorf("loss plot %s: %w", s.name, err)
	}
	line.Color = s.color
	line.Width = vg.Points(1.5)
	p.Add(line)
	if s.points {
		scatter, err := plotter.NewScatter(xys)
		if err != nil {
			return fmt.Errorf("loss plot %s: %w", s.name, err)
		}
		scatter.Color = s.color
		scatter.Shape = draw.CircleGlyph{}
		p.Add(scatter)
		p.Legend.Add(s.name, line, scatter)
		return nil
	}
	p.Legend.Add(s.name, line)
	return nil
}

func ptr(v float64) *float64 { return &v }
