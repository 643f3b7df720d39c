package onnx

import "math"

// Fixed sin-cos position embeddings, stored in the graph as constants. The
// formulas are the core's (core/posembed.go): the 1-D embedding of width E
// at position pos is [sin(pos*omega_i)..., cos(pos*omega_i)...] with
// omega_i = 1/10000^(i/(E/2)), and the 2-D embedding of patch n = gy*G + gx
// puts the 1-D embedding of the column gx in its first half and that of
// the row gy in its second half.
//
// NOTE: the core evaluates exp, sin and cos with its own deterministic
// float64 polynomials, and these tables use the standard library's. Both
// are within a few float64 ulps of the exact value, so after rounding to
// float32 an entry can differ from the core's by one float32 ulp (below
// 1.2e-7 for values in [-1, 1]). Built with Go 1.26 on amd64, the tables
// had the core's bits for 64 text positions, 16x16 grids and widths 32 to
// 1024.

// ln10000 is ln(10000), the log of the base of the frequencies.
const ln10000 = 4 * math.Ln10

// sinCos1D returns the [positions, width] table of 1-D embeddings, row pos
// at pos*width. width must be even.
func sinCos1D(positions, width int) []float32 {
	table := make([]float32, positions*width)
	for pos := range positions {
		fillSinCos(table[pos*width:(pos+1)*width], pos)
	}
	return table
}

// sinCos2D returns the [grid*grid, width] table of 2-D embeddings, row
// n = gy*grid + gx at n*width. width must be a multiple of 4.
func sinCos2D(grid, width int) []float32 {
	half := width / 2
	table := make([]float32, grid*grid*width)
	for gy := range grid {
		for gx := range grid {
			row := table[(gy*grid+gx)*width : (gy*grid+gx+1)*width]
			fillSinCos(row[:half], gx) // column first
			fillSinCos(row[half:], gy) // then row
		}
	}
	return table
}

// fillSinCos writes the 1-D embedding of pos, of width len(dst), into dst.
func fillSinCos(dst []float32, pos int) {
	half := len(dst) / 2
	for i := range half {
		omega := math.Exp(-float64(i) / float64(half) * ln10000)
		angle := float64(pos) * omega
		dst[i] = float32(math.Sin(angle))
		dst[half+i] = float32(math.Cos(angle))
	}
}
