package core

import "math"

// Fixed sin-cos position embeddings, as in the official M3AE code.
//
// The 1-D embedding of width E at position pos is
//
//	[sin(pos*omega_0), ..., sin(pos*omega_{E/2-1}), cos(pos*omega_0), ..., cos(pos*omega_{E/2-1})]
//
// with omega_i = 1/10000^(i/(E/2)). The 2-D embedding of width E for patch
// n = gy*G + gx of a G x G grid puts the 1-D embedding of width E/2 of the
// column gx in its first half and that of the row gy in its second half:
// the official code builds its meshgrid with the column coordinate first.
//
// Tables are computed once per model in float64 with the deterministic
// detExp, detSin and detCos, then rounded to float32, so every target gets
// the same bits.

// ln10000 is ln(10000), the log of the base of the frequencies.
const ln10000 = 4 * math.Ln10

// sinCos1D returns the [positions, width] table of 1-D sin-cos embeddings
// for positions 0..positions-1. Row pos is at pos*width. width must be even.
func sinCos1D(positions, width int) []float32 {
	table := make([]float32, positions*width)
	for pos := range positions {
		fillSinCos(table[pos*width:(pos+1)*width], pos)
	}
	return table
}

// sinCos2D returns the [grid*grid, width] table of 2-D sin-cos embeddings
// for a grid x grid patch layout. Row n = gy*grid + gx is at n*width.
// width must be a multiple of 4.
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

// fillSinCos writes the 1-D sin-cos embedding of pos, of width len(dst),
// into dst.
func fillSinCos(dst []float32, pos int) {
	half := len(dst) / 2
	for i := range half {
		omega := detExp(float64(-float64(i) / float64(half) * ln10000))
		angle := float64(float64(pos) * omega)
		dst[i] = float32(detSin(angle))
		dst[half+i] = float32(detCos(angle))
	}
}

// TextPositionEmbedding returns the [positions, width] table of 1-D sin-cos
// position embeddings that the encoder (width EmbedDim) and the decoder
// (width DecoderEmbedDim) add to text tokens, with the bits every target
// computes. width must be even.
func TextPositionEmbedding(positions, width int) []float32 {
	return sinCos1D(positions, width)
}

// ImagePositionEmbedding returns the [grid*grid, width] table of 2-D sin-cos
// position embeddings added to the patches of a grid x grid layout, with
// the bits every target computes. width must be a multiple of 4.
func ImagePositionEmbedding(grid, width int) []float32 {
	return sinCos2D(grid, width)
}
