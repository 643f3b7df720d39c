package core

import "fmt"

// Dense layers run on kernels packed at load time into column panels. Panel
// p holds output columns p*panelWidth..(p+1)*panelWidth-1 for every input
// k, the weights of row k side by side. A kernel then reads one contiguous
// [in][panelWidth] block per panel instead of values spaced out apart. The
// width suits the build's kernels (see panelWidth): 16 columns map onto one
// 512-bit vector or two 256-bit vectors, 8 onto two 128-bit vectors or two
// scalar tiles.
//
// Every kernel, vector or scalar, computes each output element alone: the
// bias, then + float32(x[i,k] * w[k,j]) for k = 0, 1, ... in ascending
// order. A vector lane is one output column. x[i,k] is broadcast to every
// lane, and the multiply and the add are separate instructions, never a
// fused multiply-add. So the SIMD kernels, the scalar fallback, the panel
// width, the row tiling and the split across goroutines all give the same
// bits.

// dense is one dense layer, y = x·kernel + bias, with the kernel [in, out]
// packed into panels. Row k of panel p is at index p*in + k and holds
// the panel's kernel columns, and the columns at or past out are zeros. A
// float32 layer sets panels. An int8 layer sets q and scale instead, and
// its weight (k, j) is float32(q[k, j]) * scale[j].
type dense struct {
	in, out int
	panels  [][panelWidth]float32 // [numPanels*in], nil for int8 layers
	q       []int8                // [numPanels*in*panelWidth], row k of panel p at (p*in+k)*panelWidth, nil for float32 layers
	scale   [][panelWidth]float32 // [numPanels] column scales of q, zeros past out
	bias    [][panelWidth]float32 // [numPanels], zeros past out and for no bias
}

// numPanels returns the number of panels of a layer with out columns.
func numPanels(out int) int { return (out + panelWidth - 1) / panelWidth }

// panelInt8 returns panel p of an int8 layer, [in][panelWidth] flattened.
func (d *dense) panelInt8(p int) []int8 {
	size := d.in * panelWidth
	return d.q[p*size : (p+1)*size]
}

// packDense packs a float32 kernel [in, out] (element (k, j) at k*out + j)
// and its bias [out] into panels. A nil bias counts as zeros. The kernel is
// copied, so the result does not alias it.
func packDense(kernel, bias []float32, in, out int) dense {
	d := dense{in: in, out: out, bias: packBias(bias, out)}
	d.panels = make([][panelWidth]float32, numPanels(out)*in)
	for k := range in {
		row := kernel[k*out : (k+1)*out]
		for j, v := range row {
			d.panels[(j/panelWidth)*in+k][j%panelWidth] = v
		}
	}
	return d
}

// packDenseInt8 packs an int8 kernel q [in, out] (element (k, j) at
// k*out + j) with its column scales [out] and bias [out] into panels. A nil
// bias counts as zeros. The int8 values stay int8, so the packed layer takes
// about as much memory as q.
func packDenseInt8(q []int8, scale, bias []float32, in, out int) dense {
	d := dense{in: in, out: out, bias: packBias(bias, out)}
	d.q = make([]int8, numPanels(out)*in*panelWidth)
	for k := range in {
		row := q[k*out : (k+1)*out]
		for j, v := range row {
			d.q[((j/panelWidth)*in+k)*panelWidth+j%panelWidth] = v
		}
	}
	d.scale = make([][panelWidth]float32, numPanels(out))
	for j, s := range scale[:out] {
		d.scale[j/panelWidth][j%panelWidth] = s
	}
	return d
}

// packBias returns bias [out] in panels, zeros for a nil bias.
func packBias(bias []float32, out int) [][panelWidth]float32 {
	packed := make([][panelWidth]float32, numPanels(out))
	if bias != nil {
		for j, b := range bias[:out] {
			packed[j/panelWidth][j%panelWidth] = b
		}
	}
	return packed
}

