package core

import (
	"fmt"
	"image"
)

// This file resizes 8-bit images with Pillow's bicubic filter, the filter
// that torchvision's Resize(size, BICUBIC) applies to PIL images. It
// repeats the steps of Pillow's resampler, including its fixed-point
// rounding, so an 8-bit RGB image gives Pillow's output bits. The tests
// compare it bit for bit with images that Pillow 9.4 resized on amd64.
//
//   - The kernel is the cubic convolution kernel with a = -0.5 and support
//     2. When shrinking by a factor s > 1, the kernel is stretched to
//     support 2s, which antialiases.
//   - Output pixel i of an axis is centred on source coordinate
//     (i + 0.5) * inSize/outSize. Source pixel j sits at j + 0.5.
//   - The kernel is clipped at the image borders, and the weights of each
//     output pixel are divided by their sum and rounded to fixed point
//     with weightBits fraction bits.
//   - The horizontal pass runs first, over only the rows that the vertical
//     pass reads. Its output is rounded and clamped to 8 bits, and the
//     vertical pass reads that. A pass whose axis keeps its size is
//     skipped.
//
// The weights are computed in float64, and every product is wrapped in an
// explicit float64 conversion. The Go spec says that such a conversion
// rounds the product, which forbids fusing it into a multiply-add. So the
// weights are the same on targets with FMA instructions (arm64, amd64 with
// GOAMD64=v3) as on those without. The pixel arithmetic is integer, and
// nothing runs concurrently.

const (
	// bicubicA is the a parameter of the cubic convolution kernel, the
	// value Pillow uses.
	bicubicA = -0.5
	// bicubicSupport is the radius of the kernel in source pixels when
	// the image is not shrunk.
	bicubicSupport = 2.0
	// weightBits is the number of fraction bits of the fixed-point
	// weights, 32 - 8 - 2 as in Pillow, so that the sum of 8-bit values
	// times weights over the kernel fits in an int32.
	weightBits = 22
	// halfLevel is half an 8-bit level in fixed point. Every weighted sum
	// starts from it, so the shift in clampToLevel rounds to nearest.
	halfLevel = 1 << (weightBits - 1)
)

// filterSpan is the run of source pixels that one output pixel reads:
// source indices start to start+count-1. int32 halves the table of a long
// side, and PreprocessImage's MaxImagePixels limit keeps every index below
// 1<<31.
type filterSpan struct {
	start, count int32
}

// axisWeights is the fixed-point bicubic filter that resamples one axis
// from inSize to len(spans) pixels. Output pixel i reads the source pixels
// of spans[i] with the weights weights[i*taps : i*taps+spans[i].count].
// Each row of weights sums to about 1<<weightBits.
type axisWeights struct {
	taps    int
	spans   []filterSpan
	weights []int32
}

// newAxisWeights returns the filter that resamples an axis of inSize
// pixels to outSize pixels. Both must be at least 1.
func newAxisWeights(inSize, outSize int) axisWeights {
	// Pillow takes the source extent as a C float, so sides above 1<<24
	// round to float32 here as they do there.
	scale := float64(float32(inSize)) / float64(outSize)
	filterScale := max(scale, 1)
	support := float64(bicubicSupport * filterScale)
	taps := ceilPositive(support)*2 + 1
	invFilterScale := 1 / filterScale

	w := axisWeights{
		taps:    taps,
		spans:   make([]filterSpan, outSize),
		weights: make([]int32, outSize*taps),
	}
	for i := range outSize {
		center := float64(float64(float64(i)+0.5) * scale)
		// int truncates toward zero, as the C cast does.
		start := max(int(center-support+0.5), 0)
		end := min(int(center+support+0.5), inSize)
		w.spans[i] = filterSpan{start: int32(start), count: int32(end - start)}

		// The kernel values are summed first and then computed again to
		// be divided by the sum. Both passes give the same bits, so no
		// float64 buffer is needed.
		var sum float64
		for j := start; j < end; j++ {
			sum += bicubicKernel(kernelOffset(j, center, invFilterScale))
		}
		row := w.weights[i*taps : i*taps+taps]
		for j := start; j < end; j++ {
			weight := bicubicKernel(kernelOffset(j, center, invFilterScale))
			if sum != 0 {
				weight /= sum
			}
			row[j-start] = fixedPointWeight(weight)
		}
	}
	return w
}

// kernelOffset returns the kernel argument for source pixel j seen from
// an output pixel centred on center, in units of the stretched kernel.
func kernelOffset(j int, center, invFilterScale float64) float64 {
	return float64((float64(j) - center + 0.5) * invFilterScale)
}

// bicubicKernel returns the cubic convolution kernel with a = bicubicA at
// x. It groups the operations as Pillow does, and each conversion rounds a
// product so that it cannot be fused with the following addition.
func bicubicKernel(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		// ((a+2)*x - (a+3)) * x * x + 1
		p := float64((bicubicA+2)*x) - (bicubicA + 3)
		p = float64(p * x)
		p = float64(p * x)
		return p + 1
	}
	if x < 2 {
		// (((x-5)*x + 8)*x - 4) * a
		p := float64((x-5)*x) + 8
		p = float64(p*x) - 4
		return float64(p * bicubicA)
	}
	return 0
}

// fixedPointWeight rounds a normalized weight to fixed point with
// weightBits fraction bits, halves away from zero.
func fixedPointWeight(weight float64) int32 {
	scaled := float64(weight * (1 << weightBits))
	if weight < 0 {
		return int32(scaled - 0.5)
	}
	return int32(scaled + 0.5)
}

