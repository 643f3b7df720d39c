package analysis

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// DefaultRidge is the default ridge of FitGaussians, which adds 0.1 % of
// the mean variance to every variance.
const DefaultRidge = 1e-3

// GaussianModel is one Gaussian per class with a covariance shared by all
// classes, fitted by FitGaussians.
type GaussianModel struct {
	// Classes are the distinct labels, sorted, so class k is Classes[k].
	Classes []string
	// Counts are the number of fit examples of each class.
	Counts []int
	// Dim is the length of the embeddings.
	Dim int
	// Ridge is the ridge of the fit: ridge times the mean variance was
	// added to the covariance's diagonal.
	Ridge float64
	// Shrinkage is the weight δ of the Ledoit-Wolf fit, which replaced the
	// covariance S by (1 − δ)·S + δ·tr(S)/D·I. It is 0 for FitGaussians.
	Shrinkage float64
	// cholesky is the lower-triangular L of the covariance Σ = L Lᵀ, Dim x
	// Dim row by row.
	cholesky []float64
	// whitenedMeans[k] is L⁻¹ μ_k for the mean μ_k of class k, so the
	// Mahalanobis distance of x to class k is |L⁻¹x − L⁻¹μ_k|.
	whitenedMeans [][]float64
}

// FitGaussians fits one Gaussian per distinct label to features with a
// shared covariance, as in Lee et al. 2018: μ_k is the mean of the
// features of class k, and Σ is the mean over all examples of
// (x − μ_label)(x − μ_label)ᵀ, the maximum-likelihood estimate.
//
// ridge·tr(Σ)/D is then added to each of Σ's D diagonal entries. Scaling
// by the mean variance tr(Σ)/D makes the ridge independent of the
// embeddings' scale. It also makes Σ invertible when there are fewer
// examples than dimensions: a direction in which no fit example varies
// gets the variance ridge·tr(Σ)/D. DefaultRidge is a good start. A ridge
// of 0 is accepted when Σ is invertible.
func FitGaussians(features [][]float32, labels []string, ridge float64) (*GaussianModel, error) {
	if !(ridge >= 0) || math.IsInf(ridge, 0) {
		return nil, fmt.Errorf("fit Gaussians: ridge %g is invalid: use a finite value of 0 or more, such as %g", ridge, DefaultRidge)
	}
	fit, err := fitPooled(features, labels)
	if err != nil {
		return nil, fmt.Errorf("fit Gaussians: %w", err)
	}
	m, err := fit.model(ridge, 0)
	if err != nil {
		return nil, fmt.Errorf("fit Gaussians: the covariance of %d embeddings of length %d is singular (%v): raise the ridge, such as to %g, or give more examples",
			len(features), fit.dim, err, DefaultRidge)
	}
	return m, nil
}

// pooledFit contains the class means and the maximum-likelihood covariance
// shared by the classes, before any regularization.
type pooledFit struct {
	classes []string
	counts  []int
	dim     int
	// numExamples is the number of features fitted.
	numExamples int
	means       [][]float64
	// covariance is the lower triangle of the covariance S, dim x dim row
	// by row. The upper triangle is 0.
	covariance []float64
	trace      float64
	// sumFourthPowers is the sum over the examples of |x − μ_label|⁴,
	// which the Ledoit-Wolf estimate needs.
	sumFourthPowers float64
}

// fitPooled checks the features and labels and computes the class means
// and the pooled covariance.
func fitPooled(features [][]float32, labels []string) (*pooledFit, error) {
	if len(features) != len(labels) {
		return nil, fmt.Errorf("%d embeddings for %d labels: give one label per embedding", len(features), len(labels))
	}
	if len(features) == 0 {
		return nil, errors.New("no embeddings")
	}
	if slices.Contains(labels, "") {
		return nil, errors.New("an example has an empty label: leave unlabelled examples out")
	}
	dim := len(features[0])
	if err := checkEmbeddings(features, dim); err != nil {
		return nil, err
	}

	classes, ids := indexLabels(labels)
	f := &pooledFit{classes: classes, counts: make([]int, len(classes)), dim: dim, numExamples: len(features)}
	f.means = make([][]float64, len(classes))
	for k := range f.means {
		f.means[k] = make([]float64, dim)
	}
	for i, x := range features {
		f.counts[ids[i]]++
		for d, v := range x {
			f.means[ids[i]][d] += float64(v)
		}
	}
	for k, mean := range f.means {
		for d := range mean {
			mean[d] /= float64(f.counts[k])
		}
	}

	covariance := make([]float64, dim*dim)
	centered := make([]float64, dim)
	for i, x := range features {
		var squaredNorm float64
		for d, v := range x {
			centered[d] = float64(v) - f.means[ids[i]][d]
			squaredNorm += centered[d] * centered[d]
		}
		f.sumFourthPowers += squaredNorm * squaredNorm
		// Only the lower triangle is summed, because Cholesky reads only that.
		for r := range dim {
			row := covariance[r*dim : r*dim+r+1]
			for c := range row {
				row[c] += centered[r] * centered[c]
			}
		}
	}
	for r := range dim {
		for c := 0; c <= r; c++ {
			covariance[r*dim+c] /= float64(len(features))
		}
		f.trace += covariance[r*dim+r]
	}
	if f.trace == 0 {
		return nil, fmt.Errorf("the %d embeddings do not vary within their classes, so the covariance is 0: give several different examples per class", len(features))
	}
	f.covariance = covariance
	return f, nil
}

