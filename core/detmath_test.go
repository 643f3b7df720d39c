package core

import (
	"math"
	"testing"
)

// detMathTolerance bounds the error of the deterministic float64 functions
// relative to max(1, |want|): a few ulps of float64.
const detMathTolerance = 1e-15

func TestDetSinCosMatchMath(t *testing.T) {
	var points []float64
	for x := -20.0; x <= 20; x += 0.0173 {
		points = append(points, x)
	}
	for x := 20.0; x < maxDetTrigArg; x *= 1.37 {
		points = append(points, x, -x)
	}
	points = append(points, 0, math.Pi/4, math.Pi/2, math.Pi, maxDetTrigArg)
	for _, x := range points {
		if got, want := detSin(x), math.Sin(x); math.Abs(got-want) > detMathTolerance*math.Max(1, math.Abs(x)*1e-6) {
			t.Errorf("detSin(%v) = %v, want %v", x, got, want)
		}
		if got, want := detCos(x), math.Cos(x); math.Abs(got-want) > detMathTolerance*math.Max(1, math.Abs(x)*1e-6) {
			t.Errorf("detCos(%v) = %v, want %v", x, got, want)
		}
	}
}

func TestDetExpMatchesMath(t *testing.T) {
	for x := -700.0; x <= 700; x += 0.731 {
		got, want := detExp(x), math.Exp(x)
		if math.Abs(got-want) > detMathTolerance*want {
			t.Errorf("detExp(%v) = %v, want %v", x, got, want)
		}
	}
	if got := detExp(0); got != 1 {
		t.Errorf("detExp(0) = %v, want 1", got)
	}
}

func TestDetLogMatchesMath(t *testing.T) {
	points := []float64{1, 0.5, 2, 1e-300, 0x1p-53, 1 - 0x1p-53, math.MaxFloat64}
	for x := 1e-12; x < 1e12; x *= 1.093 {
		points = append(points, x)
	}
	for _, x := range points {
		got, want := detLog(x), math.Log(x)
		if math.Abs(got-want) > detMathTolerance*math.Max(1, math.Abs(want)) {
			t.Errorf("detLog(%v) = %v, want %v", x, got, want)
		}
	}

	// math.Log's amd64 assembly is wrong for subnormal inputs (Go 1.26.8
	// returns -709.09 for 5e-324), so that case has an exact reference.
	x := math.SmallestNonzeroFloat64
	if got, want := detLog(x), -1074*math.Ln2; math.Abs(got-want) > detMathTolerance*-want {
		t.Errorf("detLog(%v) = %v, want %v", x, got, want)
	}
}

// The pieces of pi/2 must sum to pi/2, and their products with the
// quadrant counts k that reduceHalfPi produces must be exact.
func TestHalfPiSplit(t *testing.T) {
	if sum := pio2First + pio2Second; sum != math.Pi/2 {
		t.Errorf("pio2First + pio2Second = %v, want %v", sum, math.Pi/2)
	}
	for _, piece := range []float64{pio2First, pio2Second} {
		bits := math.Float64bits(piece)
		if low := bits & (1<<20 - 1); low != 0 {
			t.Errorf("low 20 mantissa bits of %v = %#x, want 0 so that k*piece is exact for |k| < 2^20", piece, low)
		}
	}
}
