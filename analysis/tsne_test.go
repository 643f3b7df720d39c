package analysis

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// gaussianClusters returns perCluster points around each of clusters
// centres in dim dimensions, the centres spread far apart on the axes,
// and each point's cluster index.
func gaussianClusters(clusters, perCluster, dim int, spread float64, seed uint64) ([][]float32, []int) {
	rng := rand.New(rand.NewPCG(seed, 0))
	var points [][]float32
	var ids []int
	for c := range clusters {
		for range perCluster {
			point := make([]float32, dim)
			for d := range point {
				point[d] = float32(rng.NormFloat64())
			}
			point[c%dim] += float32(spread * float64(1+c/dim))
			points = append(points, point)
			ids = append(ids, c)
		}
	}
	return points, ids
}

func TestConditionalAffinitiesPerplexity(t *testing.T) {
	points, _ := gaussianClusters(2, 20, 5, 4, 3)
	for _, scale := range []float64{1e-3, 1, 1e4} {
		distances := make([]float64, len(points))
		for j := range points {
			distances[j] = scale * squaredDistance(points[7], points[j])
		}
		out := make([]float64, len(points))
		conditionalAffinities(out, distances, 7, math.Log(10))
		var sum, entropy float64
		for _, p := range out {
			sum += p
			if p > 0 {
				entropy -= p * math.Log(p)
			}
		}
		if out[7] != 0 {
			t.Errorf("scale %g: P(7|7) = %g, want 0", scale, out[7])
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("scale %g: P(.|7) sums to %g, want 1", scale, sum)
		}
		if perplexity := math.Exp(entropy); math.Abs(perplexity-10) > 1e-3 {
			t.Errorf("scale %g: perplexity = %g, want 10", scale, perplexity)
		}
	}
}

