package evaluate

import (
	"errors"
	"fmt"
	"math"
)

// ClassifierOptions sets how TrainClassifier fits.
type ClassifierOptions struct {
	// L2 is the weight lambda of the penalty (lambda/2)*||W||^2 on the
	// weights of the standardized features. Biases are not penalized.
	L2 float64
	// MaxIterations bounds the L-BFGS iterations.
	MaxIterations int
	// GradientTolerance ends the fit once no entry of the objective's
	// gradient exceeds it in absolute value.
	GradientTolerance float64
}

// DefaultClassifierOptions returns L2 1e-4 and gradient tolerance 1e-4.
// The L2 weight is about 1/N for the N = 6744 training images of the emoji
// dataset, which matches scikit-learn's LogisticRegression at its default
// C = 1: that penalizes the summed loss by ||W||^2/2, or the mean loss by
// ||W||^2/(2N). The tolerance is the default tol that LogisticRegression
// passes to L-BFGS.
func DefaultClassifierOptions() ClassifierOptions {
	return ClassifierOptions{L2: 1e-4, MaxIterations: 1000, GradientTolerance: 1e-4}
}

// Classifier is a softmax (multinomial logistic regression) classifier
// over standardized features.
type Classifier struct {
	NumClasses, NumFeatures int
	// Mean and Scale standardize a feature vector x into (x - Mean) /
	// Scale. Scale is the training standard deviation, or 1 for a
	// feature that is constant in training.
	Mean, Scale []float64
	// Weights [NumClasses, NumFeatures], row-major, and Bias [NumClasses]
	// give the logits Weights*x + Bias of a standardized x.
	Weights, Bias []float64
}

// FitStats describes how a fit ended.
type FitStats struct {
	Iterations int `json:"iterations"`
	// Converged is true when the gradient tolerance was met, and false
	// when the iteration bound was reached or the line search could not
	// decrease the objective any further.
	Converged bool `json:"converged"`
	// Loss is the final objective: the mean cross-entropy in nats plus
	// the L2 penalty.
	Loss float64 `json:"loss"`
	// MaxGradient is the largest absolute entry of the final gradient.
	MaxGradient float64 `json:"max_gradient"`
}

// TrainClassifier fits a softmax classifier to features [N][D] with labels
// in [0, numClasses). It standardizes each feature by its training mean and
// standard deviation, then minimizes the mean cross-entropy plus the L2
// penalty with full-batch L-BFGS from zero weights. The fit runs in one
// goroutine in a fixed order, so the same inputs give the same bits.
func TrainClassifier(features [][]float32, labels []int, numClasses int, opts ClassifierOptions) (*Classifier, FitStats, error) {
	if err := checkTrainingSet(features, labels, numClasses); err != nil {
		return nil, FitStats{}, fmt.Errorf("train classifier: %w", err)
	}
	if !(opts.L2 >= 0) || math.IsInf(opts.L2, 0) {
		return nil, FitStats{}, fmt.Errorf("train classifier: L2 weight %v: use a finite value of 0 or more, such as %v", opts.L2, DefaultClassifierOptions().L2)
	}
	if opts.MaxIterations < 1 {
		return nil, FitStats{}, fmt.Errorf("train classifier: max iterations %d: use 1 or more", opts.MaxIterations)
	}
	if !(opts.GradientTolerance >= 0) {
		return nil, FitStats{}, fmt.Errorf("train classifier: gradient tolerance %v: use 0 or more", opts.GradientTolerance)
	}

	numFeatures := len(features[0])
	c := &Classifier{NumClasses: numClasses, NumFeatures: numFeatures}
	c.Mean, c.Scale = standardization(features)
	x := make([]float64, len(features)*numFeatures)
	for i, row := range features {
		c.standardize(x[i*numFeatures:(i+1)*numFeatures], row)
	}

	objective := &softmaxObjective{x: x, labels: labels, numClasses: numClasses, numFeatures: numFeatures, l2: opts.L2}
	params := make([]float64, numClasses*numFeatures+numClasses)
	stats := minimizeLBFGS(objective.evaluate, params, opts.MaxIterations, opts.GradientTolerance)
	c.Weights = params[:numClasses*numFeatures]
	c.Bias = params[numClasses*numFeatures:]
	return c, stats, nil
}

