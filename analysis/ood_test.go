package analysis

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-12*max(1, math.Abs(b)) }

// TestFitGaussiansDiagonal fits two classes whose pooled covariance is
// 0.5·I by hand: a = {(0,0), (2,0)} with mean (1,0), b = {(10,1), (10,-1)}
// with mean (10,0), and centred points (∓1,0) and (0,±1).
func TestFitGaussiansDiagonal(t *testing.T) {
	features := [][]float32{{0, 0}, {10, 1}, {2, 0}, {10, -1}}
	labels := []string{"a", "b", "a", "b"}
	m, err := FitGaussians(features, labels, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Classes) != 2 || m.Classes[0] != "a" || m.Classes[1] != "b" {
		t.Errorf("classes = %q, want [a b]", m.Classes)
	}
	if m.Counts[0] != 2 || m.Counts[1] != 2 {
		t.Errorf("counts = %v, want [2 2]", m.Counts)
	}
	tests := []struct {
		x     []float32
		want  float64
		class int
	}{
		{[]float32{1, 0}, 0, 0},
		{[]float32{1, 1}, math.Sqrt(2), 0},  // (0² + 1²) / 0.5 = 2
		{[]float32{9, 0}, math.Sqrt(2), 1},  // 1² / 0.5 = 2
		{[]float32{5, 0}, math.Sqrt(32), 0}, // 4² / 0.5 = 32 beats 5² / 0.5 = 50
	}
	for _, tt := range tests {
		got, class, err := m.Score(tt.x)
		if err != nil {
			t.Fatal(err)
		}
		if !closeTo(got, tt.want) {
			t.Errorf("Score(%v) = %g, want %g", tt.x, got, tt.want)
		}
		if class != tt.class {
			t.Errorf("Score(%v) nearest class = %d, want %d", tt.x, class, tt.class)
		}
	}

	// A ridge of 0.1 adds 0.1 times the mean variance 0.5 to each
	// variance: Σ = 0.55·I.
	m, err = FitGaussians(features, labels, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := m.Score([]float32{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Sqrt(1 / 0.55); !closeTo(got, want) {
		t.Errorf("with ridge 0.1, Score(1, 1) = %g, want %g", got, want)
	}
}

// TestFitGaussiansCorrelated fits one class with mean 0 and covariance
// [[2.5, 1.5], [1.5, 2.5]], whose inverse is [[2.5, -1.5], [-1.5, 2.5]]/4:
// (1,1) lies along the long axis and scores sqrt(0.5), (1,-1) across it
// and scores sqrt(2).
func TestFitGaussiansCorrelated(t *testing.T) {
	features := [][]float32{{2, 2}, {-2, -2}, {1, -1}, {-1, 1}}
	m, err := FitGaussians(features, []string{"x", "x", "x", "x"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		x    []float32
		want float64
	}{
		{[]float32{1, 1}, math.Sqrt(0.5)},
		{[]float32{1, -1}, math.Sqrt(2)},
		{[]float32{0, 0}, 0},
	} {
		got, _, err := m.Score(tt.x)
		if err != nil {
			t.Fatal(err)
		}
		if !closeTo(got, tt.want) {
			t.Errorf("Score(%v) = %g, want %g", tt.x, got, tt.want)
		}
	}
}

func TestFitGaussiansRejects(t *testing.T) {
	tests := []struct {
		name     string
		features [][]float32
		labels   []string
		ridge    float64
		want     string
	}{
		{"count", [][]float32{{1}}, []string{"a", "b"}, 0, "1 embeddings for 2 labels"},
		{"empty", nil, nil, 0, "no embeddings"},
		{"empty label", [][]float32{{1}, {2}}, []string{"a", ""}, 0, "empty label"},
		{"ridge", [][]float32{{1}, {2}}, []string{"a", "a"}, -1, "ridge -1 is invalid"},
		{"ragged", [][]float32{{1, 2}, {2}}, []string{"a", "a"}, 0, "embedding 1 has 1 values, want 2"},
		{"NaN", [][]float32{{1}, {float32(math.NaN())}}, []string{"a", "a"}, 0, "embedding 1 contains NaN"},
		{"no variance", [][]float32{{1, 1}, {2, 2}}, []string{"a", "b"}, 0.1, "do not vary within their classes"},
		{"singular", [][]float32{{1, 1}, {2, 2}, {3, 3}}, []string{"a", "a", "a"}, 0, "is singular"},
	}
	for _, tt := range tests {
		_, err := FitGaussians(tt.features, tt.labels, tt.ridge)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}

	// The singular fit succeeds with a ridge.
	if _, err := FitGaussians([][]float32{{1, 1}, {2, 2}, {3, 3}}, []string{"a", "a", "a"}, DefaultRidge); err != nil {
		t.Errorf("singular covariance with ridge %g: %v", DefaultRidge, err)
	}
	m, err := FitGaussians([][]float32{{0, 0}, {1, 2}, {2, 1}}, []string{"a", "a", "a"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Score([]float32{1}); err == nil || !strings.Contains(err.Error(), "has 1 values, want 2") {
		t.Errorf("Score of a short embedding: error = %v, want a length error", err)
	}
}

func TestAUROCHandComputed(t *testing.T) {
	tests := []struct {
		name    string
		in, out []float64
		want    float64
	}{
		{"separated", []float64{1, 2, 3}, []float64{4, 5, 6}, 1},
		{"reversed", []float64{4, 5, 6}, []float64{1, 2, 3}, 0},
		{"identical", []float64{1, 2}, []float64{1, 2}, 0.5}, // pairs: 0.5 + 1 + 0 + 0.5
		{"all tied", []float64{3, 3, 3}, []float64{3, 3}, 0.5},
		// Out 2 beats in 1, ties in 2, loses to 3: 1.5. Out 4 beats all: 3.
		{"ties", []float64{1, 2, 3}, []float64{2, 4}, 4.5 / 6},
		{"infinite", []float64{1, math.Inf(-1)}, []float64{math.Inf(1)}, 1},
	}
	for _, tt := range tests {
		got, err := AUROC(tt.in, tt.out)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("%s: AUROC(%v, %v) = %g, want %g", tt.name, tt.in, tt.out, got, tt.want)
		}
	}
}

func TestFPRAt95TPRHandComputed(t *testing.T) {
	twenty := make([]float64, 20)
	for i := range twenty {
		twenty[i] = float64(20 - i) // 20, 19, ..., 1: order does not matter
	}
	tests := []struct {
		name    string
		in, out []float64
		want    OperatingPoint
	}{
		// ceil(0.95·20) = 19, so the threshold is 19 and only out 5
		// (and not 19.5) is accepted.
		{"twenty", twenty, []float64{5, 19.5, 21, 30}, OperatingPoint{Threshold: 19, TPR: 0.95, FPR: 0.25}},
		// ceil(0.95·10) = 10: every in-distribution score is accepted.
		{"ten", twenty[10:], []float64{10, 11}, OperatingPoint{Threshold: 10, TPR: 1, FPR: 0.5}},
		// Ties at the threshold are accepted together: TPR 1, and the out
		// score equal to the threshold counts as accepted.
		{"ties", []float64{1, 2, 2, 2}, []float64{2, 3}, OperatingPoint{Threshold: 2, TPR: 1, FPR: 0.5}},
		{"one", []float64{7}, []float64{6, 7, 8}, OperatingPoint{Threshold: 7, TPR: 1, FPR: 2.0 / 3}},
	}
	for _, tt := range tests {
		got, err := FPRAt95TPR(tt.in, tt.out)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("%s: FPRAt95TPR = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestScoresRejectEmptyAndNaN(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in, out []float64
		want    string
	}{
		{"empty", nil, []float64{1}, "0 in-distribution and 1 out-of-distribution scores"},
		{"NaN", []float64{1}, []float64{math.NaN()}, "a score is NaN"},
	} {
		if _, err := AUROC(tt.in, tt.out); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: AUROC error = %v, want one containing %q", tt.name, err, tt.want)
		}
		if _, err := FPRAt95TPR(tt.in, tt.out); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: FPRAt95TPR error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// TestMahalanobisSeparatesShiftedGaussians fits three classes drawn from
// unit Gaussians in 8 dimensions and scores fresh draws of the same
// classes against draws shifted by 3 along every axis.
func TestMahalanobisSeparatesShiftedGaussians(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 0))
	draw := func(class int, shift float64) []float32 {
		x := make([]float32, 8)
		for d := range x {
			x[d] = float32(rng.NormFloat64() + shift)
		}
		x[class] += 6 // class centres 6 apart on different axes
		return x
	}
	var fit [][]float32
	var labels []string
	for i := range 300 {
		fit = append(fit, draw(i%3, 0))
		labels = append(labels, []string{"a", "b", "c"}[i%3])
	}
	m, err := FitGaussians(fit, labels, DefaultRidge)
	if err != nil {
		t.Fatal(err)
	}
	score := func(shift float64) []float64 {
		scores := make([]float64, 150)
		for i := range scores {
			s, _, err := m.Score(draw(i%3, shift))
			if err != nil {
				t.Fatal(err)
			}
			scores[i] = s
		}
		return scores
	}
	in, out := score(0), score(3)

	self, err := AUROC(in, in)
	if err != nil {
		t.Fatal(err)
	}
	if self != 0.5 {
		t.Errorf("AUROC of a set against itself = %g, want exactly 0.5", self)
	}
	shifted, err := AUROC(in, out)
	if err != nil {
		t.Fatal(err)
	}
	if shifted < 0.95 {
		t.Errorf("AUROC against the shifted set = %g, want at least 0.95", shifted)
	}
	point, err := FPRAt95TPR(in, out)
	if err != nil {
		t.Fatal(err)
	}
	if point.TPR < 0.95 || point.FPR > 0.2 {
		t.Errorf("FPR at 95 %% TPR = %+v, want TPR >= 0.95 and FPR <= 0.2", point)
	}
}
