// Package quantize converts float32 M3AE model files to the int8 scheme
// core.QuantizationInt8 and measures what the conversion costs. It reports
// the error of every quantized tensor, and the end-to-end fidelity of the
// int8 model against the float32 one on sample images and captions.
//
// The quantizer is a plain reference implementation, short loops in the
// order docs/FORMAT.md specifies, so a numpy script that follows the spec
// writes the same bytes.
package quantize

import (
	"fmt"
	"math"
	"slices"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// MinScale is the smallest scale the quantizer writes, the smallest normal
// float32 (2^-126, numpy's np.finfo(np.float32).tiny). A column or row of
// zeros gets this scale and all-zero values, and a column whose max |w|/127
// would be subnormal gets it too, so that a rounded subnormal scale cannot
// push |w|/scale past 127.
const MinScale = 0x1p-126

// ScaleFor returns the symmetric int8 scale of values whose largest
// magnitude is maxAbs: maxAbs/127 in float32 arithmetic, or MinScale when
// that is smaller.
func ScaleFor(maxAbs float32) float32 {
	return max(maxAbs/core.Int8MaxLevel, MinScale)
}

// QuantizeValue returns w/scale, divided in float32, rounded half away
// from zero and clamped to [-127, 127].
func QuantizeValue(w, scale float32) int8 {
	r := math.Round(float64(w / scale))
	return int8(max(-core.Int8MaxLevel, min(core.Int8MaxLevel, r)))
}

// DequantizeValue returns float32(q) * scale, rounded to float32, the
// weight that an int8 model computes with.
func DequantizeValue(q int8, scale float32) float32 {
	return float32(float32(q) * scale)
}

// QuantizeColumns quantizes w[rows, cols] (element (r, c) at r*cols + c)
// with one scale per column, the scheme of dense kernels [in, out].
func QuantizeColumns(w []float32, rows, cols int) (q []int8, scale []float32) {
	q = make([]int8, rows*cols)
	scale = make([]float32, cols)
	for c := range cols {
		var maxAbs float32
		for r := range rows {
			maxAbs = max(maxAbs, abs32(w[r*cols+c]))
		}
		scale[c] = ScaleFor(maxAbs)
		for r := range rows {
			q[r*cols+c] = QuantizeValue(w[r*cols+c], scale[c])
		}
	}
	return q, scale
}

// QuantizeRows quantizes w[rows, cols] with one scale per row, the scheme
// of the text embedding table [V, D].
func QuantizeRows(w []float32, rows, cols int) (q []int8, scale []float32) {
	q = make([]int8, rows*cols)
	scale = make([]float32, rows)
	for r := range rows {
		var maxAbs float32
		for c := range cols {
			maxAbs = max(maxAbs, abs32(w[r*cols+c]))
		}
		scale[r] = ScaleFor(maxAbs)
		for c := range cols {
			q[r*cols+c] = QuantizeValue(w[r*cols+c], scale[r])
		}
	}
	return q, scale
}

func abs32(v float32) float32 {
	return math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
}

// TensorError is the error of one quantized tensor after dequantization,
// computed in float64 over every element as w - DequantizeValue(q, scale).
type TensorError struct {
	Name        string `json:"name"`
	Shape       []int  `json:"shape"`
	Granularity string `json:"granularity"` // "per-column" or "per-row"
	// MaxAbsError is the largest |w - dequantized w|.
	MaxAbsError float64 `json:"max_abs_error"`
	// RMSError is the root mean square of w - dequantized w.
	RMSError float64 `json:"rms_error"`
	// RelativeRMSError is RMSError over the root mean square of w, or 0
	// for an all-zero tensor.
	RelativeRMSError float64 `json:"relative_rms_error"`
}

// TensorReport lists the error of every quantized tensor in core.ParamSpecs
// order.
type TensorReport struct {
	Tensors []TensorError `json:"tensors"`
}

// QuantizeModelFile returns an int8 copy of the float32 file mf: every
// dense kernel quantized per output column, the text embedding table per
// row, and every other tensor copied as F32. It also returns the error of
// each quantized tensor. mf is not modified and the result shares no
// memory with it. The error wraps core.ErrInvalidModelFile when mf is
// invalid or not a float32 file.
func QuantizeModelFile(mf *core.ModelFile) (*core.ModelFile, *TensorReport, error) {
	if err := mf.Validate(); err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	if mf.Quantization != core.QuantizationNone {
		return nil, nil, fmt.Errorf("quantize: %w: quantization is %q, want %q: quantize the float32 file",
			core.ErrInvalidModelFile, mf.Quantization, core.QuantizationNone)
	}
	out := &core.ModelFile{
		Config:       mf.Config,
		Vocab:        slices.Clone(mf.Vocab),
		Norm:         mf.Norm,
		Quantization: core.QuantizationInt8,
		Tensors:      make(map[string]*core.Tensor, len(mf.Tensors)),
	}
	report := &TensorReport{}
	for _, spec := range core.ParamSpecs(mf.Config) {
		t := mf.Tensors[spec.Name]
		granularity := spec.Int8Granularity()
		if granularity == core.Int8None {
			out.Tensors[spec.Name] = &core.Tensor{
				Name: spec.Name, DType: core.F32, Shape: slices.Clone(t.Shape), F32: slices.Clone(t.F32),
			}
			continue
		}

		rows, cols := spec.Shape[0], spec.Shape[1]
		var q []int8
		var scale []float32
		if granularity == core.Int8PerColumn {
			q, scale = QuantizeColumns(t.F32, rows, cols)
		} else {
			q, scale = QuantizeRows(t.F32, rows, cols)
		}
		scaleName := spec.Name + core.ScaleSuffix
		out.Tensors[spec.Name] = &core.Tensor{Name: spec.Name, DType: core.I8, Shape: slices.Clone(spec.Shape), I8: q}
		out.Tensors[scaleName] = &core.Tensor{Name: scaleName, DType: core.F32, Shape: spec.Int8ScaleShape(), F32: scale}
		report.Tensors = append(report.Tensors, measureError(spec, granularity, t.F32, q, scale))
	}
	if err := out.Validate(); err != nil {
		return nil, nil, fmt.Errorf("quantize: %w", err)
	}
	return out, report, nil
}

// scaleIndex returns the index into scale of element (r, c).
func scaleIndex(granularity core.Int8Granularity, r, c int) int {
	if granularity == core.Int8PerRow {
		return r
	}
	return c
}

func measureError(spec core.ParamSpec, granularity core.Int8Granularity, w []float32, q []int8, scale []float32) TensorError {
	rows, cols := spec.Shape[0], spec.Shape[1]
	var maxAbs, sumSquares, weightSquares float64
	for r := range rows {
		for c := range cols {
			i := r*cols + c
			d := float64(w[i]) - float64(DequantizeValue(q[i], scale[scaleIndex(granularity, r, c)]))
			maxAbs = max(maxAbs, math.Abs(d))
			sumSquares += d * d
			weightSquares += float64(w[i]) * float64(w[i])
		}
	}
	e := TensorError{
		Name:        spec.Name,
		Shape:       slices.Clone(spec.Shape),
		Granularity: granularityName(granularity),
		MaxAbsError: maxAbs,
		RMSError:    math.Sqrt(sumSquares / float64(len(w))),
	}
	if weightSquares > 0 {
		e.RelativeRMSError = math.Sqrt(sumSquares / weightSquares)
	}
	return e
}

func granularityName(g core.Int8Granularity) string {
	if g == core.Int8PerRow {
		return "per-row"
	}
	return "per-column"
}

// Dequantize returns a float32 copy of the int8 file mf, each I8 value
// replaced by DequantizeValue(q, scale) and the scale tensors dropped. A
// float32 model built from it computes the same bits as an int8 model
// built from mf, because the int8 kernels dequantize with the same
// float32 product before they multiply.
func Dequantize(mf *core.ModelFile) (*core.ModelFile, error) {
	if err := mf.Validate(); err != nil {
		return nil, fmt.Errorf("dequantize: %w", err)
	}
	if mf.Quantization != core.QuantizationInt8 {
		return nil, fmt.Errorf("dequantize: %w: quantization is %q, want %q",
			core.ErrInvalidModelFile, mf.Quantization, core.QuantizationInt8)
	}
	out := &core.ModelFile{
		Config:       mf.Config,
		Vocab:        slices.Clone(mf.Vocab),
		Norm:         mf.Norm,
		Quantization: core.QuantizationNone,
		Tensors:      make(map[string]*core.Tensor, len(mf.Tensors)),
	}
	for _, spec := range core.ParamSpecs(mf.Config) {
		t := mf.Tensors[spec.Name]
		values := slices.Clone(t.F32)
		if granularity := spec.Int8Granularity(); granularity != core.Int8None {
			scale := mf.Tensors[spec.Name+core.ScaleSuffix].F32
			rows, cols := spec.Shape[0], spec.Shape[1]
			values = make([]float32, rows*cols)
			for r := range rows {
				for c := range cols {
					values[r*cols+c] = DequantizeValue(t.I8[r*cols+c], scale[scaleIndex(granularity, r, c)])
				}
			}
		}
		out.Tensors[spec.Name] = &core.Tensor{Name: spec.Name, DType: core.F32, Shape: slices.Clone(spec.Shape), F32: values}
	}
	return out, nil
}
