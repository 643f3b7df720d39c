package native

import "math"

// sinCos1D returns the fixed 1-D sin-cos position embedding as a flat
// [length, width] table: element (pos, i) is sin(pos*omega_i) for i < width/2
// and cos(pos*omega_(i-width/2)) after, with omega_j = 10000^(-j/(width/2)).
// It is computed in float64 and rounded once to float32. width must be even.
func sinCos1D(length, width int) []float32 {
	table := make([]float32, length*width)
	half := width / 2
	for pos := range length {
		row := table[pos*width : (pos+1)*width]
		for j := range half {
			omega := math.Pow(10000, -float64(j)/float64(half))
			angle := float64(pos) * omega
			row[j] = float32(math.Sin(angle))
			row[half+j] = float32(math.Cos(angle))
		}
	}
	return table
}

// sinCos2D returns the fixed 2-D sin-cos position embedding of a
// gridSize x gridSize patch grid as a flat [gridSize*gridSize, width] table.
// Row r*gridSize+c (patch row r, column c) holds the width/2-wide 1-D
// embedding of c followed by that of r. width must be a multiple of 4.
func sinCos2D(gridSize, width int) []float32 {
	half := width / 2
	line := sinCos1D(gridSize, half) // [gridSize, half]
	table := make([]float32, gridSize*gridSize*width)
	for r := range gridSize {
		for c := range gridSize {
			row := table[(r*gridSize+c)*width : (r*gridSize+c+1)*width]
			copy(row[:half], line[c*half:(c+1)*half])
			copy(row[half:], line[r*half:(r+1)*half])
		}
	}
	return table
}
