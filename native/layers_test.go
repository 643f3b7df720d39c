package native

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX graph code reads as math with the dot import.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// float64Tolerance bounds the difference between a float64 graph and the
// same formula evaluated in Go float64.
const float64Tolerance = 1e-12

// referenceLayerNorm normalizes x with the given epsilon, scale 1, bias 0.
func referenceLayerNorm(x []float64, eps float64) []float64 {
	var mean, variance float64
	for _, v := range x {
		mean += v / float64(len(x))
	}
	for _, v := range x {
		variance += (v - mean) * (v - mean) / float64(len(x))
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = (v - mean) / math.Sqrt(variance+eps)
	}
	return out
}

// A row with variance 1.25e-6 normalizes to ±0.33 and ±1.0 with epsilon
// 1e-6 but to ±0.016 and ±0.047 with GoMLX's default 1e-3, so a regression
// to the default fails here.
func TestLayerNormEpsilon(t *testing.T) {
	x := []float64{1.000, 1.001, 1.002, 1.003}
	got := tensors.MustCopyFlatData[float64](MustExecOnce(testBackend(t), func(x *Node) *Node {
		g := x.Graph()
		return layerNorm(x, Ones(g, shapeF64(4)), Zeros(g, shapeF64(4)))
	}, x))
	want := referenceLayerNorm(x, 1e-6)
	withDefault := referenceLayerNorm(x, 1e-3)
	for i := range x {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Errorf("layerNorm(%v)[%d] = %.12g, want %.12g (epsilon 1e-6)", x, i, got[i], want[i])
		}
		if math.Abs(want[i]-withDefault[i]) < 0.1 {
			t.Fatalf("epsilon 1e-6 and 1e-3 give %.6g and %.6g at %d: the input cannot tell them apart", want[i], withDefault[i], i)
		}
	}
}

