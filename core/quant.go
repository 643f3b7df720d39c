package core

import "fmt"

// QuantizationInt8 is the "quantization" metadata value of an int8 file.
// Every dense kernel [in, out] is stored as I8 with one float32 scale per
// output column, and the text embedding table [V, D] as I8 with one scale
// per row. Every other parameter stays F32. docs/FORMAT.md specifies the
// scheme; the quantize package writes it.
const QuantizationInt8 = "int8-symmetric-v1"

// ScaleSuffix ends the name of the F32 tensor that holds the scales of an
// I8 tensor: the scales of "<name>" are stored as "<name>.scale".
const ScaleSuffix = ".scale"

// Int8MaxLevel is the largest magnitude of a stored int8 value. The scheme
// is symmetric, so values lie in [-Int8MaxLevel, Int8MaxLevel] and the
// reader rejects -128.
const Int8MaxLevel = 127

// Int8Granularity is the grouping of a parameter's scales in an int8 file.
type Int8Granularity int

const (
	// Int8None keeps the parameter F32: biases, LayerNorm parameters and
	// the CLS, type and mask embeddings.
	Int8None Int8Granularity = iota
	// Int8PerColumn stores a dense kernel [in, out] as I8 with one scale
	// per output column, a scale tensor of shape [out].
	Int8PerColumn
	// Int8PerRow stores the text embedding table [V, D] as I8 with one
	// scale per row, a scale tensor of shape [V].
	Int8PerRow
)

// Int8Granularity returns how an int8 file stores p.
func (p ParamSpec) Int8Granularity() Int8Granularity {
	switch p.Kind {
	case KindKernel:
		return Int8PerColumn
	case KindEmbeddingTable:
		return Int8PerRow
	}
	return Int8None
}

// Int8ScaleShape returns the shape of p's scale tensor in an int8 file, or
// nil when p stays F32.
func (p ParamSpec) Int8ScaleShape() []int {
	switch p.Int8Granularity() {
	case Int8PerColumn:
		return []int{p.Shape[1]}
	case Int8PerRow:
		return []int{p.Shape[0]}
	}
	return nil
}

// Int8 returns the values and the scales of the I8 tensor called name. The
// slices are the tensors' own storage, not copies. Element (r, c) of a
// per-column tensor dequantizes to float32(q[r*cols+c]) * scale[c], and of a
// per-row tensor to float32(q[r*cols+c]) * scale[r].
func (mf *ModelFile) Int8(name string) (q []int8, scale []float32, err error) {
	t, err := mf.Tensor(name)
	if err != nil {
		return nil, nil, err
	}
	if t.DType != I8 {
		return nil, nil, fmt.Errorf("%w: tensor %q has dtype %s, want I8", ErrInvalidModelFile, name, t.DType)
	}
	scale, err = mf.Float32(name + ScaleSuffix)
	if err != nil {
		return nil, nil, err
	}
	return t.I8, scale, nil
}

// checkQuantization rejects every scheme but QuantizationNone and
// QuantizationInt8.
func checkQuantization(scheme string) error {
	if scheme != QuantizationNone && scheme != QuantizationInt8 {
		return fmt.Errorf("metadata %q = %q is not supported: this version reads %q (float32) and %q",
			metaQuantization, scheme, QuantizationNone, QuantizationInt8)
	}
	return nil
}

// tensorSpecs lists the tensors that a file with the given quantization
// stores for params, in order. An int8 file stores each quantized
// parameter as I8 followed by its F32 scales.
func tensorSpecs(params []ParamSpec, quantization string) []tensorSpec {
	specs := make([]tensorSpec, 0, len(params))
	for _, p := range params {
		if quantization != QuantizationInt8 || p.Int8Granularity() == Int8None {
			specs = append(specs, tensorSpec{name: p.Name, dtype: F32, shape: p.Shape})
			continue
		}
		specs = append(specs,
			tensorSpec{name: p.Name, dtype: I8, shape: p.Shape},
			tensorSpec{name: p.Name + ScaleSuffix, dtype: F32, shape: p.Int8ScaleShape(), isScale: true})
	}
	return specs
}

// checkInt8Values checks what the int8 scheme adds to the dtype checks:
// every I8 value is at least -Int8MaxLevel, and every scale is positive.
// Scales are F32, so the reader or checkTensorData has already rejected
// NaN and infinite ones.
func checkInt8Values(specs []tensorSpec, tensors map[string]*Tensor) error {
	for _, s := range specs {
		t := tensors[s.name]
		switch {
		case s.dtype == I8:
			for i, v := range t.I8 {
				if v < -Int8MaxLevel {
					return fmt.Errorf("tensor %q: element %d is %d, want -%d to %d: the int8 scheme is symmetric",
						s.name, i, v, Int8MaxLevel, Int8MaxLevel)
				}
			}
		case s.isScale:
			for i, v := range t.F32 {
				if !(v > 0) {
					return fmt.Errorf("tensor %q: element %d is %v, want a finite scale > 0: quantize the float32 file again",
						s.name, i, v)
				}
			}
		}
	}
	return nil
}