// checkTrainingSet rejects an empty, ragged or non-finite feature matrix
// and labels outside [0, numClasses).
func checkTrainingSet(features [][]float32, labels []int, numClasses int) error {
	if len(features) == 0 {
		return errors.New("no training examples")
	}
	if len(labels) != len(features) {
		return fmt.Errorf("%d labels for %d feature vectors: give one label per vector", len(labels), len(features))
	}
	if numClasses < 2 {
		return fmt.Errorf("%d classes: a classifier needs at least 2", numClasses)
	}
	numFeatures := len(features[0])
	if numFeatures == 0 {
		return errors.New("feature vectors are empty")
	}
	for i, row := range features {
		if len(row) != numFeatures {
			return fmt.Errorf("feature vector %d has %d entries, want %d like vector 0", i, len(row), numFeatures)
		}
		for j, v := range row {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("feature vector %d entry %d is %v: features must be finite", i, j, v)
			}
		}
		if labels[i] < 0 || labels[i] >= numClasses {
			return fmt.Errorf("label %d of example %d is outside [0, %d)", labels[i], i, numClasses)
		}
	}
	return nil
}

// standardization returns the mean and the population standard deviation
// of each feature, with 1 in place of a deviation below 1e-12 so that a
// constant feature becomes 0 instead of NaN.
func standardization(features [][]float32) (mean, scale []float64) {
	numFeatures := len(features[0])
	mean = make([]float64, numFeatures)
	scale = make([]float64, numFeatures)
	for _, row := range features {
		for j, v := range row {
			mean[j] += float64(v)
		}
	}
	n := float64(len(features))
	for j := range mean {
		mean[j] /= n
	}
	for _, row := range features {
		for j, v := range row {
			d := float64(v) - mean[j]
			scale[j] += d * d
		}
	}
	for j := range scale {
		scale[j] = math.Sqrt(scale[j] / n)
		if scale[j] < 1e-12 {
			scale[j] = 1
		}
	}
	return mean, scale
}

// standardize writes (x - Mean) / Scale into dst.
func (c *Classifier) standardize(dst []float64, x []float32) {
	for j, v := range x {
		dst[j] = (float64(v) - c.Mean[j]) / c.Scale[j]
	}
}

// Predict returns the class with the largest logit for the raw feature
// vector x, the lowest class on ties. x must have NumFeatures entries.
func (c *Classifier) Predict(x []float32) int {
	standardized := make([]float64, c.NumFeatures)
	c.standardize(standardized, x)
	best, bestLogit := 0, math.Inf(-1)
	for k := range c.NumClasses {
		logit := c.Bias[k] + dot(c.Weights[k*c.NumFeatures:(k+1)*c.NumFeatures], standardized)
		if logit > bestLogit {
			best, bestLogit = k, logit
		}
	}
	return best
}

// softmaxObjective is the mean cross-entropy of a softmax classifier over
// standardized features x [N, D] plus (l2/2)*||W||^2, as a function of the
// parameters [W (C*D, row-major), b (C)].
type softmaxObjective struct {
	x                       []float64
	labels                  []int
	numClasses, numFeatures int
	l2                      float64
}

// evaluate returns the objective at params and writes its gradient into
// grad.
func (o *softmaxObjective) evaluate(params, grad []float64) float64 {
	numClasses, numFeatures := o.numClasses, o.numFeatures
	weights, bias := params[:numClasses*numFeatures], params[numClasses*numFeatures:]
	gradWeights, gradBias := grad[:numClasses*numFeatures], grad[numClasses*numFeatures:]
	clear(grad)
	logits := make([]float64, numClasses)
	var loss float64
	for i, label := range o.labels {
		row := o.x[i*numFeatures : (i+1)*numFeatures]
		maxLogit := math.Inf(-1)
		for k := range numClasses {
			logits[k] = bias[k] + dot(weights[k*numFeatures:(k+1)*numFeatures], row)
			maxLogit = max(maxLogit, logits[k])
		}
		var sumExp float64
		for _, z := range logits {
			sumExp += math.Exp(z - maxLogit)
		}
		logSumExp := maxLogit + math.Log(sumExp)
		loss += logSumExp - logits[label]

		// d loss / d logit_k = softmax_k - [k == label].
		for k, z := range logits {
			residual := math.Exp(z - logSumExp)
			if k == label {
				residual--
			}
			axpy(residual, row, gradWeights[k*numFeatures:(k+1)*numFeatures])
			gradBias[k] += residual
		}
	}

	n := float64(len(o.labels))
	loss /= n
	for j := range grad {
		grad[j] /= n
	}
	var penalty float64
	for j, w := range weights {
		penalty += w * w
		gradWeights[j] += o.l2 * w
	}
	return loss + o.l2/2*penalty
}

