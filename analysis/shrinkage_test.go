package analysis

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestLedoitWolfHandComputed fits one class of four points with mean 0:
// (±2, 0) and (0, ±1). S = diag(2, 0.5), so tr(S) = 2.5, μ = 1.25 and
// |S|² = 4.25. d² = (4.25 − 2.5²/2)/2 = 0.5625. The points' |x|⁴ sum to
// 34, so b² = (34/4 − 4.25)/(4·2) = 0.53125 and δ = 0.53125/0.5625 =
// 17/18. The shrunk covariance is diag(2, 0.5)/18 + 17/18·1.25·I =
// diag(23.25, 21.75)/18.
func TestLedoitWolfHandComputed(t *testing.T) {
	features := [][]float32{{2, 0}, {-2, 0}, {0, 1}, {0, -1}}
	m, err := FitGaussiansLedoitWolf(features, []string{"a", "a", "a", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := 17.0 / 18; !closeTo(m.Shrinkage, want) {
		t.Errorf("shrinkage = %g, want %g", m.Shrinkage, want)
	}
	if m.Ridge != 0 {
		t.Errorf("ridge = %g, want 0", m.Ridge)
	}
	for _, tt := range []struct {
		x    []float32
		want float64
	}{
		{[]float32{1, 0}, math.Sqrt(18 / 23.25)},
		{[]float32{0, 1}, math.Sqrt(18 / 21.75)},
		{[]float32{1, 1}, math.Sqrt(18/23.25 + 18/21.75)},
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

// TestLedoitWolfNoShrinkageForIsotropic checks that S = μI, which needs no
// shrinkage, gets none: (±1, 0) and (0, ±1) have S = 0.5·I.
func TestLedoitWolfNoShrinkageForIsotropic(t *testing.T) {
	m, err := FitGaussiansLedoitWolf([][]float32{{1, 0}, {-1, 0}, {0, 1}, {0, -1}}, []string{"a", "a", "a", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Shrinkage != 0 {
		t.Errorf("shrinkage = %g, want 0", m.Shrinkage)
	}
	got, _, err := m.Score([]float32{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2.0; !closeTo(got, want) {
		t.Errorf("Score(1, 1) = %g, want %g", got, want)
	}
}

// ledoitWolfDirect computes the Ledoit-Wolf weight from its definition
// with full D x D matrices: d² = |S − μI|²/D and b² = Σ_i |x_i xᵢᵀ −
// S|²/(D n²), over residuals around the class means.
func ledoitWolfDirect(features [][]float32, labels []string) float64 {
	dim, n := len(features[0]), len(features)

	// Residuals around the class means.
	classes, ids := indexLabels(labels)
	means := make([][]float64, len(classes))
	counts := make([]float64, len(classes))
	for k := range means {
		means[k] = make([]float64, dim)
	}
	for i, x := range features {
		counts[ids[i]]++
		for d, v := range x {
			means[ids[i]][d] += float64(v)
		}
	}
	residuals := make([][]float64, n)
	for i, x := range features {
		residuals[i] = make([]float64, dim)
		for d, v := range x {
			residuals[i][d] = float64(v) - means[ids[i]][d]/counts[ids[i]]
		}
	}

	// S and its trace.
	s := make([]float64, dim*dim)
	for _, r := range residuals {
		for a := range dim {
			for b := range dim {
				s[a*dim+b] += r[a] * r[b] / float64(n)
			}
		}
	}
	var trace float64
	for a := range dim {
		trace += s[a*dim+a]
	}

	// d² and b² from their definitions.
	mu := trace / float64(dim)
	var d2, b2 float64
	for a := range dim {
		for b := range dim {
			target := 0.0
			if a == b {
				target = mu
			}
			d2 += (s[a*dim+b] - target) * (s[a*dim+b] - target)
		}
	}
	d2 /= float64(dim)
	for _, r := range residuals {
		for a := range dim {
			for b := range dim {
				diff := r[a]*r[b] - s[a*dim+b]
				b2 += diff * diff
			}
		}
	}
	b2 /= float64(dim) * float64(n) * float64(n)
	return min(b2, d2) / d2
}

func TestLedoitWolfMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, shape := range []struct {
		name       string
		n, dim     int
		numClasses int
	}{
		{"fewer examples than dimensions", 12, 20, 1},
		{"more examples than dimensions", 60, 8, 1},
		{"three classes", 30, 10, 3},
	} {
		features := make([][]float32, shape.n)
		labels := make([]string, shape.n)
		for i := range features {
			features[i] = make([]float32, shape.dim)
			for d := range features[i] {
				// Unequal scales per dimension, so S is far from μI.
				features[i][d] = float32(rng.NormFloat64() * float64(1+d%4))
			}
			labels[i] = string(rune('a' + i%shape.numClasses))
		}
		m, err := FitGaussiansLedoitWolf(features, labels)
		if err != nil {
			t.Fatalf("%s: %v", shape.name, err)
		}
		want := ledoitWolfDirect(features, labels)
		if math.Abs(m.Shrinkage-want) > 1e-9 {
			t.Errorf("%s: shrinkage = %.12g, want %.12g", shape.name, m.Shrinkage, want)
		}
		if !(m.Shrinkage > 0 && m.Shrinkage < 1) {
			t.Errorf("%s: shrinkage = %g, want it strictly between 0 and 1", shape.name, m.Shrinkage)
		}
	}
}

func TestLedoitWolfRejects(t *testing.T) {
	tests := []struct {
		name     string
		features [][]float32
		want     string
	}{
		{"empty", nil, "no embeddings"},
		{"no variance", [][]float32{{1, 1}, {1, 1}}, "do not vary"},
		// Two mirrored points have one outer product, so b² = 0 and S,
		// of rank 1, stays singular.
		{"mirrored pair", [][]float32{{1, 0}, {-1, 0}}, "singular after shrinkage 0"},
	}
	for _, tt := range tests {
		labels := make([]string, len(tt.features))
		for i := range labels {
			labels[i] = "a"
		}
		_, err := FitGaussiansLedoitWolf(tt.features, labels)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestPercentileRank(t *testing.T) {
	scores := []float64{1, 2, 3, 4}
	for _, tt := range []struct {
		score, want float64
	}{
		{0.5, 0},
		{1, 12.5}, // one tie counts one half
		{2.5, 50},
		{4, 87.5},
		{9, 100},
	} {
		if got := PercentileRank(scores, tt.score); got != tt.want {
			t.Errorf("PercentileRank(%v, %g) = %g, want %g", scores, tt.score, got, tt.want)
		}
	}
}

// TestReferenceSetLeaveOneOut checks each leave-one-out score against a
// fit of the other examples, and the readings of a member and of far and
// central inputs.
func TestReferenceSetLeaveOneOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n, dim = 10, 16
	reference := make([][]float32, n)
	for i := range reference {
		reference[i] = make([]float32, dim)
		for d := range reference[i] {
			reference[i][d] = float32(rng.NormFloat64())
		}
	}
	set, err := NewReferenceSet(reference)
	if err != nil {
		t.Fatal(err)
	}
	labels := make([]string, n-1)
	for i := range labels {
		labels[i] = "x"
	}
	for i := range reference {
		others := append(append([][]float32{}, reference[:i]...), reference[i+1:]...)
		fit, err := FitGaussiansLedoitWolf(others, labels)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := fit.Score(reference[i])
		if err != nil {
			t.Fatal(err)
		}
		if set.LeaveOneOut[i] != want {
			t.Errorf("LeaveOneOut[%d] = %g, want %g", i, set.LeaveOneOut[i], want)
		}
	}

	// The member with the highest leave-one-out score ranks above the
	// other nine.
	highest := 0
	for i, s := range set.LeaveOneOut {
		if s > set.LeaveOneOut[highest] {
			highest = i
		}
	}
	reading, err := set.Member(highest)
	if err != nil {
		t.Fatal(err)
	}
	if reading.Score != set.LeaveOneOut[highest] || reading.Percentile != 100 {
		t.Errorf("Member(%d) = %+v, want score %g at percentile 100", highest, reading, set.LeaveOneOut[highest])
	}
	if _, err := set.Member(n); err == nil {
		t.Errorf("Member(%d) of %d returned no error", n, n)
	}

	far := make([]float32, dim)
	for d := range far {
		far[d] = 50
	}
	if reading, err := set.Score(far); err != nil || reading.Percentile != 100 {
		t.Errorf("Score(far) = %+v, %v, want percentile 100", reading, err)
	}
	mean := make([]float32, dim)
	for _, x := range reference {
		for d, v := range x {
			mean[d] += v / n
		}
	}
	if reading, err := set.Score(mean); err != nil || reading.Percentile != 0 {
		t.Errorf("Score(reference mean) = %+v, %v, want percentile 0", reading, err)
	}
}

func TestReferenceSetRejectsSmallSets(t *testing.T) {
	_, err := NewReferenceSet([][]float32{{1, 2}, {2, 1}})
	if err == nil || !strings.Contains(err.Error(), "2 embeddings, want at least 3") {
		t.Errorf("NewReferenceSet of 2: error = %v, want a size error", err)
	}
}
