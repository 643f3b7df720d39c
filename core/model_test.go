package core

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestNewModelRejectsTensors(t *testing.T) {
	cfg := microConfig(t)
	const name = "encoder.Block_1.TransformerMLP_0.fc2.kernel"
	tests := []struct {
		name   string
		change func(mf *ModelFile)
	}{
		{"missing", func(mf *ModelFile) { delete(mf.Tensors, name) }},
		{"wrong shape", func(mf *ModelFile) {
			tensor := mf.Tensors[name]
			tensor.Shape = []int{tensor.Shape[1], tensor.Shape[0]}
		}},
		{"short data", func(mf *ModelFile) {
			tensor := mf.Tensors[name]
			tensor.F32 = tensor.F32[:len(tensor.F32)-1]
		}},
		{"int8", func(mf *ModelFile) {
			tensor := mf.Tensors[name]
			tensor.DType, tensor.I8, tensor.F32 = I8, make([]int8, len(tensor.F32)), nil
		}},
	}
	for _, tc := range tests {
		mf := perturbedModelFile(t, cfg, 1)
		tc.change(mf)
		_, err := NewModel(mf)
		if !errors.Is(err, ErrInvalidModelFile) {
			t.Errorf("NewModel(%s %s) error = %v, want ErrInvalidModelFile", tc.name, name, err)
			continue
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("NewModel(%s %s) error = %q, want it to name the tensor", tc.name, name, err)
		}
	}
	if _, err := NewModel(nil); !errors.Is(err, ErrInvalidModelFile) {
		t.Errorf("NewModel(nil) error = %v, want ErrInvalidModelFile", err)
	}
}

func TestInputsRejected(t *testing.T) {
	cfg := microConfig(t)
	m := newTestModel(t, cfg, 1)
	good := oracleCases(t, cfg, 1)[0].in
	withPatch := func(i int, v float32) []float32 {
		p := append([]float32(nil), good.Patches...)
		p[i] = v
		return p
	}
	withToken := func(i int, id int32) []int32 {
		tokens := append([]int32(nil), good.Tokens...)
		tokens[i] = id
		return tokens
	}
	tests := []struct {
		name    string
		in      Inputs
		message string
	}{
		{"empty", Inputs{}, "neither"},
		{"short patches", Inputs{Patches: good.Patches[:10]}, "patch values"},
		{"NaN patch", Inputs{Patches: withPatch(50, float32(math.NaN()))}, "patch value 50 (patch 1)"},
		{"infinite patch", Inputs{Patches: withPatch(3, float32(math.Inf(-1)))}, "patch value 3"},
		{"long text", Inputs{Tokens: append(good.Tokens, 5)}, "text has 17 tokens"},
		{"negative id", Inputs{Tokens: withToken(2, -1)}, "token 2 has id -1"},
		{"id past vocab", Inputs{Tokens: withToken(4, int32(cfg.VocabSize))}, "token 4 has id 30522"},
	}
	for _, tc := range tests {
		_, embedErr := m.Embed(tc.in, PoolCLS)
		_, reconstructErr := m.Reconstruct(tc.in, Masks{})
		for _, err := range []error{embedErr, reconstructErr} {
			if !errors.Is(err, ErrInvalidInput) {
				t.Errorf("Embed/Reconstruct(%s) error = %v, want ErrInvalidInput", tc.name, err)
				continue
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("Embed/Reconstruct(%s) error = %q, want it to contain %q", tc.name, err, tc.message)
			}
		}
	}
}
