package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// TSNEOptions are the settings of TSNE.
type TSNEOptions struct {
	// Perplexity is the effective number of neighbours of each point:
	// each point's Gaussian width is set so that the perplexity of its
	// conditional distribution over the other points is this value. It
	// must be positive and below the number of points less 1.
	Perplexity float64
	// Iterations is the number of gradient descent steps.
	Iterations int
	// LearningRate is the step size of gradient descent. 0 picks
	// max(n / EarlyExaggeration / 4, 50) for n points, scikit-learn's
	// "auto".
	LearningRate float64
	// EarlyExaggeration multiplies the affinities P during the first
	// ExaggerationIterations steps, which pulls clusters apart early.
	EarlyExaggeration      float64
	ExaggerationIterations int
	// Seed picks the random initial points.
	Seed uint64
}

// DefaultTSNEOptions returns the defaults of scikit-learn 1.5's
// sklearn.manifold.TSNE: perplexity 30, 1000 iterations, the automatic
// learning rate and an early exaggeration of 12 for 250 iterations.
// scikit-learn starts from PCA, but TSNE always starts from random points.
func DefaultTSNEOptions() TSNEOptions {
	return TSNEOptions{
		Perplexity:             30,
		Iterations:             1000,
		EarlyExaggeration:      12,
		ExaggerationIterations: 250,
		Seed:                   1,
	}
}

// TSNEResult is the output of TSNE.
type TSNEResult struct {
	// Points are the 2-D points, one per input in input order.
	Points [][2]float64
	// KLDivergence is KL(P || Q) in nats at the end, the cost that t-SNE
	// minimizes.
	KLDivergence float64
	// LearningRate is the step size used, after resolving 0 to the
	// automatic value.
	LearningRate float64
}

// Constants of the optimizer and of the perplexity search, with
// scikit-learn's values (sklearn/manifold/_tsne.py and _utils.pyx).
const (
	initialStd          = 1e-4 // standard deviation of the initial points
	momentumExaggerated = 0.5  // momentum while the affinities are exaggerated
	momentumFinal       = 0.8
	gainIncrease        = 0.2 // added to a gain whose gradient changed sign
	gainDecrease        = 0.8 // multiplies a gain whose gradient kept its sign
	minGain             = 0.01
	minAffinity         = 1e-12 // floor of P, so that log(P) is finite
	// Binary search for each point's Gaussian precision.
	perplexityTolerance = 1e-5 // on the entropy, in nats
	perplexitySteps     = 100
)

// TSNE embeds points, n vectors of equal length, in two dimensions with
// exact t-SNE (van der Maaten and Hinton 2008). Input affinities are
// Gaussian on squared Euclidean distances, each point's width found by
// binary search to match opts.Perplexity, and symmetrized as
// P = (P(j|i) + P(i|j)) / 2n. Output affinities Q follow a Student t
// distribution with one degree of freedom. Gradient descent on KL(P || Q)
// uses momentum and per-coordinate gains (delta-bar-delta), starting from
// Gaussian points of standard deviation 1e-4 drawn with opts.Seed.
//
// Time is O(n^2 * Iterations) and memory 8 bytes per pair of points,
// because P is kept as the upper triangle of an n x n float64 matrix. progress, when not
// nil, is called after each iteration with the number done and the total.
// TSNE stops with ctx's error when ctx is cancelled. It runs in one
// goroutine, so the same inputs and options give the same points.
func TSNE(ctx context.Context, points [][]float32, opts TSNEOptions, progress func(done, total int)) (*TSNEResult, error) {
	if err := validateTSNE(points, opts); err != nil {
		return nil, fmt.Errorf("t-SNE: %w", err)
	}
	n := len(points)
	p, err := jointAffinities(ctx, points, opts.Perplexity)
	if err != nil {
		return nil, fmt.Errorf("t-SNE: %w", err)
	}
	learningRate := opts.LearningRate
	if learningRate == 0 {
		learningRate = max(float64(n)/opts.EarlyExaggeration/4, 50)
	}

	rng := rand.New(rand.NewPCG(opts.Seed, 0))
	y := make([]float64, 2*n) // point i is y[2i], y[2i+1]
	for i := range y {
		y[i] = initialStd * rng.NormFloat64()
	}
	grad := make([]float64, 2*n)
	update := make([]float64, 2*n)
	gains := make([]float64, 2*n)
	for i := range gains {
		gains[i] = 1
	}
	for iteration := range opts.Iterations {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("t-SNE: %w", err)
		}
		exaggeration, momentum := 1.0, momentumFinal
		if iteration < opts.ExaggerationIterations {
			exaggeration, momentum = opts.EarlyExaggeration, momentumExaggerated
		}
		gradient(grad, y, p, exaggeration)
		for k := range y {
			// Grow the gain of a coordinate whose gradient opposes its
			// last step, which means that the step overshot.
			if grad[k]*update[k] < 0 {
				gains[k] += gainIncrease
			} else {
				gains[k] = max(gains[k]*gainDecrease, minGain)
			}
			update[k] = momentum*update[k] - learningRate*gains[k]*grad[k]
			y[k] += update[k]
		}
		center(y)
		if progress != nil {
			progress(iteration+1, opts.Iterations)
		}
	}

	result := &TSNEResult{
		Points:       make([][2]float64, n),
		KLDivergence: klDivergence(y, p),
		LearningRate: learningRate,
	}
	for i := range result.Points {
		result.Points[i] = [2]float64{y[2*i], y[2*i+1]}
	}
	return result, nil
}

