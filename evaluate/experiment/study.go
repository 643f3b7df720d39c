package experiment

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/evaluate"
	"github.com/m3ae-edge/m3ae-edge/native/trainrun"
)

// Study names.
const (
	StudyTextMaskRatio    = "text-mask-ratio"
	StudyPairedVsUnpaired = "paired-vs-unpaired"
	StudyM3AEVsMAE        = "m3ae-vs-mae"
)

// studyDescriptions are the one-line descriptions of the studies, in the
// order StudyNames lists them.
var studyDescriptions = []struct{ name, description string }{
	{StudyTextMaskRatio, "the fraction of text positions hidden from the encoder, one arm per ratio"},
	{StudyPairedVsUnpaired, "the share of the pairs given as pairs; the images and captions of the rest are given as image-only and text-only examples"},
	{StudyM3AEVsMAE, "the same images with their captions (M3AE) and without any text (MAE)"},
}

// StudyNames returns the names Run accepts.
func StudyNames() []string {
	names := make([]string, len(studyDescriptions))
	for i, s := range studyDescriptions {
		names[i] = s.name
	}
	return names
}

// StudyDescription returns the one-line description of a study, or "" for
// an unknown name.
func StudyDescription(name string) string {
	for _, s := range studyDescriptions {
		if s.name == name {
			return s.description
		}
	}
	return ""
}

// Default arms of the studies that take a list.
var (
	DefaultTextMaskRatios  = []float64{0.15, 0.5, 0.75, 0.9}
	DefaultPairedFractions = []float64{1, 0.5, 0}
)

// MaxSeeds bounds the number of seeds of a study, which is already a long
// one at 10.
const MaxSeeds = 100

// Config is one study.
type Config struct {
	// Study is one of StudyNames.
	Study string
	// Dir is the study folder.
	Dir string
	// Captions is the JSONL captions file of the training pairs. Every
	// arm trains on its images, its captions or both.
	Captions string
	// Train is the budget every arm shares: the preset, steps, batch,
	// optimizer, masking, held-out split (EvalCaptions) and checkpoint
	// intervals. Its training data fields must be empty, because the arms
	// set them from Captions, and its Seed is replaced by each run's seed.
	Train trainrun.Options
	// Seeds lists the seeds. Every arm trains once per seed.
	Seeds []uint64
	// TextMaskRatios are the arms of StudyTextMaskRatio, and
	// PairedFractions those of StudyPairedVsUnpaired. Nil means the
	// defaults; the other studies must leave them nil.
	TextMaskRatios  []float64
	PairedFractions []float64
	Probe           ProbeConfig
	// RandomInitBaseline adds, per seed, the probe of the model that every
	// run of that seed starts from: fresh weights and no training.
	RandomInitBaseline bool
	// Command is the command line that ran the study, recorded in the
	// results; "" leaves it out.
	Command string
}

// ProbeConfig selects the labelled data of the linear probe and its fit.
type ProbeConfig struct {
	// Train and Test are each a JSONL captions file whose LabelField
	// contains each image's class, or a folder with one subfolder of
	// images per class.
	Train string `json:"train"`
	Test  string `json:"test"`
	// LabelField is the JSONL field of the class; folders ignore it.
	LabelField string `json:"label_field"`
	// Pooling is "cls" or "mean" (core.PoolCLS, core.PoolMean).
	Pooling string `json:"pooling"`
	// LimitTrain and LimitTest keep that many examples of each split,
	// spread evenly over it (evaluate.Subsample); 0 keeps all.
	LimitTrain int                        `json:"limit_train"`
	LimitTest  int                        `json:"limit_test"`
	Classifier evaluate.ClassifierOptions `json:"classifier"`
}

