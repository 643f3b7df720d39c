package core

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// int8ModelFile returns a valid int8 file for cfg: the F32 parameters of
// randomModelFile, and I8 values and scales from fixed patterns. It is not
// the quantization of a float32 file; the quantize package tests that.
func int8ModelFile(cfg Config, seed uint64) *ModelFile {
	mf := randomModelFile(cfg, seed)
	mf.Quantization = QuantizationInt8
	for _, spec := range ParamSpecs(cfg) {
		if spec.Int8Granularity() == Int8None {
			continue
		}
		t := mf.Tensors[spec.Name]
		t.DType, t.F32, t.I8 = I8, nil, make([]int8, spec.NumElements())
		for i := range t.I8 {
			t.I8[i] = int8((i*37+len(spec.Name))%(2*Int8MaxLevel+1) - Int8MaxLevel)
		}
		scaleName := spec.Name + ScaleSuffix
		scale := make([]float32, spec.Int8ScaleShape()[0])
		for i := range scale {
			scale[i] = 0.001 * float32(1+i%7)
		}
		mf.Tensors[scaleName] = &Tensor{Name: scaleName, DType: F32, Shape: spec.Int8ScaleShape(), F32: scale}
	}
	return mf
}

// qkvScale is the scale tensor of qkvKernel in an int8 nano file, shape [24].
const qkvScale = qkvKernel + ScaleSuffix

// editInt8Nano returns a builder of the int8 nano file after edit.
func editInt8Nano(edit func(p *fileParts)) func() []byte {
	return func() []byte {
		p := newFileParts(int8ModelFile(nanoConfig, 3))
		edit(p)
		return p.bytes()
	}
}

func TestInt8ModelFileRoundTrip(t *testing.T) {
	want := int8ModelFile(nanoConfig, 1)
	data := encodeModelFile(t, want)
	got, err := ReadModelFile(data)
	if err != nil {
		t.Fatalf("ReadModelFile(int8 nano) error: %v", err)
	}
	if diff := diffModelFiles(got, want); diff != "" {
		t.Errorf("ReadModelFile(WriteModelFile(int8 nano)): %s", diff)
	}

	// Each I8 tensor comes right before its scales in the header.
	header := string(data[lengthPrefixSize:])
	kernelAt := strings.Index(header, `"`+qkvKernel+`":`)
	scaleAt := strings.Index(header, `"`+qkvScale+`":`)
	biasAt := strings.Index(header, `"encoder.Block_0.Attention_0.Dense_0.bias":`)
	if !(kernelAt >= 0 && kernelAt < scaleAt && scaleAt < biasAt) {
		t.Errorf("header offsets of kernel, scale, bias = %d, %d, %d, want increasing", kernelAt, scaleAt, biasAt)
	}
}

// TestReadModelFileInt8Accepts reads an int8 file laid out as numpy and
// safetensors lay it out, data sorted by name, against the writer's layout.
func TestReadModelFileInt8Accepts(t *testing.T) {
	want := int8ModelFile(nanoConfig, 3)
	p := newFileParts(want)
	slices.SortFunc(p.entries, func(a, b partEntry) int { return strings.Compare(a.name, b.name) })
	got, err := ReadModelFile(p.bytes())
	if err != nil {
		t.Fatalf("ReadModelFile(int8 nano sorted by name) error: %v", err)
	}
	if diff := diffModelFiles(got, want); diff != "" {
		t.Errorf("ReadModelFile(int8 nano sorted by name): %s", diff)
	}
}

