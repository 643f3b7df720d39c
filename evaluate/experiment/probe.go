package experiment

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/evaluate"
)

// probeSet is the labelled data of the linear probe, read once per study.
type probeSet struct {
	config      ProbeConfig
	pooling     core.Pooling
	train, test []evaluate.Example
}

// loadProbeSet reads and subsamples both splits and leaves out the
// examples without a label. It fails when a split has no labelled example.
func loadProbeSet(cfg ProbeConfig) (*probeSet, error) {
	set := &probeSet{config: cfg, pooling: core.PoolCLS}
	if cfg.Pooling == "mean" {
		set.pooling = core.PoolMean
	}
	var err error
	if set.train, err = readLabelled("--probe-train", cfg.Train, cfg.LabelField, cfg.LimitTrain); err != nil {
		return nil, err
	}
	if set.test, err = readLabelled("--probe-test", cfg.Test, cfg.LabelField, cfg.LimitTest); err != nil {
		return nil, err
	}
	if classes := set.summary().Classes; classes < 2 {
		return nil, fmt.Errorf("--probe-train %s has %d class: a classifier needs at least 2", cfg.Train, classes)
	}
	return set, nil
}

// readLabelled reads the labelled examples of a JSONL captions file or of
// a folder laid out by class, and keeps limit of them (0 keeps all).
func readLabelled(flag, path, labelField string, limit int) ([]evaluate.Example, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: give a JSONL captions file or a folder with one subfolder per class", flag, path, err)
	}
	var examples []evaluate.Example
	if info.IsDir() {
		examples, err = evaluate.ReadImageFolder(path)
	} else {
		examples, err = evaluate.ReadCaptions(path, labelField)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	examples, _ = evaluate.Labelled(evaluate.Subsample(examples, limit))
	if len(examples) == 0 {
		return nil, fmt.Errorf("%s %s has no example with a label in field %q: give a file whose examples carry their class there, or a folder laid out by class",
			flag, path, labelField)
	}
	return examples, nil
}

// probeTiming is the wall time of the two steps of a probe.
type probeTiming struct {
	embed, fit time.Duration
}

// run embeds the image of every example with mf, fits the classifier on
// the training split and scores it. progress, when not nil, is called
// after each embedded image with the number done and the total of both
// splits.
func (s *probeSet) run(ctx context.Context, mf *core.ModelFile, progress func(done, total int)) (*evaluate.ProbeReport, probeTiming, error) {
	var timing probeTiming
	pipeline, err := core.NewPipeline(mf)
	if err != nil {
		return nil, timing, err
	}
	total := len(s.train) + len(s.test)
	report := func(offset int) func(done, total int) {
		if progress == nil {
			return nil
		}
		return func(done, _ int) { progress(offset+done, total) }
	}

	start := time.Now()
	trainFeatures, err := evaluate.EmbedImages(ctx, pipeline, s.train, s.pooling, report(0))
	if err != nil {
		return nil, timing, err
	}
	testFeatures, err := evaluate.EmbedImages(ctx, pipeline, s.test, s.pooling, report(len(s.train)))
	if err != nil {
		return nil, timing, err
	}
	timing.embed = time.Since(start)

	start = time.Now()
	probe, err := evaluate.ProbeEmbeddings(trainFeatures, evaluate.Labels(s.train), testFeatures, evaluate.Labels(s.test), s.config.Classifier)
	if err != nil {
		return nil, timing, err
	}
	timing.fit = time.Since(start)
	return probe, timing, nil
}

// summary describes the probe's data: the classes, the split sizes and
// the majority-class baseline, which evaluate.ProbeEmbeddings computes the
// same way (the most frequent training label, the lowest on equal counts).
func (s *probeSet) summary() ProbeSummary {
	counts := map[string]int{}
	for _, example := range s.train {
		counts[example.Label]++
	}
	classes := slices.Sorted(maps.Keys(counts))

	majority := classes[0]
	for _, class := range classes {
		if counts[class] > counts[majority] {
			majority = class
		}
	}
	// Balanced accuracy averages over the classes of the test split, and
	// the constant prediction is right on all of one class at most.
	correct := 0
	testClasses := map[string]bool{}
	for _, example := range s.test {
		testClasses[example.Label] = true
		if example.Label == majority {
			correct++
		}
	}

	balanced := 0.0
	if testClasses[majority] {
		balanced = 1 / float64(len(testClasses))
	}
	return ProbeSummary{
		ProbeConfig: s.config, Classes: len(classes),
		TrainExamples: len(s.train), TestExamples: len(s.test),
		MajorityClass:            majority,
		MajorityAccuracy:         float64(correct) / float64(len(s.test)),
		MajorityBalancedAccuracy: balanced,
	}
}