func validateTSNE(points [][]float32, opts TSNEOptions) error {
	n := len(points)
	if n < 3 {
		return fmt.Errorf("%d points: give at least 3", n)
	}
	dim := len(points[0])
	if dim == 0 {
		return errors.New("point 0 has no coordinates")
	}
	for i, point := range points {
		if len(point) != dim {
			return fmt.Errorf("point %d has %d coordinates, but point 0 has %d: give vectors of one length", i, len(point), dim)
		}
		for _, v := range point {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("point %d contains %v: give finite values", i, v)
			}
		}
	}
	return opts.Validate(n)
}

// Validate returns an error for an option that is out of range for
// numPoints points, so a caller can check the options before computing
// the points.
func (opts TSNEOptions) Validate(numPoints int) error {
	if !(opts.Perplexity > 0) || opts.Perplexity >= float64(numPoints-1) {
		return fmt.Errorf("perplexity %g is invalid for %d points: use a value above 0 and below %d, the number of points less 1",
			opts.Perplexity, numPoints, numPoints-1)
	}
	if opts.Iterations < 1 {
		return fmt.Errorf("%d iterations: use at least 1", opts.Iterations)
	}
	if !(opts.LearningRate >= 0) || math.IsInf(opts.LearningRate, 0) {
		return fmt.Errorf("learning rate %g is invalid: use a positive value, or 0 for the automatic one", opts.LearningRate)
	}
	if !(opts.EarlyExaggeration >= 1) || math.IsInf(opts.EarlyExaggeration, 0) {
		return fmt.Errorf("early exaggeration %g is invalid: use a finite value of at least 1", opts.EarlyExaggeration)
	}
	if opts.ExaggerationIterations < 0 {
		return fmt.Errorf("%d exaggeration iterations: use 0 or more", opts.ExaggerationIterations)
	}
	return nil
}

// triangle is the strict upper triangle of a symmetric n x n matrix with
// a zero diagonal, row by row: entry (i, j) for i < j is at
// index(i, j).
type triangle struct {
	n      int
	values []float64
}

func newTriangle(n int) triangle {
	return triangle{n: n, values: make([]float64, n*(n-1)/2)}
}

// index returns the position of entry (i, j), i != j, in values.
func (t triangle) index(i, j int) int {
	if i > j {
		i, j = j, i
	}
	return i*(2*t.n-i-1)/2 + j - i - 1
}

// jointAffinities returns the symmetric input affinities P of t-SNE: for
// each point i the conditional distribution P(j|i) with the perplexity
// given, then P(i,j) = (P(j|i) + P(i|j)) / 2n, floored at minAffinity.
func jointAffinities(ctx context.Context, points [][]float32, perplexity float64) (triangle, error) {
	n := len(points)
	p := newTriangle(n)
	distances := make([]float64, n)
	conditional := make([]float64, n)
	for i := range points {
		if err := ctx.Err(); err != nil {
			return triangle{}, err
		}
		for j := range points {
			distances[j] = squaredDistance(points[i], points[j])
		}
		conditionalAffinities(conditional, distances, i, math.Log(perplexity))
		for j, v := range conditional {
			if j != i {
				p.values[p.index(i, j)] += v
			}
		}
	}
	for k, v := range p.values {
		p.values[k] = max(v/float64(2*n), minAffinity)
	}
	return p, nil
}

func squaredDistance(a, b []float32) float64 {
	var sum float64
	for k := range a {
		d := float64(a[k]) - float64(b[k])
		sum += d * d
	}
	return sum
}