// matMulScratch is the scratch of matMul: one dequantization tile per
// goroutine for int8 layers, grown on first use, and the state of a call
// split across goroutines. Calls that share a matMulScratch must not
// overlap.
type matMulScratch struct {
	// tiles holds the tile of worker w at [w*tileRows, (w+1)*tileRows):
	// two int8 panels dequantized to float32.
	tiles    [][panelWidth]float32
	tileRows int
	split    splitState
}

// tile returns the first size rows of worker's dequantization tile. It
// grows the tiles first where workers tiles of size rows do not fit.
func (s *matMulScratch) tile(worker, workers, size int) [][panelWidth]float32 {
	if s.tileRows < size || len(s.tiles) < workers*s.tileRows {
		s.tileRows = max(s.tileRows, size)
		s.tiles = make([][panelWidth]float32, workers*s.tileRows)
	}
	return s.tiles[worker*s.tileRows : worker*s.tileRows+size]
}

// matMul sets dst[rows, d.out] = x[rows, d.in] · kernel + bias for a float32
// or an int8 layer. Each output element starts from its bias and adds the
// products over k in ascending order. So its bits depend only on its own
// row of x and column of the kernel, and not on rows, the target, the SIMD
// build or how many goroutines share the work. An int8 layer gives the bits
// of the float32 layer with the dequantized kernel.
//
// Natively, a large product runs on several goroutines, each with a range
// of panels (see minShareMultiplyAdds). Under js and wasip1 it runs on the
// caller alone.
func matMul(dst, x []float32, d *dense, rows int, s *matMulScratch) {
	if rows == 0 || d.out == 0 {
		return
	}
	if len(dst) < rows*d.out || len(x) < rows*d.in {
		panic(fmt.Sprintf("core.matMul: %d rows of %d inputs and %d outputs need x of %d and dst of %d values, have %d and %d",
			rows, d.in, d.out, rows*d.in, rows*d.out, len(x), len(dst)))
	}
	dst = dst[:rows*d.out]
	x = x[:rows*d.in]

	panels := len(d.bias)
	workers := min(matMulWorkers(rows, d.in, d.out), panels)
	if workers <= 1 {
		matMulPanels(dst, x, d, rows, 0, panels, s, 0, 1)
		return
	}
	s.split.run(dst, x, d, rows, s, workers)
}

// matMulPanels computes the output columns of panels [from, to) for every
// row, two panels at a time while two remain. worker and workers pick the
// int8 dequantization tile, which holds two panels.
func matMulPanels(dst, x []float32, d *dense, rows, from, to int, s *matMulScratch, worker, workers int) {
	in := d.in
	var tile [][panelWidth]float32
	if d.q != nil {
		tile = s.tile(worker, workers, 2*in)
	}
	p := from
	for ; p+2 <= to; p += 2 {
		var w0, w1 [][panelWidth]float32
		if d.q != nil {
			w0, w1 = tile[:in], tile[in:2*in]
			dequantizePanel(w0, d.panelInt8(p), &d.scale[p])
			dequantizePanel(w1, d.panelInt8(p+1), &d.scale[p+1])
		} else {
			w0, w1 = d.panels[p*in:(p+1)*in], d.panels[(p+1)*in:(p+2)*in]
		}
		matMulPanelPair(dst, x, w0, w1, &d.bias[p], &d.bias[p+1], rows, d.out, p*panelWidth)
	}
	if p < to {
		var w0 [][panelWidth]float32
		if d.q != nil {
			w0 = tile[:in]
			dequantizePanel(w0, d.panelInt8(p), &d.scale[p])
		} else {
			w0 = d.panels[p*in : (p+1)*in]
		}
		matMulPanel(dst, x, w0, &d.bias[p], rows, d.out, p*panelWidth)
	}
}

// storePanelRow writes the panelWidth values of acc to row[col:], leaving
// out the columns at or past len(row).
func storePanelRow(row []float32, col int, acc *[panelWidth]float32) {
	if col+panelWidth <= len(row) {
		*(*[panelWidth]float32)(row[col : col+panelWidth]) = *acc
		return
	}
	copy(row[col:], acc[:len(row)-col])
}
