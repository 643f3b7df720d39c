package analysis

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// The functions below measure how well scores separate in-distribution
// inputs from out-of-distribution ones. In-distribution is the positive
// class, and it is expected to score lower, as with Mahalanobis distances:
// an input is accepted as in-distribution when its score is at most a
// threshold.

// AUROC returns the area under the ROC curve of scores that should be
// lower for inScores than for outScores. It is the probability that a
// random out-of-distribution score exceeds a random in-distribution one,
// with ties counting one half: the Mann-Whitney U statistic divided by
// len(inScores)·len(outScores). 1 means perfect separation and 0.5
// chance. Two sets with the same scores give exactly 0.5.
func AUROC(inScores, outScores []float64) (float64, error) {
	if err := checkScores(inScores, outScores); err != nil {
		return 0, fmt.Errorf("AUROC: %w", err)
	}
	sortedIn := slices.Sorted(slices.Values(inScores))
	// Count twice the U statistic in integers, so the area is exact up to
	// the final division: 2 for each in-distribution score below an
	// out-of-distribution one, 1 for each tie.
	var twiceU int64
	for _, s := range outScores {
		below, _ := slices.BinarySearch(sortedIn, s)
		atOrBelow := upperBound(sortedIn, s)
		twiceU += int64(below + atOrBelow)
	}
	return float64(twiceU) / (2 * float64(len(inScores)) * float64(len(outScores))), nil
}

// OperatingPoint is a threshold on scores and its rates: inputs whose
// score is at most Threshold are accepted as in-distribution.
type OperatingPoint struct {
	Threshold float64 `json:"threshold"`
	// TPR is the fraction of in-distribution inputs accepted.
	TPR float64 `json:"tpr"`
	// FPR is the fraction of out-of-distribution inputs accepted.
	FPR float64 `json:"fpr"`
}

// FPRAt95TPR returns the operating point at the lowest threshold that
// accepts at least 95 % of inScores: the ceil(0.95·n)-th lowest
// in-distribution score for n scores. Tied scores are all accepted
// together, so TPR can exceed 0.95. FPR is then the fraction of outScores
// at or below the threshold; lower is better.
func FPRAt95TPR(inScores, outScores []float64) (OperatingPoint, error) {
	if err := checkScores(inScores, outScores); err != nil {
		return OperatingPoint{}, fmt.Errorf("FPR at 95 %% TPR: %w", err)
	}
	sortedIn := slices.Sorted(slices.Values(inScores))
	n := len(sortedIn)
	// ceil(95n/100) in integers, because 0.95*n in floating point can
	// round above an integer.
	k := (95*n + 99) / 100
	threshold := sortedIn[k-1]
	sortedOut := slices.Sorted(slices.Values(outScores))
	return OperatingPoint{
		Threshold: threshold,
		TPR:       float64(upperBound(sortedIn, threshold)) / float64(n),
		FPR:       float64(upperBound(sortedOut, threshold)) / float64(len(sortedOut)),
	}, nil
}

// upperBound returns the number of values in sorted that are at most s.
func upperBound(sorted []float64, s float64) int {
	i, _ := slices.BinarySearchFunc(sorted, s, func(v, target float64) int {
		if v <= target {
			return -1
		}
		return 1
	})
	return i
}

func checkScores(inScores, outScores []float64) error {
	if len(inScores) == 0 || len(outScores) == 0 {
		return fmt.Errorf("%d in-distribution and %d out-of-distribution scores: give at least one of each", len(inScores), len(outScores))
	}
	for _, scores := range [][]float64{inScores, outScores} {
		if slices.ContainsFunc(scores, math.IsNaN) {
			return errors.New("a score is NaN")
		}
	}
	return nil
}