// conditionalAffinities sets out[j] to P(j|i), proportional to
// exp(-beta * distances[j]) over j != i, with the precision beta found by
// binary search so that the distribution's entropy is targetEntropy nats
// (the log of the perplexity). out[i] is 0. It returns beta.
func conditionalAffinities(out, distances []float64, i int, targetEntropy float64) float64 {
	// Distances are shifted by the smallest one, which leaves P unchanged
	// and keeps the nearest neighbour's weight at 1, so the sum never
	// underflows to 0.
	minDistance, meanShift := math.Inf(1), 0.0
	for j, d := range distances {
		if j != i {
			minDistance = min(minDistance, d)
		}
	}
	for j, d := range distances {
		if j != i {
			meanShift += d - minDistance
		}
	}
	meanShift /= float64(len(distances) - 1)

	// Start at the precision whose scale matches the mean distance, so the
	// search takes few steps at any embedding scale.
	beta, low, high := 1.0, 0.0, math.Inf(1)
	if meanShift > 0 {
		beta = 1 / meanShift
	}
	for range perplexitySteps {
		var sum, weighted float64
		for j, d := range distances {
			if j == i {
				out[j] = 0
				continue
			}
			out[j] = math.Exp(-beta * (d - minDistance))
			sum += out[j]
			weighted += (d - minDistance) * out[j]
		}
		// H = log(sum) + beta * E[d - minDistance] for p = out / sum.
		entropy := math.Log(sum) + beta*weighted/sum
		for j := range out {
			out[j] /= sum
		}
		if math.Abs(entropy-targetEntropy) < perplexityTolerance {
			break
		}
		if entropy > targetEntropy {
			// Too flat: raise the precision.
			low = beta
			if math.IsInf(high, 1) {
				beta *= 2
			} else {
				beta = (beta + high) / 2
			}
		} else {
			high = beta
			beta = (beta + low) / 2
		}
	}
	return beta
}

// gradient sets grad to the gradient of KL(exaggeration*P || Q) with
// respect to y: 4 * sum over j of (exaggeration*p_ij - q_ij) *
// (1 + |y_i - y_j|^2)^-1 * (y_i - y_j).
func gradient(grad, y []float64, p triangle, exaggeration float64) {
	n := p.n
	// First pass: the normalizer Z of q_ij = (1 + |y_i - y_j|^2)^-1 / Z,
	// summed over ordered pairs i != j.
	var z float64
	for i := range n {
		for j := i + 1; j < n; j++ {
			dx, dy := y[2*i]-y[2*j], y[2*i+1]-y[2*j+1]
			z += 2 / (1 + dx*dx + dy*dy)
		}
	}
	clear(grad)
	k := 0
	for i := range n {
		var gx, gy float64
		for j := i + 1; j < n; j++ {
			dx, dy := y[2*i]-y[2*j], y[2*i+1]-y[2*j+1]
			kernel := 1 / (1 + dx*dx + dy*dy)
			force := (exaggeration*p.values[k] - kernel/z) * kernel
			gx += force * dx
			gy += force * dy
			grad[2*j] -= force * dx
			grad[2*j+1] -= force * dy
			k++
		}
		grad[2*i] += gx
		grad[2*i+1] += gy
	}
	for k := range grad {
		grad[k] *= 4
	}
}

// klDivergence returns KL(P || Q) in nats for the points y.
func klDivergence(y []float64, p triangle) float64 {
	n := p.n
	var z float64
	for i := range n {
		for j := i + 1; j < n; j++ {
			dx, dy := y[2*i]-y[2*j], y[2*i+1]-y[2*j+1]
			z += 2 / (1 + dx*dx + dy*dy)
		}
	}
	var kl float64
	k := 0
	for i := range n {
		for j := i + 1; j < n; j++ {
			dx, dy := y[2*i]-y[2*j], y[2*i+1]-y[2*j+1]
			q := max(1/(1+dx*dx+dy*dy)/z, minAffinity)
			// Each unordered pair stands for (i, j) and (j, i).
			kl += 2 * p.values[k] * math.Log(p.values[k]/q)
			k++
		}
	}
	return kl
}

// center moves the points so that their mean is 0. Q and the gradient
// depend only on differences, so this changes nothing but keeps the
// coordinates small.
func center(y []float64) {
	n := len(y) / 2
	var mx, my float64
	for i := range n {
		mx += y[2*i]
		my += y[2*i+1]
	}
	mx /= float64(n)
	my /= float64(n)
	for i := range n {
		y[2*i] -= mx
		y[2*i+1] -= my
	}
}
