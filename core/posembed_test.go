package core

import (
	"math"
	"testing"
)

// posEmbedTolerance bounds |got - want| for table entries in [-1, 1]: the
// float32 rounding of the table plus a few float64 ulps of the angle.
const posEmbedTolerance = 1e-7

// sinCosReference returns the 1-D embedding of pos with math.Sin, Cos and
// Pow, straight from the formula.
func sinCosReference(width, pos int) []float64 {
	half := width / 2
	out := make([]float64, width)
	for i := range half {
		omega := 1 / math.Pow(10000, float64(i)/float64(half))
		out[i] = math.Sin(float64(pos) * omega)
		out[half+i] = math.Cos(float64(pos) * omega)
	}
	return out
}

func TestSinCos1DMatchesFormula(t *testing.T) {
	const positions, width = 64, 48
	table := sinCos1D(positions, width)
	for pos := range positions {
		want := sinCosReference(width, pos)
		for i, w := range want {
			if got := float64(table[pos*width+i]); math.Abs(got-w) > posEmbedTolerance {
				t.Errorf("sinCos1D(%d, %d)[pos %d, dim %d] = %v, want %v", positions, width, pos, i, got, w)
			}
		}
	}
}

// The first half of a 2-D row encodes the patch's column and the second
// half its row, as the official meshgrid with the column coordinate first.
func TestSinCos2DColumnFirst(t *testing.T) {
	const grid, width = 5, 16
	table := sinCos2D(grid, width)
	for gy := range grid {
		for gx := range grid {
			n := gy*grid + gx
			want := append(sinCosReference(width/2, gx), sinCosReference(width/2, gy)...)
			for i, w := range want {
				if got := float64(table[n*width+i]); math.Abs(got-w) > posEmbedTolerance {
					t.Errorf("sinCos2D(%d, %d)[patch %d (row %d, column %d), dim %d] = %v, want %v",
						grid, width, n, gy, gx, i, got, w)
				}
			}
		}
	}
}
