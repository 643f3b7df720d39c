//go:build !js

package analysis

import (
	"bytes"
	"fmt"
	"image/png"
	"math"
	"strings"
	"testing"
)

func TestScatterPlotPNGSize(t *testing.T) {
	for _, classes := range []int{3, 120} {
		var points [][2]float64
		var labels []string
		for i := range 240 {
			points = append(points, [2]float64{float64(i % 17), float64(i / 17)})
			labels = append(labels, fmt.Sprintf("class-%03d", i%classes))
		}
		data, err := ScatterPlotPNG(points, labels, ScatterOptions{Title: "test", Width: 500, Height: 300})
		if err != nil {
			t.Fatalf("%d classes: %v", classes, err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%d classes: decode PNG: %v", classes, err)
		}
		if size := img.Bounds().Size(); size.X != 500 || size.Y != 300 {
			t.Errorf("%d classes: image is %v, want 500x300", classes, size)
		}
	}
}

func TestScatterPlotPNGRejects(t *testing.T) {
	points := [][2]float64{{0, 0}, {1, math.NaN()}}
	tests := []struct {
		name   string
		labels []string
		opts   ScatterOptions
		want   string
	}{
		{"labels", []string{"a"}, ScatterOptions{Width: 10, Height: 10}, "2 points for 1 labels"},
		{"size", []string{"a", "b"}, ScatterOptions{Width: 0, Height: 10}, "size 0x10 is invalid"},
		{"too large", []string{"a", "b"}, ScatterOptions{Width: 10, Height: MaxScatterSide + 1}, "is invalid"},
		{"NaN", []string{"a", "b"}, ScatterOptions{Width: 10, Height: 10}, "point 1 is (1, NaN)"},
	}
	for _, tt := range tests {
		_, err := ScatterPlotPNG(points, tt.labels, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}
