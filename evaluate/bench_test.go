package evaluate

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkSoftmaxObjective times one objective and gradient evaluation
// at the size of the emoji probe: 6744 embeddings of 128 dimensions, 10
// classes.
func BenchmarkSoftmaxObjective(b *testing.B) {
	const n, numFeatures, numClasses = 6744, 128, 10
	rng := rand.New(rand.NewPCG(1, 2))
	o := &softmaxObjective{x: make([]float64, n*numFeatures), labels: make([]int, n), numClasses: numClasses, numFeatures: numFeatures, l2: 1e-4}
	for i := range o.x {
		o.x[i] = rng.NormFloat64()
	}
	for i := range o.labels {
		o.labels[i] = i % numClasses
	}
	params := make([]float64, numClasses*numFeatures+numClasses)
	grad := make([]float64, len(params))
	for b.Loop() {
		o.evaluate(params, grad)
	}
}