// ceilPositive returns the smallest integer not below x, for x >= 0. It
// avoids math.Ceil, which has assembly implementations.
func ceilPositive(x float64) int {
	n := int(x)
	if float64(n) < x {
		n++
	}
	return n
}

// clampToLevel converts a fixed-point sum, rounding offset included, to
// an 8-bit level, clamping it to [0, 255].
func clampToLevel(sum int32) uint8 {
	if sum >= 256<<weightBits {
		return 255
	}
	if sum <= 0 {
		return 0
	}
	return uint8(sum >> weightBits)
}

// resizeBicubic returns src resampled to width x height pixels with
// Pillow's bicubic filter, as a new image with bounds starting at (0, 0).
// It resamples the red, green and blue channels and sets alpha to 255, so
// src must be opaque. A resize to the size of src copies src unchanged.
// Besides the result it allocates
// the weight tables of the resized axes and, when both axes change, one
// intermediate image of width pixels by the source rows that the vertical
// pass reads.
//
// It panics if width, height or a side of src is below 1, which are
// programming errors.
func resizeBicubic(src *image.RGBA, width, height int) *image.RGBA {
	srcWidth, srcHeight := src.Rect.Dx(), src.Rect.Dy()
	if width < 1 || height < 1 || srcWidth < 1 || srcHeight < 1 {
		panic(fmt.Sprintf("core.resizeBicubic: resizing %dx%d pixels to %dx%d, want every side at least 1",
			srcWidth, srcHeight, width, height))
	}
	if width == srcWidth && height == srcHeight {
		out := image.NewRGBA(image.Rect(0, 0, width, height))
		for y := range height {
			start := src.PixOffset(src.Rect.Min.X, src.Rect.Min.Y+y)
			copy(out.Pix[y*out.Stride:y*out.Stride+width*4], src.Pix[start:start+width*4])
		}
		return out
	}

	// The vertical filter fixes which source rows the horizontal pass
	// must produce: firstRow to lastRow-1.
	var vertical axisWeights
	firstRow, lastRow := 0, srcHeight
	if height != srcHeight {
		vertical = newAxisWeights(srcHeight, height)
		last := vertical.spans[height-1]
		firstRow, lastRow = int(vertical.spans[0].start), int(last.start+last.count)
	}

	// Horizontal pass: src [srcHeight, srcWidth] rows firstRow..lastRow-1
	// to rows [lastRow-firstRow, width], or src itself when the width
	// stays.
	rows, rowOffset := src, 0
	if width != srcWidth {
		rows = image.NewRGBA(image.Rect(0, 0, width, lastRow-firstRow))
		resampleRows(rows, src, firstRow, newAxisWeights(srcWidth, width))
		rowOffset = firstRow
	}
	if height == srcHeight {
		return rows
	}

	// Vertical pass: rows to out [height, width].
	out := image.NewRGBA(image.Rect(0, 0, width, height))
	resampleColumns(out, rows, rowOffset, vertical)
	return out
}

// resampleRows writes into each row y of dst the horizontal resampling of
// row firstRow+y of src, counted from src.Rect.Min.
func resampleRows(dst, src *image.RGBA, firstRow int, w axisWeights) {
	for y := range dst.Rect.Dy() {
		srcRow := src.Pix[src.PixOffset(src.Rect.Min.X, src.Rect.Min.Y+firstRow+y):]
		dstRow := dst.Pix[y*dst.Stride : y*dst.Stride+dst.Rect.Dx()*4]
		for x, span := range w.spans {
			start, count := int(span.start), int(span.count)
			weights := w.weights[x*w.taps : x*w.taps+count]
			pixels := srcRow[start*4 : (start+count)*4]
			r, g, b := int32(halfLevel), int32(halfLevel), int32(halfLevel)
			for i, weight := range weights {
				pixel := pixels[i*4 : i*4+3]
				r += int32(pixel[0]) * weight
				g += int32(pixel[1]) * weight
				b += int32(pixel[2]) * weight
			}
			out := dstRow[x*4 : x*4+4]
			out[0], out[1], out[2], out[3] = clampToLevel(r), clampToLevel(g), clampToLevel(b), 0xff
		}
	}
}

// resampleColumns writes into dst the vertical resampling of src, where
// source row j of the filter is row j-rowOffset of src, counted from
// src.Rect.Min.
func resampleColumns(dst, src *image.RGBA, rowOffset int, w axisWeights) {
	width := dst.Rect.Dx()
	for y, span := range w.spans {
		weights := w.weights[y*w.taps : y*w.taps+int(span.count)]
		top := src.PixOffset(src.Rect.Min.X, src.Rect.Min.Y+int(span.start)-rowOffset)
		dstRow := dst.Pix[y*dst.Stride : y*dst.Stride+width*4]
		for x := range width {
			r, g, b := int32(halfLevel), int32(halfLevel), int32(halfLevel)
			offset := top + x*4
			for _, weight := range weights {
				pixel := src.Pix[offset : offset+3]
				r += int32(pixel[0]) * weight
				g += int32(pixel[1]) * weight
				b += int32(pixel[2]) * weight
				offset += src.Stride
			}
			out := dstRow[x*4 : x*4+4]
			out[0], out[1], out[2], out[3] = clampToLevel(r), clampToLevel(g), clampToLevel(b), 0xff
		}
	}
}
