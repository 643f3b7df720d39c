package evaluate

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// separableSet draws n points in dims dimensions whose class is the
// argmax of three fixed linear scores, keeping only points whose best
// score leads the second by at least margin, so the classes are linearly
// separable with room to spare.
func separableSet(rng *rand.Rand, n, dims int, margin float64) ([][]float32, []int) {
	scores := [3][]float64{}
	for k := range scores {
		scores[k] = make([]float64, dims)
		scores[k][k%dims] = 1
		scores[k][(k+1)%dims] = -0.5
	}
	var features [][]float32
	var labels []int
	for len(features) < n {
		x := make([]float32, dims)
		for j := range x {
			x[j] = float32(rng.NormFloat64()*3 + 10) // off-centre, to exercise standardization
		}
		values := make([]float64, 3)
		for k := range values {
			for j, v := range x {
				values[k] += scores[k][j] * (float64(v) - 10)
			}
		}
		best := 0
		for k := range values {
			if values[k] > values[best] {
				best = k
			}
		}
		second := math.Inf(-1)
		for k, v := range values {
			if k != best {
				second = max(second, v)
			}
		}
		if values[best]-second < margin {
			continue
		}
		features = append(features, x)
		labels = append(labels, best)
	}
	return features, labels
}

func accuracyOf(c *Classifier, features [][]float32, labels []int) float64 {
	correct := 0
	for i, x := range features {
		if c.Predict(x) == labels[i] {
			correct++
		}
	}
	return float64(correct) / float64(len(features))
}

func TestTrainClassifierSeparable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	trainX, trainY := separableSet(rng, 600, 4, 0.5)
	testX, testY := separableSet(rng, 600, 4, 0.5)
	opts := DefaultClassifierOptions()
	opts.L2 = 1e-6
	c, stats, err := TrainClassifier(trainX, trainY, 3, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := accuracyOf(c, trainX, trainY); got != 1 {
		t.Errorf("train accuracy = %v, want 1 on a separable set", got)
	}
	if got := accuracyOf(c, testX, testY); got < 0.99 {
		t.Errorf("test accuracy = %v, want at least 0.99 on a separable set with a margin", got)
	}
	if stats.Iterations == 0 || stats.Loss > 0.05 {
		t.Errorf("fit stats = %+v, want some iterations and a loss near 0", stats)
	}
}

func TestTrainClassifierNonSeparable(t *testing.T) {
	// Two unit-variance Gaussians at -1 and +1 on feature 0, with a noise
	// feature 1: the best classifier thresholds feature 0 at 0, with
	// accuracy Phi(1) = 0.8413.
	rng := rand.New(rand.NewPCG(3, 4))
	draw := func(n int) ([][]float32, []int) {
		features := make([][]float32, n)
		labels := make([]int, n)
		for i := range features {
			labels[i] = i % 2
			centre := float64(2*labels[i] - 1)
			features[i] = []float32{float32(centre + rng.NormFloat64()), float32(rng.NormFloat64())}
		}
		return features, labels
	}
	trainX, trainY := draw(4000)
	testX, testY := draw(4000)
	c, stats, err := TrainClassifier(trainX, trainY, 2, DefaultClassifierOptions())
	if err != nil {
		t.Fatal(err)
	}

	if !stats.Converged {
		t.Errorf("fit did not converge: %+v", stats)
	}
	if got := accuracyOf(c, testX, testY); got < 0.82 || got > 0.86 {
		t.Errorf("test accuracy = %v, want about 0.841", got)
	}
	if got := accuracyOf(c, trainX, trainY); got > 0.87 {
		t.Errorf("train accuracy = %v, want about 0.841: the classes overlap", got)
	}
	if c.Predict([]float32{-0.3, 0}) != 0 || c.Predict([]float32{0.3, 0}) != 1 {
		t.Errorf("threshold is not near 0: Predict(-0.3) = %d, Predict(0.3) = %d", c.Predict([]float32{-0.3, 0}), c.Predict([]float32{0.3, 0}))
	}
	// The best classifier's cross-entropy, E[log(1 + exp(-2x))] for x ~
	// N(1, 1), is 0.357 nats (a Monte Carlo estimate over 200000 draws).
	if stats.Loss < 0.33 || stats.Loss > 0.39 {
		t.Errorf("final loss = %v nats, want about 0.357", stats.Loss)
	}
}

func TestTrainClassifierDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	features, labels := separableSet(rng, 200, 3, 0)
	first, _, err := TrainClassifier(features, labels, 3, DefaultClassifierOptions())
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := TrainClassifier(features, labels, 3, DefaultClassifierOptions())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first.Weights, second.Weights) || !slices.Equal(first.Bias, second.Bias) {
		t.Error("two fits of the same data gave different weights")
	}
}

func TestTrainClassifierConstantFeature(t *testing.T) {
	features := [][]float32{{5, 0}, {5, 1}, {5, 2}, {5, 3}}
	labels := []int{0, 0, 1, 1}
	c, _, err := TrainClassifier(features, labels, 2, DefaultClassifierOptions())
	if err != nil {
		t.Fatal(err)
	}
	if c.Scale[0] != 1 {
		t.Errorf("scale of the constant feature = %v, want 1", c.Scale[0])
	}
	for _, w := range c.Weights {
		if math.IsNaN(w) {
			t.Fatalf("weights contain NaN: %v", c.Weights)
		}
	}
	if got := accuracyOf(c, features, labels); got != 1 {
		t.Errorf("accuracy = %v, want 1", got)
	}
}

func TestSoftmaxObjectiveGradient(t *testing.T) {
	// Central differences of the objective match its analytic gradient.
	rng := rand.New(rand.NewPCG(7, 8))
	const numClasses, numFeatures, n = 3, 4, 20
	o := &softmaxObjective{x: make([]float64, n*numFeatures), labels: make([]int, n), numClasses: numClasses, numFeatures: numFeatures, l2: 0.1}
	for i := range o.x {
		o.x[i] = rng.NormFloat64()
	}
	for i := range o.labels {
		o.labels[i] = i % numClasses
	}
	params := make([]float64, numClasses*numFeatures+numClasses)
	for i := range params {
		params[i] = rng.NormFloat64()
	}
	grad := make([]float64, len(params))
	o.evaluate(params, grad)
	scratch := make([]float64, len(params))
	const h = 1e-6
	for j := range params {
		saved := params[j]
		params[j] = saved + h
		up := o.evaluate(params, scratch)
		params[j] = saved - h
		down := o.evaluate(params, scratch)
		params[j] = saved
		if numeric := (up - down) / (2 * h); math.Abs(numeric-grad[j]) > 1e-6 {
			t.Errorf("gradient entry %d = %v, central difference %v", j, grad[j], numeric)
		}
	}
}

func TestMinimizeLBFGSQuadratic(t *testing.T) {
	// f(x) = sum_i (i+1) (x_i - 1)^2 has its minimum 0 at x = 1.
	f := func(x, grad []float64) float64 {
		var sum float64
		for i, v := range x {
			weight := float64(i + 1)
			sum += weight * (v - 1) * (v - 1)
			grad[i] = 2 * weight * (v - 1)
		}
		return sum
	}
	x := make([]float64, 5)
	stats := minimizeLBFGS(f, x, 100, 1e-9)
	if !stats.Converged {
		t.Fatalf("stats = %+v, want converged", stats)
	}
	for i, v := range x {
		if math.Abs(v-1) > 1e-8 {
			t.Errorf("x[%d] = %v, want 1", i, v)
		}
	}
}

func TestTrainClassifierRejectsBadInput(t *testing.T) {
	good := [][]float32{{0, 1}, {1, 0}}
	tests := []struct {
		name       string
		features   [][]float32
		labels     []int
		numClasses int
		opts       ClassifierOptions
		want       string
	}{
		{"empty", nil, nil, 2, DefaultClassifierOptions(), "no training examples"},
		{"label count", good, []int{0}, 2, DefaultClassifierOptions(), "1 labels for 2 feature vectors"},
		{"one class", good, []int{0, 0}, 1, DefaultClassifierOptions(), "at least 2"},
		{"ragged", [][]float32{{0, 1}, {1}}, []int{0, 1}, 2, DefaultClassifierOptions(), "feature vector 1 has 1 entries, want 2"},
		{"NaN", [][]float32{{0, 1}, {float32(math.NaN()), 0}}, []int{0, 1}, 2, DefaultClassifierOptions(), "must be finite"},
		{"label range", good, []int{0, 2}, 2, DefaultClassifierOptions(), "label 2 of example 1 is outside [0, 2)"},
		{"negative L2", good, []int{0, 1}, 2, ClassifierOptions{L2: -1, MaxIterations: 10}, "L2 weight -1"},
		{"no iterations", good, []int{0, 1}, 2, ClassifierOptions{MaxIterations: 0}, "max iterations 0"},
	}
	for _, tt := range tests {
		_, _, err := TrainClassifier(tt.features, tt.labels, tt.numClasses, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}