func TestJointAffinitiesSymmetricSumToOne(t *testing.T) {
	points, _ := gaussianClusters(3, 10, 4, 5, 1)
	p, err := jointAffinities(context.Background(), points, 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(points) * (len(points) - 1) / 2; len(p.values) != want {
		t.Fatalf("%d stored affinities, want %d", len(p.values), want)
	}
	var sum float64
	for _, v := range p.values {
		sum += 2 * v // each stored pair is (i, j) and (j, i)
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("P sums to %g over ordered pairs, want 1", sum)
	}
}

func TestTriangleIndex(t *testing.T) {
	tri := newTriangle(5)
	next := 0
	for i := range 5 {
		for j := i + 1; j < 5; j++ {
			if got := tri.index(i, j); got != next {
				t.Errorf("index(%d, %d) = %d, want %d", i, j, got, next)
			}
			if got := tri.index(j, i); got != next {
				t.Errorf("index(%d, %d) = %d, want %d like (%d, %d)", j, i, got, next, i, j)
			}
			next++
		}
	}
}

// TestTSNEKeepsClustersTogether checks that three well-separated clusters
// in 10 dimensions stay apart in 2-D: every point's nearest 2-D neighbour
// is in its own cluster, and each cluster is tighter than the gaps.
func TestTSNEKeepsClustersTogether(t *testing.T) {
	points, ids := gaussianClusters(3, 20, 10, 20, 5)
	opts := DefaultTSNEOptions()
	opts.Perplexity = 10
	opts.Iterations = 500
	calls := 0
	result, err := TSNE(context.Background(), points, opts, func(done, total int) {
		calls++
		if done != calls || total != opts.Iterations {
			t.Fatalf("progress(%d, %d) at call %d, want (%d, %d)", done, total, calls, calls, opts.Iterations)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != opts.Iterations {
		t.Errorf("progress called %d times, want %d", calls, opts.Iterations)
	}
	if len(result.Points) != len(points) {
		t.Fatalf("%d points out, want %d", len(result.Points), len(points))
	}
	if result.LearningRate != 50 {
		t.Errorf("automatic learning rate = %g, want 50 for 60 points", result.LearningRate)
	}
	if !(result.KLDivergence >= 0) || result.KLDivergence > 1 {
		t.Errorf("KL divergence = %g, want in [0, 1] for separated clusters", result.KLDivergence)
	}

	distance := func(a, b [2]float64) float64 { return math.Hypot(a[0]-b[0], a[1]-b[1]) }
	for i, a := range result.Points {
		nearest, best := -1, math.Inf(1)
		for j, b := range result.Points {
			if j != i && distance(a, b) < best {
				nearest, best = j, distance(a, b)
			}
		}
		if ids[nearest] != ids[i] {
			t.Errorf("point %d of cluster %d has its nearest 2-D neighbour %d in cluster %d", i, ids[i], nearest, ids[nearest])
		}
	}
	var maxWithin, minBetween float64 = 0, math.Inf(1)
	for i, a := range result.Points {
		for j, b := range result.Points[:i] {
			if ids[i] == ids[j] {
				maxWithin = max(maxWithin, distance(a, b))
			} else {
				minBetween = min(minBetween, distance(a, b))
			}
		}
	}
	if maxWithin >= minBetween {
		t.Errorf("largest distance within a cluster %g is not below the smallest between clusters %g", maxWithin, minBetween)
	}
}

func TestTSNEDeterministic(t *testing.T) {
	points, _ := gaussianClusters(2, 8, 6, 10, 2)
	opts := DefaultTSNEOptions()
	opts.Perplexity = 4
	opts.Iterations = 60
	run := func(seed uint64) [][2]float64 {
		opts.Seed = seed
		result, err := TSNE(context.Background(), points, opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		return result.Points
	}
	first, again, other := run(1), run(1), run(2)
	for i := range first {
		if first[i] != again[i] {
			t.Fatalf("point %d = %v, then %v with the same seed", i, first[i], again[i])
		}
	}
	same := true
	for i := range first {
		same = same && first[i] == other[i]
	}
	if same {
		t.Error("seeds 1 and 2 gave the same points")
	}
}

func TestTSNERejects(t *testing.T) {
	points, _ := gaussianClusters(2, 5, 3, 5, 1)
	ragged := append([][]float32{{1, 2}}, points...)
	withNaN := append([][]float32{{float32(math.NaN()), 0, 0}}, points...)
	tests := []struct {
		name   string
		points [][]float32
		change func(*TSNEOptions)
		want   string
	}{
		{"two points", points[:2], nil, "2 points: give at least 3"},
		{"ragged", ragged, nil, "point 1 has 3 coordinates, but point 0 has 2"},
		{"NaN", withNaN, nil, "point 0 contains NaN"},
		{"perplexity too high", points, func(o *TSNEOptions) { o.Perplexity = 9 }, "perplexity 9 is invalid for 10 points: use a value above 0 and below 9"},
		{"perplexity 0", points, func(o *TSNEOptions) { o.Perplexity = 0 }, "perplexity 0 is invalid"},
		{"iterations", points, func(o *TSNEOptions) { o.Iterations = 0 }, "0 iterations"},
		{"learning rate", points, func(o *TSNEOptions) { o.LearningRate = -1 }, "learning rate -1 is invalid"},
		{"exaggeration", points, func(o *TSNEOptions) { o.EarlyExaggeration = 0.5 }, "early exaggeration 0.5 is invalid"},
	}
	for _, tt := range tests {
		opts := DefaultTSNEOptions()
		opts.Perplexity = 3
		if tt.change != nil {
			tt.change(&opts)
		}
		_, err := TSNE(context.Background(), tt.points, opts, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestTSNECancelled(t *testing.T) {
	points, _ := gaussianClusters(2, 5, 3, 5, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts := DefaultTSNEOptions()
	opts.Perplexity = 3
	if _, err := TSNE(ctx, points, opts, nil); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("error = %v, want context canceled", err)
	}
}
