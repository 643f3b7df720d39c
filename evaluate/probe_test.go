package evaluate

import (
	"context"
	"image/color"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
)

func TestProbeEmbeddingsSeparable(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	names := []string{"circle", "square", "star"}
	draw := func(n int) ([][]float32, []string) {
		features, ids := separableSet(rng, n, 4, 0.5)
		labels := make([]string, n)
		for i, id := range ids {
			labels[i] = names[id]
		}
		return features, labels
	}
	trainX, trainY := draw(300)
	testX, testY := draw(100)
	testX = append(testX, []float32{10, 10, 10, 10})
	testY = append(testY, "hexagon") // a label the training set lacks

	report, err := ProbeEmbeddings(trainX, trainY, testX, testY, DefaultClassifierOptions())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(report.Classes, ",") != "circle,square,star" {
		t.Errorf("classes = %q, want circle, square, star", report.Classes)
	}
	if report.Train.Accuracy != 1 {
		t.Errorf("train accuracy = %v, want 1", report.Train.Accuracy)
	}
	if report.Test.Correct < 99 || report.Test.Examples != 101 || report.Test.UnknownLabels != 1 {
		t.Errorf("test scores = %+v, want at least 99 of 101 right and 1 unknown label", report.Test)
	}
	if n := len(report.Test.PerClass); n != 4 || report.Test.PerClass[1].Class != "hexagon" || report.Test.PerClass[1].Correct != 0 {
		t.Errorf("test per-class scores = %+v, want 4 classes with hexagon never right", report.Test.PerClass)
	}

	// The majority baseline predicts the most frequent training label.
	counts := map[string]int{}
	for _, label := range trainY {
		counts[label]++
	}
	if got := report.Majority.TrainAccuracy; got != float64(counts[report.Majority.Class])/300 {
		t.Errorf("majority baseline %+v does not match the training counts %v", report.Majority, counts)
	}
}

func TestScoreSplitBalancedAccuracy(t *testing.T) {
	classes := []string{"a", "b"}
	// Three a and one b, all predicted a.
	s := scoreSplit(classes, []string{"a", "a", "a", "b"}, []int{0, 0, 0, 0})
	if s.Accuracy != 0.75 || s.BalancedAccuracy != 0.5 || s.Correct != 3 {
		t.Errorf("scores = %+v, want accuracy 0.75 and balanced accuracy 0.5", s)
	}
}

func TestProbeEmbeddingsRejects(t *testing.T) {
	x := [][]float32{{0}, {1}}
	if _, err := ProbeEmbeddings(x, []string{"a", "a"}, x, []string{"a", "a"}, DefaultClassifierOptions()); err == nil ||
		!strings.Contains(err.Error(), "1 distinct labels") {
		t.Errorf("probe with one class = %v, want a distinct-labels error", err)
	}
	if _, err := ProbeEmbeddings(x, []string{"a", ""}, x, []string{"a", "b"}, DefaultClassifierOptions()); err == nil ||
		!strings.Contains(err.Error(), "empty label") {
		t.Errorf("probe with an empty label = %v, want an empty-label error", err)
	}
	if _, err := ProbeEmbeddings(x, []string{"a"}, x, []string{"a", "b"}, DefaultClassifierOptions()); err == nil {
		t.Error("probe with a missing label returned no error")
	}
	wide := [][]float32{{0, 1}, {1, 0}}
	if _, err := ProbeEmbeddings(x, []string{"a", "b"}, wide, []string{"a", "b"}, DefaultClassifierOptions()); err == nil ||
		!strings.Contains(err.Error(), "test embedding 0 has 2 entries, want 1") {
		t.Errorf("probe with wider test embeddings = %v, want a size error", err)
	}
}

func TestLabelled(t *testing.T) {
	labelled, unlabelled := Labelled([]Example{{Label: "a"}, {}, {Label: "b"}})
	if len(labelled) != 2 || unlabelled != 1 || strings.Join(Labels(labelled), ",") != "a,b" {
		t.Errorf("Labelled = %+v, %d, want a and b with 1 left out", labelled, unlabelled)
	}
}

func TestEmbedImages(t *testing.T) {
	p := microPipeline(t)
	examples := []Example{
		{Name: "red", Image: solidImage(16, color.RGBA{255, 0, 0, 255}), Caption: "ignored"},
		{Name: "blue", Image: solidImage(16, color.RGBA{0, 0, 255, 255})},
	}
	embeddings, err := EmbedImages(context.Background(), p, examples, core.PoolCLS, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(embeddings) != 2 || len(embeddings[0]) != p.Config().EmbedDim {
		t.Fatalf("embeddings have shape %d x %d, want 2 x %d", len(embeddings), len(embeddings[0]), p.Config().EmbedDim)
	}
	alone, err := p.Embed(examples[0].Image, "", core.PoolCLS)
	if err != nil {
		t.Fatal(err)
	}
	for i := range alone {
		if alone[i] != embeddings[0][i] {
			t.Fatalf("embedding entry %d = %v, want the image-only embedding's %v", i, embeddings[0][i], alone[i])
		}
	}

	_, err = EmbedImages(context.Background(), p, []Example{{Name: "words", Caption: "apple"}}, core.PoolCLS, nil)
	if err == nil || !strings.Contains(err.Error(), "words has no image") {
		t.Errorf("EmbedImages of a caption-only example = %v, want a no-image error", err)
	}
}