// model returns the GaussianModel whose covariance is
// (1 − shrinkage)·S + (shrinkage + ridge)·tr(S)/D·I. It fails when that
// matrix is singular to working precision. The fit's covariance buffer
// becomes the model's Cholesky factor, so model may be called once.
func (f *pooledFit) model(ridge, shrinkage float64) (*GaussianModel, error) {
	dim := f.dim
	covariance := f.covariance
	meanVariance := f.trace / float64(dim)
	if shrinkage != 0 {
		for r := range dim {
			for c := 0; c <= r; c++ {
				covariance[r*dim+c] *= 1 - shrinkage
			}
		}
	}
	shift := (shrinkage + ridge) * f.trace / float64(dim)
	for r := range dim {
		covariance[r*dim+r] += shift
	}
	if err := choleskyInPlace(covariance, dim, 1e-12*meanVariance); err != nil {
		return nil, err
	}

	m := &GaussianModel{
		Classes:   f.classes,
		Counts:    f.counts,
		Dim:       dim,
		Ridge:     ridge,
		Shrinkage: shrinkage,
		cholesky:  covariance,
	}
	m.whitenedMeans = make([][]float64, len(f.classes))
	for k, mean := range f.means {
		m.whitenedMeans[k] = make([]float64, dim)
		forwardSubstitute(m.whitenedMeans[k], m.cholesky, mean)
	}
	return m, nil
}

// Score returns the Mahalanobis distance of x to the nearest class mean,
// min over k of sqrt((x − μ_k)ᵀ Σ⁻¹ (x − μ_k)), and the index in Classes
// of that class (the lowest on a tie). In-distribution inputs score low.
func (m *GaussianModel) Score(x []float32) (distance float64, class int, err error) {
	if err := checkEmbeddings([][]float32{x}, m.Dim); err != nil {
		return 0, 0, fmt.Errorf("Mahalanobis score: %w", err)
	}
	values := make([]float64, m.Dim)
	for d, v := range x {
		values[d] = float64(v)
	}
	whitened := make([]float64, m.Dim)
	forwardSubstitute(whitened, m.cholesky, values)
	best := math.Inf(1)
	for k, mean := range m.whitenedMeans {
		var sum float64
		for d, v := range whitened {
			diff := v - mean[d]
			sum += diff * diff
		}
		if sum < best {
			best, class = sum, k
		}
	}
	return math.Sqrt(best), class, nil
}

// checkEmbeddings reports an embedding whose length is not dim or that
// contains a value that is not finite.
func checkEmbeddings(features [][]float32, dim int) error {
	if dim == 0 {
		return errors.New("an embedding is empty")
	}
	for i, x := range features {
		if len(x) != dim {
			return fmt.Errorf("embedding %d has %d values, want %d: embed every set with one model", i, len(x), dim)
		}
		for _, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("embedding %d contains %v: give finite values", i, v)
			}
		}
	}
	return nil
}

// indexLabels returns the sorted distinct labels and each label's index
// among them.
func indexLabels(labels []string) (classes []string, ids []int) {
	seen := map[string]bool{}
	for _, label := range labels {
		seen[label] = true
	}
	classes = slices.Sorted(maps.Keys(seen))
	ids = make([]int, len(labels))
	for i, label := range labels {
		ids[i], _ = slices.BinarySearch(classes, label)
	}
	return classes, ids
}

// choleskyInPlace replaces the lower triangle of the symmetric n x n
// matrix a, row by row, with L such that a = L Lᵀ, and zeroes the upper
// triangle. It reads only the lower triangle. It fails when a pivot is at most minPivot, which means that a
// is singular or not positive definite to working precision.
func choleskyInPlace(a []float64, n int, minPivot float64) error {
	for j := range n {
		pivot := a[j*n+j]
		for k := range j {
			pivot -= a[j*n+k] * a[j*n+k]
		}
		if !(pivot > minPivot) {
			return fmt.Errorf("pivot %d is %.3g", j, pivot)
		}
		diagonal := math.Sqrt(pivot)
		a[j*n+j] = diagonal
		for i := j + 1; i < n; i++ {
			v := a[i*n+j]
			for k := range j {
				v -= a[i*n+k] * a[j*n+k]
			}
			a[i*n+j] = v / diagonal
		}
		for k := j + 1; k < n; k++ {
			a[j*n+k] = 0
		}
	}
	return nil
}

// forwardSubstitute solves L out = b for the lower-triangular n x n
// matrix l, row by row.
func forwardSubstitute(out, l, b []float64) {
	n := len(b)
	for i := range n {
		v := b[i]
		for k := range i {
			v -= l[i*n+k] * out[k]
		}
		out[i] = v / l[i*n+i]
	}
}