func TestReadModelFileInt8Rejects(t *testing.T) {
	const tableScale = "text_embedding.embedding.scale"
	tests := []struct {
		name string
		file func() []byte
		want string
	}{
		{"zero scale", editInt8Nano(func(p *fileParts) { p.setFloat(qkvScale, 5, 0) }),
			`tensor "encoder.Block_0.Attention_0.Dense_0.kernel.scale": element 5 is 0, want a finite scale > 0`},
		{"negative zero scale", editInt8Nano(func(p *fileParts) { p.setFloat(qkvScale, 1, float32(math.Copysign(0, -1))) }),
			`tensor "encoder.Block_0.Attention_0.Dense_0.kernel.scale": element 1 is -0, want a finite scale > 0`},
		{"negative scale", editInt8Nano(func(p *fileParts) { p.setFloat(tableScale, 2, -0.5) }),
			`tensor "text_embedding.embedding.scale": element 2 is -0.5, want a finite scale > 0`},
		{"NaN scale", editInt8Nano(func(p *fileParts) { p.setFloat(qkvScale, 0, float32(math.NaN())) }),
			`tensor "encoder.Block_0.Attention_0.Dense_0.kernel.scale": element 0 is NaN, want a finite number`},
		{"+Inf scale", editInt8Nano(func(p *fileParts) { p.setFloat(tableScale, 7, float32(math.Inf(1))) }),
			`tensor "text_embedding.embedding.scale": element 7 is +Inf, want a finite number`},
		{"-Inf scale", editInt8Nano(func(p *fileParts) { p.setFloat(qkvScale, 3, float32(math.Inf(-1))) }),
			`tensor "encoder.Block_0.Attention_0.Dense_0.kernel.scale": element 3 is -Inf`},
		{"missing scale", editInt8Nano(func(p *fileParts) { p.removeEntry(qkvScale) }),
			`invalid model file: tensor "encoder.Block_0.Attention_0.Dense_0.kernel.scale": missing`},
		{"scale of the wrong length", editInt8Nano(func(p *fileParts) {
			e := p.entry(qkvScale)
			e.shape, e.data = "[8]", e.data[:32]
		}), `tensor "encoder.Block_0.Attention_0.Dense_0.kernel.scale": shape [8], want [24]`},
		{"scale per row of a kernel", editInt8Nano(func(p *fileParts) {
			e := p.entry("image_embedding.kernel.scale")
			e.shape, e.data = "[48]", make([]byte, 4*48)
		}), `tensor "image_embedding.kernel.scale": shape [48], want [8]`},
		{"scale of rank 2", editInt8Nano(func(p *fileParts) { p.entry(qkvScale).shape = "[1,24]" }),
			`tensor "encoder.Block_0.Attention_0.Dense_0.kernel.scale": shape [1 24], want [24]`},
		{"scale stored as I8", editInt8Nano(func(p *fileParts) {
			e := p.entry(qkvScale)
			e.dtype, e.data = "I8", e.data[:24]
		}), `tensor "encoder.Block_0.Attention_0.Dense_0.kernel.scale": dtype I8, want F32`},
		{"I8 where F32 expected", editInt8Nano(func(p *fileParts) {
			e := p.entry("encoder.Block_0.Attention_0.Dense_0.bias")
			e.dtype, e.data = "I8", e.data[:24]
		}), `tensor "encoder.Block_0.Attention_0.Dense_0.bias": dtype I8, want F32`},
		{"F32 where I8 expected", editInt8Nano(func(p *fileParts) {
			e := p.entry(qkvKernel)
			e.dtype, e.data = "F32", make([]byte, 4*8*24)
		}), `tensor "encoder.Block_0.Attention_0.Dense_0.kernel": dtype F32, want I8`},
		{"int8 value -128", editInt8Nano(func(p *fileParts) { p.entry(qkvKernel).data[3] = 0x80 }),
			`tensor "encoder.Block_0.Attention_0.Dense_0.kernel": element 3 is -128, want -127 to 127`},
		{"int8 file labelled float32", editInt8Nano(func(p *fileParts) { p.setMeta("quantization", QuantizationNone) }),
			`26 tensors do not match the config: tensor "decoder.Block_0.Attention_0.Dense_0.kernel": dtype I8, want F32; tensor "decoder.Block_0.Attention_0.Dense_0.kernel.scale": unknown`},
		{"float32 file labelled int8", editNano(func(p *fileParts) { p.setMeta("quantization", QuantizationInt8) }),
			`26 tensors do not match the config: tensor "decoder.Block_0.Attention_0.Dense_0.kernel": dtype F32, want I8; tensor "decoder.Block_0.Attention_0.Dense_0.kernel.scale": missing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mf, err := ReadModelFile(tt.file())
			if err == nil {
				t.Fatalf("ReadModelFile(%s) = %v, want an error containing %q", tt.name, mf, tt.want)
			}
			if !errors.Is(err, ErrInvalidModelFile) {
				t.Errorf("ReadModelFile(%s) error %q does not wrap ErrInvalidModelFile", tt.name, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadModelFile(%s) error = %q, want it to contain %q", tt.name, err, tt.want)
			}
		})
	}
}

func TestWriteModelFileInt8Rejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(mf *ModelFile)
		want string
	}{
		{"zero scale", func(mf *ModelFile) { mf.Tensors[qkvScale].F32[4] = 0 },
			`tensor "encoder.Block_0.Attention_0.Dense_0.kernel.scale": element 4 is 0, want a finite scale > 0`},
		{"NaN scale", func(mf *ModelFile) { mf.Tensors[qkvScale].F32[2] = float32(math.NaN()) },
			`tensor "encoder.Block_0.Attention_0.Dense_0.kernel.scale": element 2 is NaN`},
		{"missing scale", func(mf *ModelFile) { delete(mf.Tensors, qkvScale) },
			`tensor "encoder.Block_0.Attention_0.Dense_0.kernel.scale": missing`},
		{"int8 value -128", func(mf *ModelFile) { mf.Tensors[qkvKernel].I8[9] = -128 },
			`tensor "encoder.Block_0.Attention_0.Dense_0.kernel": element 9 is -128`},
		{"short int8 data", func(mf *ModelFile) { mf.Tensors[qkvKernel].I8 = mf.Tensors[qkvKernel].I8[:10] },
			`tensor "encoder.Block_0.Attention_0.Dense_0.kernel": has 0 F32 and 10 I8 values, want 192 I8 values`},
		{"F32 data in an I8 tensor", func(mf *ModelFile) { mf.Tensors[qkvKernel].F32 = []float32{1} },
			`has 1 F32 and 192 I8 values, want 192 I8 values`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mf := int8ModelFile(nanoConfig, 4)
			tt.edit(mf)
			var buf bytes.Buffer
			err := WriteModelFile(&buf, mf)
			if !errors.Is(err, ErrInvalidModelFile) {
				t.Fatalf("WriteModelFile(%s) error = %v, want one wrapping ErrInvalidModelFile", tt.name, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("WriteModelFile(%s) error = %q, want it to contain %q", tt.name, err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("WriteModelFile(%s) wrote %d bytes before failing, want 0", tt.name, buf.Len())
			}
		})
	}
}

func TestModelFileInt8Accessor(t *testing.T) {
	mf := int8ModelFile(nanoConfig, 6)
	q, scale, err := mf.Int8(qkvKernel)
	if err != nil || len(q) != 8*24 || len(scale) != 24 {
		t.Errorf("Int8(%s) = %d values, %d scales, %v, want 192 values and 24 scales", qkvKernel, len(q), len(scale), err)
	}
	tests := []struct{ name, want string }{
		{"absent", `tensor "absent" not found`},
		{"cls_token", `tensor "cls_token" has dtype F32, want I8`},
	}
	for _, tt := range tests {
		_, _, err := mf.Int8(tt.name)
		if !errors.Is(err, ErrInvalidModelFile) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Int8(%q) error = %v, want one wrapping ErrInvalidModelFile and containing %q", tt.name, err, tt.want)
		}
	}
}