// Arm is one setting of a study's variable.
type Arm struct {
	// Name identifies the arm in folder names and results, such as
	// "text-mask-0.15".
	Name string `json:"name"`
	// Label names the arm in tables and plots, such as "text mask 0.15".
	Label string `json:"label"`
	// TextMaskRatio is the fraction of text positions hidden.
	TextMaskRatio float64 `json:"text_mask_ratio"`
	// PairedFraction is the share of the training pairs given as pairs; the
	// rest are split into an image-only and a text-only example each.
	PairedFraction float64 `json:"paired_fraction"`
	// WithText is false for the MAE arm, which trains on no text at all.
	WithText bool `json:"with_text"`
}

// Arms returns the arms of cfg's study, in the order they run.
func (cfg Config) Arms() ([]Arm, error) {
	mask := cfg.Train.TextMaskRatio
	switch cfg.Study {
	case StudyTextMaskRatio:
		ratios := cfg.TextMaskRatios
		if ratios == nil {
			ratios = DefaultTextMaskRatios
		}
		if err := checkArmValues("--text-mask-ratios", ratios); err != nil {
			return nil, err
		}
		arms := make([]Arm, len(ratios))
		for i, r := range ratios {
			value := formatValue(r)
			arms[i] = Arm{Name: "text-mask-" + value, Label: "text mask " + value, TextMaskRatio: r, PairedFraction: 1, WithText: true}
		}
		return arms, nil

	case StudyPairedVsUnpaired:
		fractions := cfg.PairedFractions
		if fractions == nil {
			fractions = DefaultPairedFractions
		}
		if err := checkArmValues("--paired-fractions", fractions); err != nil {
			return nil, err
		}
		arms := make([]Arm, len(fractions))
		for i, f := range fractions {
			if !(f >= 0 && f <= 1) {
				return nil, fmt.Errorf("--paired-fractions: %g is outside 0 to 1: give the share of the pairs kept paired, such as 1,0.5,0", f)
			}
			// Six digits keep 0.1*100 from printing as 10.000000000000002.
			percent := strconv.FormatFloat(f*100, 'g', 6, 64)
			arms[i] = Arm{Name: "paired-" + percent, Label: percent + " % paired", TextMaskRatio: mask, PairedFraction: f, WithText: true}
			for _, earlier := range arms[:i] {
				if earlier.Name == arms[i].Name {
					return nil, fmt.Errorf("--paired-fractions: %g and %g both name arm %s: give shares that differ in the first six digits of their percentage",
						earlier.PairedFraction, f, earlier.Name)
				}
			}
		}
		return arms, nil

	case StudyM3AEVsMAE:
		return []Arm{
			{Name: "m3ae", Label: "M3AE: images and captions", TextMaskRatio: mask, PairedFraction: 1, WithText: true},
			{Name: "mae", Label: "MAE: images only", TextMaskRatio: mask, PairedFraction: 0, WithText: false},
		}, nil
	}
	return nil, fmt.Errorf("unknown study %q: use one of %s", cfg.Study, strings.Join(StudyNames(), ", "))
}

// checkArmValues rejects an empty list, values that are not finite and
// repeated values, which would give two arms one folder.
func checkArmValues(flag string, values []float64) error {
	if len(values) == 0 {
		return fmt.Errorf("%s is empty: give at least one value", flag)
	}
	for i, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: %g is not a finite number", flag, v)
		}
		if slices.Contains(values[:i], v) {
			return fmt.Errorf("%s: %g is given twice: give each value once", flag, v)
		}
	}
	return nil
}

