package trainrun

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"

	"github.com/m3ae-edge/m3ae-edge/native/data"
)

// Names of the mixer's sources, in the order they are added.
const (
	sourcePaired    = "paired"
	sourceImageOnly = "image-only"
	sourceTextOnly  = "text-only"
)

// runData is the opened data of a run.
type runData struct {
	// train lists the mixer's sources: paired, image-only and text-only,
	// those present, in that order.
	train []data.WeightedSource
	// eval is the held-out split, nil without one.
	eval data.Source
	// imageSource is the first training source with images, which the
	// pixel statistics are measured on; nil for text-only data.
	imageSource data.Source
}

// openData opens every source that o names and splits off the held-out
// examples.
func openData(o DataOptions, logger *slog.Logger) (*runData, error) {
	var paired []data.Source
	for _, path := range o.Captions {
		src, err := data.OpenCaptions(path, data.CaptionsOptions{SkipBad: o.SkipBad, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("--captions: %w", err)
		}
		paired = append(paired, src)
	}
	if len(o.Shards) > 0 {
		src, err := data.OpenShards(o.Shards, data.ShardOptions{SkipBad: o.SkipBad, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("--shards: %w", err)
		}
		paired = append(paired, src)
	}
	var images []data.Source
	for _, dir := range o.ImageFolders {
		src, err := data.OpenImageFolder(dir)
		if err != nil {
			return nil, fmt.Errorf("--image-folder: %w", err)
		}
		images = append(images, src)
	}
	var texts []data.Source
	for _, path := range o.TextLines {
		src, err := data.OpenTextLines(path)
		if err != nil {
			return nil, fmt.Errorf("--text-lines: %w", err)
		}
		texts = append(texts, src)
	}

	d := &runData{}
	pairedSource := concat(paired)
	switch {
	case o.EvalCaptions != "":
		src, err := data.OpenCaptions(o.EvalCaptions, data.CaptionsOptions{SkipBad: o.SkipBad, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("--eval-captions: %w", err)
		}
		d.eval = src
	case o.EvalFraction > 0:
		var err error
		pairedSource, d.eval, err = splitHeldOut(pairedSource, o.EvalFraction)
		if err != nil {
			return nil, err
		}
	}

	for _, s := range []struct {
		name   string
		source data.Source
		weight float64
	}{
		{sourcePaired, pairedSource, o.PairedWeight},
		{sourceImageOnly, concat(images), o.ImageOnlyWeight},
		{sourceTextOnly, concat(texts), o.TextOnlyWeight},
	} {
		if s.source == nil {
			continue
		}
		d.train = append(d.train, data.WeightedSource{Name: s.name, Source: s.source, Weight: s.weight})
		if d.imageSource == nil && s.name != sourceTextOnly {
			d.imageSource = s.source
		}
	}
	return d, nil
}

// concatSource reads several sources as one, in order.
type concatSource struct {
	parts []data.Source
	// starts[i] is the index of the first example of parts[i].
	starts []int
	total  int
}

// concat returns the sources as one, or nil for none.
func concat(parts []data.Source) data.Source {
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return parts[0]
	}
	c := &concatSource{parts: parts}
	for _, p := range parts {
		c.starts = append(c.starts, c.total)
		c.total += p.Len()
	}
	return c
}

func (c *concatSource) Len() int { return c.total }

func (c *concatSource) Example(i int) (data.Example, error) {
	if i < 0 || i >= c.total {
		return data.Example{}, fmt.Errorf("example index %d is out of range [0, %d)", i, c.total)
	}
	part := sort.Search(len(c.starts), func(j int) bool { return c.starts[j] > i }) - 1
	return c.parts[part].Example(i - c.starts[part])
}

// subsetSource reads the examples of src at indices.
type subsetSource struct {
	src     data.Source
	indices []int
}

func (s *subsetSource) Len() int { return len(s.indices) }

func (s *subsetSource) Example(i int) (data.Example, error) {
	if i < 0 || i >= len(s.indices) {
		return data.Example{}, fmt.Errorf("example index %d is out of range [0, %d)", i, len(s.indices))
	}
	return s.src.Example(s.indices[i])
}

// splitHeldOut holds out round(fraction*Len) examples of src, at least one,
// and returns the rest and the held-out ones. The choice depends only on
// the example indices, through a fixed hash, so every run over the same
// data holds out the same examples whatever its seed.
func splitHeldOut(src data.Source, fraction float64) (train, eval data.Source, err error) {
	n := src.Len()
	numEval := max(1, int(math.Round(fraction*float64(n))))
	if numEval >= n {
		return nil, nil, fmt.Errorf("--eval-fraction %g holds out %d of the %d paired examples and leaves none to train on: lower it",
			fraction, numEval, n)
	}
	order := HashOrder(n)
	held, kept := slices.Clone(order[:numEval]), slices.Clone(order[numEval:])
	slices.Sort(held)
	slices.Sort(kept)
	return &subsetSource{src, kept}, &subsetSource{src, held}, nil
}

// HashOrder returns the indices 0..n-1 ordered by the SplitMix64 hash of
// each index: a fixed shuffle that does not depend on any seed.
func HashOrder(n int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		ha, hb := splitMix64(uint64(a)), splitMix64(uint64(b))
		switch {
		case ha < hb:
			return -1
		case ha > hb:
			return 1
		}
		return 0
	})
	return order
}

// splitMix64 is the SplitMix64 finalizer, a bijective scrambler of 64-bit
// keys.
func splitMix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
