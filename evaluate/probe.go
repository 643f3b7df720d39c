package evaluate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// ProbeReport is the result of a linear probe: a softmax classifier fitted
// to frozen embeddings of the training examples and scored on both
// splits.
type ProbeReport struct {
	// Classes are the distinct training labels, sorted, so class k is
	// Classes[k].
	Classes  []string       `json:"classes"`
	Train    SplitScores    `json:"train"`
	Test     SplitScores    `json:"test"`
	L2       float64        `json:"l2"`
	Fit      FitStats       `json:"fit"`
	Majority MajorityScores `json:"majority_baseline"`
}

// SplitScores is a classifier's accuracy on one split.
type SplitScores struct {
	Examples int     `json:"examples"`
	Correct  int     `json:"correct"`
	Accuracy float64 `json:"accuracy"`
	// BalancedAccuracy is the mean of the accuracies of the classes that
	// have examples in the split, which weights every class equally.
	BalancedAccuracy float64 `json:"balanced_accuracy"`
	// UnknownLabels counts the examples whose label no training example
	// has. The classifier cannot predict it, so they count as wrong.
	UnknownLabels int          `json:"unknown_labels"`
	PerClass      []ClassScore `json:"per_class"`
}

// ClassScore is the accuracy on the examples of one label.
type ClassScore struct {
	Class    string  `json:"class"`
	Examples int     `json:"examples"`
	Correct  int     `json:"correct"`
	Accuracy float64 `json:"accuracy"`
}

// MajorityScores is the baseline that predicts the most frequent training
// class for every example.
type MajorityScores struct {
	Class                string  `json:"class"`
	TrainAccuracy        float64 `json:"train_accuracy"`
	TestAccuracy         float64 `json:"test_accuracy"`
	TestBalancedAccuracy float64 `json:"test_balanced_accuracy"`
}

// Labelled returns the examples that have a label and the number left
// out.
func Labelled(examples []Example) (labelled []Example, unlabelled int) {
	for _, example := range examples {
		if example.Label == "" {
			unlabelled++
			continue
		}
		labelled = append(labelled, example)
	}
	return labelled, unlabelled
}

// Labels returns the examples' labels in order.
func Labels(examples []Example) []string {
	labels := make([]string, len(examples))
	for i, example := range examples {
		labels[i] = example.Label
	}
	return labels
}

// EmbedImages returns the embedding of each example's image alone, pooled
// by pool. Every example needs an image, and its caption is not used.
// progress, when not nil, is called after each example with the number
// done and len(examples). EmbedImages stops with ctx's error when ctx is
// cancelled.
func EmbedImages(ctx context.Context, p *core.Pipeline, examples []Example, pool core.Pooling, progress func(done, total int)) ([][]float32, error) {
	embeddings := make([][]float32, len(examples))
	for i, example := range examples {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("embed images: %w", err)
		}
		if !example.HasImage() {
			return nil, fmt.Errorf("embed images: %s has no image: a probe on image embeddings needs one per example", example.Name)
		}
		img, err := example.LoadImage()
		if err != nil {
			return nil, fmt.Errorf("embed images: %w", err)
		}
		if embeddings[i], err = p.Embed(img, "", pool); err != nil {
			return nil, fmt.Errorf("embed images: %s: %w", example.Name, err)
		}
		if progress != nil {
			progress(i+1, len(examples))
		}
	}
	return embeddings, nil
}

