package analysis

import (
	"errors"
	"fmt"
	"slices"
)

// FitGaussiansLedoitWolf fits the model of FitGaussians, one Gaussian per
// class with a shared covariance, but regularizes the covariance by
// Ledoit-Wolf shrinkage in place of a fixed ridge (Ledoit and Wolf 2004,
// "A well-conditioned estimator for large-dimensional covariance
// matrices"). The maximum-likelihood covariance S of the residuals
// x − μ_label becomes (1 − δ)·S + δ·μ·I with μ = tr(S)/D. The weight δ in
// [0, 1] is estimated from the data as min(b², d²)/d², where
// d² = |S − μI|² and b² = (1/n²)·Σ_i |x_i xᵢᵀ − S|², the Frobenius norms
// divided by D, over the n residuals. This is the estimate of
// scikit-learn's ledoit_wolf_shrinkage, applied to the residuals around
// the class means, which it treats as n centred examples.
//
// Unlike a fixed ridge, δ needs no tuning and grows as the examples get
// fewer than the dimensions, so the fit works with, say, 24 embeddings of
// length 128, where S itself is singular. It fails when the shrunk
// covariance is still singular, which happens only when every residual
// has the same outer product, such as two examples mirrored around their
// mean.
func FitGaussiansLedoitWolf(features [][]float32, labels []string) (*GaussianModel, error) {
	fit, err := fitPooled(features, labels)
	if err != nil {
		return nil, fmt.Errorf("fit Gaussians with Ledoit-Wolf shrinkage: %w", err)
	}
	shrinkage := ledoitWolfShrinkage(fit)
	m, err := fit.model(0, shrinkage)
	if err != nil {
		return nil, fmt.Errorf("fit Gaussians with Ledoit-Wolf shrinkage: the covariance of %d embeddings of length %d is singular after shrinkage %g (%v): give more varied examples or use a fixed ridge",
			len(features), fit.dim, shrinkage, err)
	}
	return m, nil
}

// ledoitWolfShrinkage returns the Ledoit-Wolf weight δ of fit's
// covariance. It uses |x xᵀ|² = |x|⁴ and Σ_i xᵢᵀ S xᵢ = n·|S|², so that
// Σ_i |x_i xᵢᵀ − S|² = Σ_i |x_i|⁴ − n·|S|² needs no D x D matrix per
// example.
func ledoitWolfShrinkage(fit *pooledFit) float64 {
	dim := float64(fit.dim)
	n := float64(fit.numExamples)

	// |S|² from the lower triangle: the diagonal once, the rest twice.
	var squaredNorm float64
	for r := range fit.dim {
		row := fit.covariance[r*fit.dim : r*fit.dim+r+1]
		for c, v := range row {
			if c == r {
				squaredNorm += v * v
			} else {
				squaredNorm += 2 * v * v
			}
		}
	}

	// d² = |S − μI|²/D = (|S|² − tr(S)²/D)/D.
	distance := (squaredNorm - fit.trace*fit.trace/dim) / dim
	if distance <= 0 {
		return 0 // S is already μI
	}
	// b² = (Σ|x|⁴/n − |S|²)/(n·D), at least 0 up to rounding.
	spread := (fit.sumFourthPowers/n - squaredNorm) / (n * dim)
	spread = max(spread, 0)
	return min(spread, distance) / distance
}

// MinReferenceExamples is the smallest reference set of NewReferenceSet:
// each leave-one-out fit needs two examples that differ.
const MinReferenceExamples = 3

// ReferenceSet scores inputs against a reference set of one class, such
// as the demo's gallery of emoji, and reads each score as a percentile
// rank among the reference examples' own scores. Model is the
// FitGaussiansLedoitWolf fit of the whole set. LeaveOneOut[i] is the
// score of example i under the fit of the other examples, so the
// reference scores are not flattered by fitting the example they score.
type ReferenceSet struct {
	Model       *GaussianModel
	LeaveOneOut []float64
}

// Reading is one input's out-of-distribution score and how it ranks.
type Reading struct {
	// Score is the Mahalanobis distance to the reference mean. Higher is
	// more unusual.
	Score float64
	// Percentile is the percentage of reference scores below Score, ties
	// counting one half, from 0 to 100.
	Percentile float64
}

// NewReferenceSet fits a Gaussian with Ledoit-Wolf shrinkage to reference
// and the leave-one-out fits that score each of its examples. It takes
// len(reference) + 1 fits.
func NewReferenceSet(reference [][]float32) (*ReferenceSet, error) {
	n := len(reference)
	if n < MinReferenceExamples {
		return nil, fmt.Errorf("reference set: %d embeddings, want at least %d so that each leave-one-out fit has two", n, MinReferenceExamples)
	}
	labels := make([]string, n)
	for i := range labels {
		labels[i] = "reference"
	}
	model, err := FitGaussiansLedoitWolf(reference, labels)
	if err != nil {
		return nil, fmt.Errorf("reference set: %w", err)
	}

	set := &ReferenceSet{Model: model, LeaveOneOut: make([]float64, n)}
	others := make([][]float32, 0, n-1)
	for i := range reference {
		others = append(others[:0], reference[:i]...)
		others = append(others, reference[i+1:]...)
		fit, err := FitGaussiansLedoitWolf(others, labels[:n-1])
		if err != nil {
			return nil, fmt.Errorf("reference set without embedding %d: %w", i, err)
		}
		if set.LeaveOneOut[i], _, err = fit.Score(reference[i]); err != nil {
			return nil, fmt.Errorf("reference set: embedding %d: %w", i, err)
		}
	}
	return set, nil
}

// Score returns the reading of x, which is not one of the reference
// examples: its score under Model, ranked among every LeaveOneOut score.
func (s *ReferenceSet) Score(x []float32) (Reading, error) {
	score, _, err := s.Model.Score(x)
	if err != nil {
		return Reading{}, err
	}
	return Reading{Score: score, Percentile: PercentileRank(s.LeaveOneOut, score)}, nil
}

// Member returns the reading of reference example i: its leave-one-out
// score, ranked among the other examples' scores.
func (s *ReferenceSet) Member(i int) (Reading, error) {
	if i < 0 || i >= len(s.LeaveOneOut) {
		return Reading{}, fmt.Errorf("reference example %d is out of range: use 0 to %d", i, len(s.LeaveOneOut)-1)
	}
	others := slices.Concat(s.LeaveOneOut[:i], s.LeaveOneOut[i+1:])
	score := s.LeaveOneOut[i]
	return Reading{Score: score, Percentile: PercentileRank(others, score)}, nil
}

// PercentileRank returns the percentage of scores below score, with
// scores equal to it counting one half: 0 when every score is above, 100
// when every score is below. It panics on an empty scores, a programming
// error.
func PercentileRank(scores []float64, score float64) float64 {
	if len(scores) == 0 {
		panic(errors.New("analysis.PercentileRank: no scores"))
	}
	var below, equal int
	for _, s := range scores {
		switch {
		case s < score:
			below++
		case s == score:
			equal++
		}
	}
	return 100 * (float64(below) + 0.5*float64(equal)) / float64(len(scores))
}
