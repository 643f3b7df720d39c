// Package export turns trained models into m3ae-edge model files.
package export

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/native"
)

// FromCheckpoint reads the native checkpoint folder at path and converts
// it with FromStore, using the config, vocabulary and norm saved in it. It
// returns the model file and the checkpoint's training step.
func FromCheckpoint(path string) (*core.ModelFile, int64, error) {
	saved, err := native.ReadCheckpoint(path)
	if err != nil {
		return nil, 0, err
	}
	mf, err := FromStore(saved.Store, saved.Config, saved.Vocab, saved.Norm)
	if err != nil {
		return nil, 0, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return mf, saved.Step, nil
}

// FromStore converts the model variables of a GoMLX store into a float32
// core.ModelFile of architecture cfg, with vocab and norm stored as given.
// Variable paths map to tensor names by native.ParamName and every tensor is
// copied, so the file does not alias the store.
//
// The training state (native.IsTrainingState: step counter, optimizer
// moments) is skipped. Every other variable must be a parameter of cfg with
// its float32 shape, and every parameter must be present. Otherwise FromStore
// fails with an error that lists each missing, unused and mis-shaped
// variable.
func FromStore(store *model.Store, cfg core.Config, vocab []string, norm core.ImageNorm) (*core.ModelFile, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	specs := core.ParamSpecs(cfg)
	wanted := make(map[string]core.ParamSpec, len(specs))
	for _, spec := range specs {
		wanted[spec.Name] = spec
	}

	mf := &core.ModelFile{
		Config:       cfg,
		Vocab:        slices.Clone(vocab),
		Norm:         norm,
		Quantization: core.QuantizationNone,
		Tensors:      make(map[string]*core.Tensor, len(specs)),
	}
	var unused, misShaped []string
	seen := make(map[string]bool, len(specs))
	for v := range store.IterVariables() {
		path := v.Path()
		if native.IsTrainingState(path) {
			continue
		}
		name := native.ParamName(path)
		spec, ok := wanted[name]
		if !ok {
			unused = append(unused, fmt.Sprintf("%s (%s)", path, v.Shape()))
			continue
		}
		seen[name] = true
		shape := v.Shape()
		if shape.DType != dtypes.Float32 || !slices.Equal(shape.Dimensions, spec.Shape) {
			misShaped = append(misShaped, fmt.Sprintf("%s is %s, want float32%v", path, shape, spec.Shape))
			continue
		}
		value, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("export: read variable %s: %w", path, err)
		}
		data, err := tensors.CopyFlatData[float32](value)
		if err != nil {
			return nil, fmt.Errorf("export: copy variable %s: %w", path, err)
		}
		mf.Tensors[name] = &core.Tensor{Name: name, DType: core.F32, Shape: slices.Clone(spec.Shape), F32: data}
	}
	var missing []string
	for _, spec := range specs {
		if !seen[spec.Name] {
			missing = append(missing, native.ParamPath(spec.Name))
		}
	}
	if len(missing)+len(unused)+len(misShaped) > 0 {
		var parts []string
		for _, group := range []struct {
			what  string
			items []string
		}{{"missing", missing}, {"unused", unused}, {"mis-shaped", misShaped}} {
			if len(group.items) > 0 {
				parts = append(parts, fmt.Sprintf("%d %s: %s", len(group.items), group.what, strings.Join(group.items, ", ")))
			}
		}
		return nil, fmt.Errorf("export: %w: store does not match config: %s", core.ErrInvalidModelFile, strings.Join(parts, "; "))
	}
	if err := mf.Validate(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return mf, nil
}