// ProbeEmbeddings fits a softmax classifier (TrainClassifier) to the
// training embeddings and their labels and scores it, and the majority
// class, on both splits. Labels must not be empty. The classes are the
// distinct training labels.
func ProbeEmbeddings(trainFeatures [][]float32, trainLabels []string, testFeatures [][]float32, testLabels []string, opts ClassifierOptions) (*ProbeReport, error) {
	if len(trainFeatures) != len(trainLabels) || len(testFeatures) != len(testLabels) {
		return nil, fmt.Errorf("probe: %d train and %d test embeddings for %d and %d labels: give one label per embedding",
			len(trainFeatures), len(testFeatures), len(trainLabels), len(testLabels))
	}
	if len(testFeatures) == 0 {
		return nil, errors.New("probe: no test examples")
	}
	if slices.Contains(trainLabels, "") || slices.Contains(testLabels, "") {
		return nil, errors.New("probe: an example has an empty label: leave unlabelled examples out (Labelled)")
	}
	classes, trainIDs, counts := classIndex(trainLabels)
	if len(classes) < 2 {
		return nil, fmt.Errorf("probe: the training examples have %d distinct labels (%q): a classifier needs at least 2", len(classes), classes)
	}
	classifier, stats, err := TrainClassifier(trainFeatures, trainIDs, len(classes), opts)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	for i, x := range testFeatures {
		if len(x) != classifier.NumFeatures {
			return nil, fmt.Errorf("probe: test embedding %d has %d entries, want %d like the training embeddings: embed both splits with one model",
				i, len(x), classifier.NumFeatures)
		}
	}

	predict := func(features [][]float32) []int {
		predicted := make([]int, len(features))
		for i, x := range features {
			predicted[i] = classifier.Predict(x)
		}
		return predicted
	}
	// The majority class, the lowest on equal counts.
	majority := 0
	for k := range classes {
		if counts[k] > counts[majority] {
			majority = k
		}
	}
	constant := func(n int) []int { return slices.Repeat([]int{majority}, n) }
	majorityTrain := scoreSplit(classes, trainLabels, constant(len(trainLabels)))
	majorityTest := scoreSplit(classes, testLabels, constant(len(testLabels)))
	return &ProbeReport{
		Classes: classes,
		Train:   scoreSplit(classes, trainLabels, predict(trainFeatures)),
		Test:    scoreSplit(classes, testLabels, predict(testFeatures)),
		L2:      opts.L2,
		Fit:     stats,
		Majority: MajorityScores{
			Class:                classes[majority],
			TrainAccuracy:        majorityTrain.Accuracy,
			TestAccuracy:         majorityTest.Accuracy,
			TestBalancedAccuracy: majorityTest.BalancedAccuracy,
		},
	}, nil
}

// classIndex returns the sorted distinct labels, each label's index among
// them and the number of labels of each class.
func classIndex(labels []string) (classes []string, ids, counts []int) {
	seen := map[string]bool{}
	for _, label := range labels {
		seen[label] = true
	}
	classes = slices.Sorted(maps.Keys(seen))
	ids = make([]int, len(labels))
	counts = make([]int, len(classes))
	for i, label := range labels {
		ids[i], _ = slices.BinarySearch(classes, label)
		counts[ids[i]]++
	}
	return classes, ids, counts
}

// scoreSplit compares predicted class indices with the labels of a split.
// Per-class scores cover every label of the split, known or not, sorted.
func scoreSplit(classes, labels []string, predicted []int) SplitScores {
	perClass := map[string]*ClassScore{}
	s := SplitScores{Examples: len(labels)}
	for i, label := range labels {
		score := perClass[label]
		if score == nil {
			score = &ClassScore{Class: label}
			perClass[label] = score
		}
		score.Examples++
		if _, known := slices.BinarySearch(classes, label); !known {
			s.UnknownLabels++
		}
		if classes[predicted[i]] == label {
			score.Correct++
			s.Correct++
		}
	}
	for _, score := range perClass {
		score.Accuracy = float64(score.Correct) / float64(score.Examples)
		s.PerClass = append(s.PerClass, *score)
	}
	// Sort before summing, so the sum does not depend on map order.
	slices.SortFunc(s.PerClass, func(a, b ClassScore) int { return cmp.Compare(a.Class, b.Class) })
	for _, score := range s.PerClass {
		s.BalancedAccuracy += score.Accuracy
	}
	if s.Examples > 0 {
		s.Accuracy = float64(s.Correct) / float64(s.Examples)
		s.BalancedAccuracy /= float64(len(perClass))
	}
	return s
}