// geluErf is the exact GELU that GoMLX's activation.Gelu computes.
func geluErf(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

func geluTanhReference(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

func TestGeluIsTanhApproximation(t *testing.T) {
	xs := []float64{-4, -2.5, -1.5, -0.75, -0.1, 0, 0.3, 1, 1.7, 2.5, 4}
	got := tensors.MustCopyFlatData[float64](MustExecOnce(testBackend(t), geluTanh, xs))
	maxErfGap := 0.0
	for i, x := range xs {
		if want := geluTanhReference(x); math.Abs(got[i]-want) > float64Tolerance {
			t.Errorf("geluTanh(%g) = %.15g, want %.15g", x, got[i], want)
		}
		maxErfGap = max(maxErfGap, math.Abs(geluTanhReference(x)-geluErf(x)))
	}
	// The two forms differ by up to 4.4e-4 on these inputs (at ±2.5), far
	// above the tolerance, so the exact form would fail the checks above.
	if maxErfGap < 1e-4 {
		t.Fatalf("tanh and erf GELU differ by at most %g on %v: the inputs cannot tell them apart", maxErfGap, xs)
	}
}

func TestClipByGlobalNorm(t *testing.T) {
	tests := []struct {
		name    string
		maxNorm float64
		want    [2]float32
	}{
		{"above max", 1, [2]float32{0.6, 0.8}},
		{"below max", 10, [2]float32{3, 4}},
	}
	for _, tt := range tests {
		outputs := MustExecOnceN(testBackend(t), func(a, b *Node) []*Node {
			grads := []*Node{a, b}
			norm := globalNorm(grads)
			return append(clipByGlobalNorm(grads, norm, tt.maxNorm), norm)
		}, []float32{3}, []float32{4})
		got := [2]float32{tensors.MustCopyFlatData[float32](outputs[0])[0], tensors.MustCopyFlatData[float32](outputs[1])[0]}
		if math.Abs(float64(got[0]-tt.want[0])) > 1e-6 || math.Abs(float64(got[1]-tt.want[1])) > 1e-6 {
			t.Errorf("clipByGlobalNorm(%s: [3], [4], max %g) = %v, want %v", tt.name, tt.maxNorm, got, tt.want)
		}
		if norm := tensors.ToScalar[float32](outputs[2]); norm != 5 {
			t.Errorf("globalNorm([3], [4]) = %g, want 5", norm)
		}
	}
}

// adamWFixture is a store with one parameter of each kind, all ones, and
// their AdamW state.
func adamWFixture(t *testing.T) (*model.Store, []param) {
	t.Helper()
	store := model.NewStore()
	kinds := []core.ParamKind{core.KindKernel, core.KindBias, core.KindNormScale, core.KindNormBias, core.KindEmbeddingTable, core.KindToken}
	var params []param
	for i, kind := range kinds {
		spec := core.ParamSpec{Name: "p" + string(rune('a'+i)), Shape: []int{2}, Kind: kind}
		path := ParamPath(spec.Name)
		value, err := store.CreateVariable(path, tensors.FromFlatDataAndDimensions([]float32{1, -2}, 2))
		if err != nil {
			t.Fatal(err)
		}
		m1, err := zeroVariable(store, momentPath("m", path), spec.Shape)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := zeroVariable(store, momentPath("v", path), spec.Shape)
		if err != nil {
			t.Fatal(err)
		}
		params = append(params, param{spec: spec, value: value, moment1: m1, moment2: m2, hasWeightDecay: decays(kind)})
	}
	if _, err := store.CreateVariable(globalStepPath, tensors.FromScalar(int64(0))); err != nil {
		t.Fatal(err)
	}
	return store, params
}

// With a zero gradient AdamW's moments stay 0, so the only change is the
// decoupled weight decay: p -= lr*wd*p for kernels and LayerNorm scales,
// nothing for the other kinds. GoMLX's AdamW would decay them all.
func TestAdamWDecayMask(t *testing.T) {
	store, params := adamWFixture(t)
	opt := adamW{beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.05}
	const learningRate = 0.1
	exec := model.MustNewExec(testBackend(t), store, func(_ *model.Scope, lr *Node) *Node {
		grads := make([]*Node, len(params))
		for i := range grads {
			grads[i] = Zeros(lr.Graph(), shapeF32(2))
		}
		return opt.update(lr.Graph(), store, params, grads, lr)
	})
	exec.MustCall(float32(learningRate))
	for _, p := range params {
		got := tensors.MustCopyFlatData[float32](p.value.MustValue())
		factor := float32(1)
		if p.hasWeightDecay {
			factor = 1 - learningRate*0.05
		}
		want := []float32{1 * factor, -2 * factor}
		if math.Abs(float64(got[0]-want[0])) > 1e-7 || math.Abs(float64(got[1]-want[1])) > 1e-7 {
			t.Errorf("AdamW step with zero gradient on kind %d = %v, want %v", p.spec.Kind, got, want)
		}
	}
}

// Two AdamW steps against the formula in float64, with bias correction.
func TestAdamWMatchesReference(t *testing.T) {
	store, params := adamWFixture(t)
	params = params[:1] // one kernel
	opt := adamW{beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.05}
	exec := model.MustNewExec(testBackend(t), store, func(_ *model.Scope, grad, lr *Node) *Node {
		return opt.update(lr.Graph(), store, params, []*Node{grad}, lr)
	})
	grads := [][]float64{{0.5, -1}, {-0.25, 2}}
	lrs := []float64{0.01, 0.02}
	value, m, v := []float64{1, -2}, []float64{0, 0}, []float64{0, 0}
	for step := range grads {
		exec.MustCall([]float32{float32(grads[step][0]), float32(grads[step][1])}, float32(lrs[step]))
		tStep := float64(step + 1)
		for i := range value {
			g := grads[step][i]
			m[i] = 0.9*m[i] + 0.1*g
			v[i] = 0.95*v[i] + 0.05*g*g
			update := (m[i]/(1-math.Pow(0.9, tStep)))/(math.Sqrt(v[i]/(1-math.Pow(0.95, tStep)))+1e-8) + 0.05*value[i]
			value[i] -= lrs[step] * update
		}
		got := tensors.MustCopyFlatData[float32](params[0].value.MustValue())
		for i := range value {
			if math.Abs(float64(got[i])-value[i]) > 1e-6 {
				t.Errorf("AdamW step %d: value[%d] = %.8g, want %.8g", step+1, i, got[i], value[i])
			}
		}
	}
	if step := tensors.ToScalar[int64](store.GetVariable(globalStepPath).MustValue()); step != 2 {
		t.Errorf("global step after 2 updates = %d, want 2", step)
	}
}

func TestLearningRateSchedule(t *testing.T) {
	tests := []struct {
		step          int64
		warmup, total int
		want          float64
	}{
		{1, 10, 110, 0.1},
		{10, 10, 110, 1},
		{60, 10, 110, 0.5},
		{110, 10, 110, 0},
		{200, 10, 110, 0},
		{5, 0, 0, 1},
		{50, 10, 0, 1},
	}
	for _, tt := range tests {
		if got := learningRateAt(tt.step, 1, tt.warmup, tt.total); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("learningRateAt(step %d, warmup %d, total %d) = %g, want %g", tt.step, tt.warmup, tt.total, got, tt.want)
		}
	}
}