// formatValue writes an arm's value in the shortest form that reads back
// exactly, for folder names and labels.
func formatValue(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// armOptions returns the training options of arm at seed, with data from
// data, the arm's prepared training data.
func (cfg Config) armOptions(arm Arm, seed uint64, data armData) trainrun.Options {
	opts := cfg.Train
	opts.Seed = seed
	opts.TextMaskRatio = arm.TextMaskRatio
	opts.Captions = nil
	if data.paired != "" {
		opts.Captions = []string{data.paired}
	}
	opts.ImageFolders, opts.TextLines = nil, nil
	if data.images != "" {
		opts.ImageFolders = []string{data.images}
	}
	if data.texts != "" {
		opts.TextLines = []string{data.texts}
	}
	// Every example, a pair or one half of a split pair, is drawn at the
	// same rate: each source's share of a batch is its share of the
	// examples.
	opts.PairedWeight = arm.PairedFraction
	opts.ImageOnlyWeight = 1 - arm.PairedFraction
	opts.TextOnlyWeight = 1 - arm.PairedFraction
	// trainrun rejects zero weights even for absent sources; the weight of
	// an absent source is never read.
	for _, w := range []*float64{&opts.PairedWeight, &opts.ImageOnlyWeight, &opts.TextOnlyWeight} {
		if *w == 0 {
			*w = 1
		}
	}
	return opts
}

// validate checks cfg before anything is written: the study and its arms,
// the seeds, the paths and the options of every arm.
func (cfg Config) validate() ([]Arm, error) {
	arms, err := cfg.Arms()
	if err != nil {
		return nil, err
	}
	if cfg.Study != StudyTextMaskRatio && cfg.TextMaskRatios != nil {
		return nil, fmt.Errorf("--text-mask-ratios sets the arms of the %s study only; study %s hides --text-mask-ratio of the text in every arm",
			StudyTextMaskRatio, cfg.Study)
	}
	if cfg.Study != StudyPairedVsUnpaired && cfg.PairedFractions != nil {
		return nil, fmt.Errorf("--paired-fractions sets the arms of the %s study only", StudyPairedVsUnpaired)
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("no study folder: pass --out DIR")
	}
	if len(cfg.Seeds) == 0 || len(cfg.Seeds) > MaxSeeds {
		return nil, fmt.Errorf("--seeds %d: want 1 to %d", len(cfg.Seeds), MaxSeeds)
	}
	for i, seed := range cfg.Seeds {
		if slices.Contains(cfg.Seeds[:i], seed) {
			return nil, fmt.Errorf("seed %d is given twice: give each seed once", seed)
		}
	}
	if cfg.Captions == "" {
		return nil, fmt.Errorf("no training data: pass --captions with a JSONL captions file")
	}
	if ext := strings.ToLower(filepath.Ext(cfg.Captions)); ext != ".jsonl" && ext != ".ndjson" {
		return nil, fmt.Errorf("--captions %s: want a JSONL captions file (.jsonl), whose images and captions the arms split", cfg.Captions)
	}
	t := cfg.Train.DataOptions
	if len(t.Captions)+len(t.Shards)+len(t.ImageFolders)+len(t.TextLines) > 0 || t.EvalFraction != 0 {
		return nil, fmt.Errorf("the training data of a study comes from --captions alone: the arms derive their sources from it")
	}
	if cfg.Probe.Pooling != "cls" && cfg.Probe.Pooling != "mean" {
		return nil, fmt.Errorf("--pooling %q: use cls or mean", cfg.Probe.Pooling)
	}
	if cfg.Probe.LimitTrain < 0 || cfg.Probe.LimitTest < 0 {
		return nil, fmt.Errorf("--probe-limit-train %d and --probe-limit-test %d: use 0 for every example or a positive count",
			cfg.Probe.LimitTrain, cfg.Probe.LimitTest)
	}

	// Validate the shared budget first, so that its errors name the flag at
	// fault rather than an arm.
	base := cfg.Train
	base.Captions = []string{cfg.Captions}
	base.Seed = cfg.Seeds[0]
	if err := base.Validate(); err != nil {
		return nil, err
	}

	// Validate every arm's options with stand-in data paths, so a bad
	// ratio fails before the first run trains.
	standIn := armData{paired: cfg.Captions, images: cfg.Dir, texts: cfg.Captions}
	for _, arm := range arms {
		opts := cfg.armOptions(arm, cfg.Seeds[0], standIn)
		if err := opts.Validate(); err != nil {
			if cfg.Study == StudyTextMaskRatio {
				return nil, fmt.Errorf("--text-mask-ratios: arm %s: %w", arm.Name, err)
			}
			return nil, err
		}
	}
	return arms, nil
}