// lbfgsMemory is the number of recent steps that L-BFGS keeps to
// approximate the inverse Hessian; 3 to 20 is the usual range.
const lbfgsMemory = 10

// Armijo backtracking: a step is accepted once it decreases the objective
// by at least armijoC times the decrease the slope predicts, and is halved
// otherwise, down to minStep.
const (
	armijoC = 1e-4
	minStep = 1e-20
)

// minimizeLBFGS minimizes f from x, in place, with limited-memory BFGS
// (Nocedal and Wright, Numerical Optimization, 2nd ed., algorithm 7.4)
// and a backtracking line search. f returns the objective at x and writes
// its gradient into grad.
func minimizeLBFGS(f func(x, grad []float64) float64, x []float64, maxIterations int, tolerance float64) FitStats {
	n := len(x)
	grad := make([]float64, n)
	loss := f(x, grad)
	var (
		steps, gradChanges [][]float64 // s_i = x_{i+1} - x_i and y_i = g_{i+1} - g_i
		rhos               []float64   // 1 / (y_i . s_i)
	)
	direction := make([]float64, n)
	nextX := make([]float64, n)
	nextGrad := make([]float64, n)
	alphas := make([]float64, lbfgsMemory)
	stats := FitStats{}
	for stats.Iterations < maxIterations {
		if maxAbs(grad) <= tolerance {
			stats.Converged = true
			break
		}

		// Two-loop recursion: direction = -H grad.
		copy(direction, grad)
		for i := len(steps) - 1; i >= 0; i-- {
			alphas[i] = rhos[i] * dot(steps[i], direction)
			axpy(-alphas[i], gradChanges[i], direction)
		}
		gamma := 1 / math.Sqrt(dot(grad, grad)) // the first step has length 1
		if k := len(steps) - 1; k >= 0 {
			gamma = dot(steps[k], gradChanges[k]) / dot(gradChanges[k], gradChanges[k])
		}
		scaleVector(direction, -gamma)
		for i := range steps {
			beta := rhos[i] * dot(gradChanges[i], direction)
			axpy(-alphas[i]-beta, steps[i], direction)
		}
		slope := dot(grad, direction)
		if !(slope < 0) {
			// Not a descent direction, which rounding can cause: restart
			// from steepest descent.
			steps, gradChanges, rhos = nil, nil, nil
			copy(direction, grad)
			scaleVector(direction, -1/math.Sqrt(dot(grad, grad)))
			slope = dot(grad, direction)
		}

		// Backtracking line search.
		step := 1.0
		var nextLoss float64
		for {
			for j := range x {
				nextX[j] = x[j] + step*direction[j]
			}
			nextLoss = f(nextX, nextGrad)
			if nextLoss <= loss+armijoC*step*slope {
				break
			}
			step /= 2
			if step < minStep {
				stats.Loss, stats.MaxGradient = loss, maxAbs(grad)
				return stats
			}
		}
		stats.Iterations++

		// Keep the curvature pair when it is positive, as a convex
		// objective's is unless rounding interferes.
		s, y := make([]float64, n), make([]float64, n)
		for j := range x {
			s[j] = nextX[j] - x[j]
			y[j] = nextGrad[j] - grad[j]
		}
		if sy := dot(s, y); sy > 1e-12*math.Sqrt(dot(s, s)*dot(y, y)) {
			if len(steps) == lbfgsMemory {
				steps, gradChanges, rhos = steps[1:], gradChanges[1:], rhos[1:]
			}
			steps, gradChanges, rhos = append(steps, s), append(gradChanges, y), append(rhos, 1/sy)
		}
		copy(x, nextX)
		copy(grad, nextGrad)
		loss = nextLoss
	}
	if !stats.Converged && maxAbs(grad) <= tolerance {
		stats.Converged = true
	}
	stats.Loss, stats.MaxGradient = loss, maxAbs(grad)
	return stats
}

func dot(a, b []float64) float64 {
	var sum float64
	for i := range a {
		sum += a[i] * b[i]
	}
	return sum
}

// axpy adds alpha*x to y.
func axpy(alpha float64, x, y []float64) {
	for i := range x {
		y[i] += alpha * x[i]
	}
}

func scaleVector(x []float64, alpha float64) {
	for i := range x {
		x[i] *= alpha
	}
}

func maxAbs(x []float64) float64 {
	var m float64
	for _, v := range x {
		m = max(m, math.Abs(v))
	}
	return m
}
