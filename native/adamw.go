package native

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"

	"github.com/m3ae-edge/m3ae-edge/core"
)

const (
	// optimizerScope contains the AdamW moments: the first moment of the
	// parameter at path P is at optimizerScope+"/adamw/m"+P, the second at
	// optimizerScope+"/adamw/v"+P.
	optimizerScope = "/" + optimizer.Scope
	// globalStepPath is GoMLX's step counter, which its checkpoint package
	// puts in checkpoint file names: the number of updates applied.
	globalStepPath = "/" + optimizer.GlobalStepVariableName
)

// param is one trainable parameter with its AdamW state.
type param struct {
	spec           core.ParamSpec
	value          *model.Variable
	moment1        *model.Variable
	moment2        *model.Variable
	hasWeightDecay bool
}

// decays reports whether AdamW's weight decay applies to parameters of
// kind. As in M3AE's optimizer mask, kernels and LayerNorm scales decay,
// while biases, the embedding table and the CLS, type and mask tokens do
// not. GoMLX's own AdamW decays every variable.
func decays(kind core.ParamKind) bool {
	return kind == core.KindKernel || kind == core.KindNormScale
}

// momentPath returns the path of the moment ("m" or "v") of the parameter
// at paramPath.
func momentPath(moment, paramPath string) string {
	return optimizerScope + "/adamw/" + moment + paramPath
}

// newParams returns the parameters of cfg from store, creating zero AdamW
// moments and the step counter where store lacks them.
func newParams(store *model.Store, cfg core.Config) ([]param, error) {
	if err := checkParamVariables(store, cfg); err != nil {
		return nil, err
	}
	specs := core.ParamSpecs(cfg)
	params := make([]param, len(specs))
	for i, spec := range specs {
		path := ParamPath(spec.Name)
		p := param{spec: spec, value: store.GetVariable(path), hasWeightDecay: decays(spec.Kind)}
		var err error
		if p.moment1, err = zeroVariable(store, momentPath("m", path), spec.Shape); err != nil {
			return nil, err
		}
		if p.moment2, err = zeroVariable(store, momentPath("v", path), spec.Shape); err != nil {
			return nil, err
		}
		params[i] = p
	}
	if store.GetVariable(globalStepPath) == nil {
		if _, err := store.CreateVariable(globalStepPath, tensors.FromScalar(int64(0))); err != nil {
			return nil, err
		}
	}
	store.GetVariable(globalStepPath).SetTrainable(false)
	return params, nil
}

// zeroVariable returns the float32 variable at path, creating it filled with
// zeros when store lacks it.
func zeroVariable(store *model.Store, path string, dims []int) (*model.Variable, error) {
	if v := store.GetVariable(path); v != nil {
		if !v.Shape().Equal(shapes.Make(dtypes.Float32, dims...)) {
			return nil, fmt.Errorf("optimizer variable %s has shape %s, want float32%v", path, v.Shape(), dims)
		}
		return v.SetTrainable(false), nil
	}
	v, err := store.CreateVariable(path, tensors.FromShape(shapes.Make(dtypes.Float32, dims...)))
	if err != nil {
		return nil, err
	}
	return v.SetTrainable(false), nil
}

// adamW holds the optimizer's hyperparameters.
type adamW struct {
	beta1, beta2, epsilon, weightDecay float64
	// maxGradNorm clips the global gradient norm when positive.
	maxGradNorm float64
}

// globalNorm returns sqrt(sum of squares) over every element of grads.
func globalNorm(grads []*Node) *Node {
	var total *Node
	for _, grad := range grads {
		sum := ReduceAllSum(Square(grad))
		if total == nil {
			total = sum
		} else {
			total = Add(total, sum)
		}
	}
	return Sqrt(total)
}

// clipByGlobalNorm scales grads by maxNorm/norm when norm exceeds maxNorm,
// as optax.clip_by_global_norm does, and leaves them unchanged otherwise.
func clipByGlobalNorm(grads []*Node, norm *Node, maxNorm float64) []*Node {
	scale := Where(GreaterThan(norm, scalarLike(norm, maxNorm)), Div(scalarLike(norm, maxNorm), norm), scalarLike(norm, 1))
	clipped := make([]*Node, len(grads))
	for i, grad := range grads {
		clipped[i] = Mul(grad, scale)
	}
	return clipped
}

// update builds one AdamW step into g and returns the global gradient norm
// before clipping. For each parameter p with gradient grad, at step t (1 for
// the first update):
//
//	m = beta1 m + (1-beta1) grad
//	v = beta2 v + (1-beta2) grad^2
//	p = p - lr * ( m/(1-beta1^t) / (sqrt(v/(1-beta2^t)) + eps) + wd p )
//
// where wd is the weight decay for decaying kinds and 0 for the others:
// decoupled weight decay as in optax.adamw and PyTorch's AdamW.
func (o adamW) update(g *Graph, store *model.Store, params []param, grads []*Node, learningRate *Node) *Node {
	stepVar := store.GetVariable(globalStepPath)
	step := AddScalar(stepVar.NodeValue(g), 1)
	stepVar.SetNodeValue(step)
	t := ConvertDType(step, dtypes.Float32)
	correction1 := OneMinus(Pow(Scalar(g, dtypes.Float32, o.beta1), t))
	correction2 := OneMinus(Pow(Scalar(g, dtypes.Float32, o.beta2), t))

	norm := globalNorm(grads)
	if o.maxGradNorm > 0 {
		grads = clipByGlobalNorm(grads, norm, o.maxGradNorm)
	}
	for i, p := range params {
		grad := grads[i]
		m := Add(MulScalar(p.moment1.NodeValue(g), o.beta1), MulScalar(grad, 1-o.beta1))
		v := Add(MulScalar(p.moment2.NodeValue(g), o.beta2), MulScalar(Square(grad), 1-o.beta2))
		p.moment1.SetNodeValue(m)
		p.moment2.SetNodeValue(v)

		value := p.value.NodeValue(g)
		direction := Div(Div(m, correction1), AddScalar(Sqrt(Div(v, correction2)), o.epsilon))
		if p.hasWeightDecay && o.weightDecay != 0 {
			direction = Add(direction, MulScalar(value, o.weightDecay))
		}
		p.value.SetNodeValue(Sub(value, Mul(direction, learningRate)))
	}
	return norm
}

// learningRateAt returns the learning rate of update number step (1 for
// the first): linear warmup from peak/warmup to peak over warmup updates,
// then a cosine from peak down to 0 at update total. With total <= warmup
// the rate stays at peak after the warmup.
func learningRateAt(step int64, peak float64, warmup, total int) float64 {
	s := float64(step)
	if warmup > 0 && s <= float64(warmup) {
		return peak * s / float64(warmup)
	}
	if total <= warmup {
		return peak
	}
	progress := math.Min(1, (s-float64(warmup))/float64(total-warmup))
	return peak * 0.5 * (1 + math.Cos(math.Pi*progress))
}
