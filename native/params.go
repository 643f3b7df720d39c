package native

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// ParamPath returns the GoMLX variable path of the parameter named name in
// core.ParamSpecs: "/" followed by the name with "." replaced by "/".
func ParamPath(name string) string {
	return model.ScopeSeparator + strings.ReplaceAll(name, ".", model.ScopeSeparator)
}

// ParamName returns the core.ParamSpec name of the variable at path, the
// inverse of ParamPath.
func ParamName(path string) string {
	return strings.ReplaceAll(strings.TrimPrefix(path, model.ScopeSeparator), model.ScopeSeparator, ".")
}

// IsTrainingState reports whether the variable at path belongs to the
// training state (step counter, optimizer moments) rather than the model.
func IsTrainingState(path string) bool {
	return path == globalStepPath || strings.HasPrefix(path, optimizerScope+model.ScopeSeparator)
}

// LoadModelFile creates one float32 variable per parameter of mf.Config in
// store, holding the tensor of the same name from mf. It fails, listing every
// problem, when a tensor is missing, is not float32 or has the wrong shape.
// Tensors that mf has beyond the parameters are ignored.
func LoadModelFile(store *model.Store, mf *core.ModelFile) error {
	if err := mf.Config.Validate(); err != nil {
		return err
	}
	var problems []string
	specs := core.ParamSpecs(mf.Config)
	values := make([]*tensors.Tensor, len(specs))
	for i, spec := range specs {
		t, ok := mf.Tensors[spec.Name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: missing", spec.Name))
		case t.DType != core.F32:
			problems = append(problems, fmt.Sprintf("%s: dtype %s, want %s", spec.Name, t.DType, core.F32))
		case !slices.Equal(t.Shape, spec.Shape) || len(t.F32) != spec.NumElements():
			problems = append(problems, fmt.Sprintf("%s: shape %v with %d values, want %v", spec.Name, t.Shape, len(t.F32), spec.Shape))
		default:
			values[i] = tensors.FromFlatDataAndDimensions(slices.Clone(t.F32), spec.Shape...)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %d of %d parameters invalid: %s; use a float32 model file of this config",
			core.ErrInvalidModelFile, len(problems), len(specs), strings.Join(problems, "; "))
	}
	for i, spec := range specs {
		v := store.GetVariable(ParamPath(spec.Name))
		if v != nil {
			if err := v.SetValue(values[i]); err != nil {
				return fmt.Errorf("set variable %s: %w", spec.Name, err)
			}
			continue
		}
		if _, err := store.CreateVariable(ParamPath(spec.Name), values[i]); err != nil {
			return fmt.Errorf("create variable %s: %w", spec.Name, err)
		}
	}
	return nil
}

// checkParamVariables returns an error listing every parameter of cfg that
// is missing from store or stored with another shape or dtype.
func checkParamVariables(store *model.Store, cfg core.Config) error {
	var problems []string
	for _, spec := range core.ParamSpecs(cfg) {
		v := store.GetVariable(ParamPath(spec.Name))
		if v == nil {
			problems = append(problems, fmt.Sprintf("%s: missing", spec.Name))
			continue
		}
		shape := v.Shape()
		if shape.DType != dtypes.Float32 || !slices.Equal(shape.Dimensions, spec.Shape) {
			problems = append(problems, fmt.Sprintf("%s: %s, want float32%v", spec.Name, shape, spec.Shape))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: store does not match the model's parameters: %s",
			core.ErrInvalidModelFile, strings.Join(problems, "; "))
	}
	return nil
}
