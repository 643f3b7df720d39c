package trainrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/native"
	"github.com/m3ae-edge/m3ae-edge/native/data"
)

// MaxBatchSize bounds --batch. The batcher allocates every batch's pixels
// up front, and 4096 examples of the official 256-pixel size already take
// 3 GiB, so larger values only end in an out-of-memory crash.
const MaxBatchSize = 4096

// Options is the configuration of one training run. JSON names are the
// flags of `m3ae-edge train`, so run.json and the messages about a resumed
// run read like its command line.
type Options struct {
	// Preset names the architecture (core.Preset).
	Preset string `json:"preset"`

	DataOptions

	// BatchSize is the number of examples B per step.
	BatchSize int `json:"batch"`
	// Steps is the number of updates of the whole run; the cosine schedule
	// reaches 0 there.
	Steps int `json:"steps"`
	// WarmupSteps is the length of the linear warmup; -1 means 5 % of
	// Steps.
	WarmupSteps int `json:"warmup-steps"`
	// LearningRate is the peak learning rate; 0 means
	// native.BaseLearningRate * BatchSize / 256.
	LearningRate float64 `json:"lr"`
	// Beta1, Beta2 and Epsilon are AdamW's moment decay rates and the term
	// added to the root of the second moment.
	Beta1   float64 `json:"beta1"`
	Beta2   float64 `json:"beta2"`
	Epsilon float64 `json:"adam-epsilon"`
	// WeightDecay is AdamW's decoupled weight decay of kernels and
	// LayerNorm scales.
	WeightDecay float64 `json:"weight-decay"`
	// MaxGradNorm clips the global gradient norm; 0 disables clipping.
	MaxGradNorm float64 `json:"grad-clip"`
	// ImageMaskRatio and TextMaskRatio are the fractions of patches and
	// text positions hidden from the encoder.
	ImageMaskRatio float64 `json:"image-mask-ratio"`
	TextMaskRatio  float64 `json:"text-mask-ratio"`
	// ImageLossWeight and TextLossWeight weigh the two losses in the
	// minimized total.
	ImageLossWeight float64 `json:"image-loss-weight"`
	TextLossWeight  float64 `json:"text-loss-weight"`
	// Seed seeds the initial weights, the masks, the data order and the
	// augmentation.
	Seed uint64 `json:"seed"`
	// Workers is the number of goroutines that decode and augment images;
	// 0 means GOMAXPROCS. It does not change the batches.
	Workers int `json:"workers"`

	// CheckpointEvery saves a checkpoint every this many steps; 0 saves
	// only at the end and on interruption.
	CheckpointEvery int `json:"checkpoint-every"`
	// Keep is the number of newest checkpoints kept; 0 keeps all.
	Keep int `json:"keep"`
	// EvalEvery evaluates on the held-out split and draws the plots every
	// this many steps, and at the end; 0 evaluates only at the end.
	EvalEvery int `json:"eval-every"`
	// LogEvery writes one log line and one metrics record every this many
	// steps, with the means over those steps.
	LogEvery int `json:"log-every"`
	// EvalExamples bounds the number of held-out examples evaluated.
	EvalExamples int `json:"eval-examples"`
	// ReconExamples is the number of held-out examples drawn in each
	// recon-STEP.png.
	ReconExamples int `json:"recon-examples"`
}

// DataOptions selects the training data and the held-out split.
type DataOptions struct {
	// Captions lists captions files (JSONL or CSV, see
	// data.OpenCaptions), read as one paired source with Shards.
	Captions []string `json:"captions"`
	// Shards lists WebDataset tar shards or brace patterns.
	Shards []string `json:"shards"`
	// ImageFolders lists folders of images read as image-only examples.
	ImageFolders []string `json:"image-folder"`
	// TextLines lists text files read one text-only example per line.
	TextLines []string `json:"text-lines"`
	// PairedWeight, ImageOnlyWeight and TextOnlyWeight set each source's
	// share of every batch, relative to the other sources present.
	PairedWeight    float64 `json:"paired-weight"`
	ImageOnlyWeight float64 `json:"image-only-weight"`
	TextOnlyWeight  float64 `json:"text-only-weight"`

	// EvalCaptions is a captions file of held-out examples.
	EvalCaptions string `json:"eval-captions"`
	// EvalFraction holds out this fraction of the paired source instead,
	// chosen by a fixed hash of the example index.
	EvalFraction float64 `json:"eval-fraction"`

	// Augment trains on random resized crops and horizontal flips.
	Augment bool `json:"augment"`
	// CropMinScale is the smallest crop area as a fraction of the image.
	CropMinScale float64 `json:"crop-min-scale"`
	// FlipProb is the probability of a horizontal flip.
	FlipProb float64 `json:"flip-prob"`
	// Norm is "data" to measure the pixel mean and std of the training
	// images at the start of a run, or "cc12m" for the normalization of
	// the official M3AE checkpoints.
	Norm string `json:"norm"`
	// SkipBad skips unreadable lines, samples and images instead of
	// failing.
	SkipBad bool `json:"skip-bad"`
}

// Norm choices of DataOptions.Norm.
const (
	NormData  = "data"
	NormCC12M = "cc12m"
)

// DefaultOptions returns the settings of `m3ae-edge train` without flags:
// the tiny preset, batch 32, 1000 steps, M3AE's optimizer and masking, and
// MAE's augmentation. No data is set.
func DefaultOptions() Options {
	tc := native.DefaultTrainConfig(32)
	return Options{
		Preset: "tiny",
		DataOptions: DataOptions{
			PairedWeight: 1, ImageOnlyWeight: 1, TextOnlyWeight: 1,
			Augment:      true,
			CropMinScale: data.DefaultAugmentation.Scale[0],
			FlipProb:     data.DefaultAugmentation.FlipProb,
			Norm:         NormData,
		},
		BatchSize:       32,
		Steps:           1000,
		WarmupSteps:     -1,
		Beta1:           tc.Beta1,
		Beta2:           tc.Beta2,
		Epsilon:         tc.Epsilon,
		WeightDecay:     tc.WeightDecay,
		MaxGradNorm:     tc.MaxGradNorm,
		ImageMaskRatio:  tc.ImageMaskRatio,
		TextMaskRatio:   tc.TextMaskRatio,
		ImageLossWeight: tc.ImageLossWeight,
		TextLossWeight:  tc.TextLossWeight,
		Seed:            1,
		CheckpointEvery: 200,
		Keep:            3,
		EvalEvery:       200,
		LogEvery:        10,
		EvalExamples:    256,
		ReconExamples:   6,
	}
}

// PeakLearningRate returns LearningRate, or BaseLearningRate*B/256 when it
// is 0.
func (o Options) PeakLearningRate() float64 {
	if o.LearningRate == 0 {
		return native.BaseLearningRate * float64(o.BatchSize) / 256
	}
	return o.LearningRate
}

// Warmup returns WarmupSteps, or 5 % of Steps when it is -1.
func (o Options) Warmup() int {
	if o.WarmupSteps == -1 {
		return o.Steps / 20
	}
	return o.WarmupSteps
}

// TrainConfig returns the trainer settings of o. Per-step logging is left
// to the run.
func (o Options) TrainConfig() native.TrainConfig {
	return native.TrainConfig{
		PeakLearningRate: o.PeakLearningRate(),
		WarmupSteps:      o.Warmup(),
		TotalSteps:       o.Steps,
		Beta1:            o.Beta1,
		Beta2:            o.Beta2,
		Epsilon:          o.Epsilon,
		WeightDecay:      o.WeightDecay,
		MaxGradNorm:      o.MaxGradNorm,
		ImageMaskRatio:   o.ImageMaskRatio,
		TextMaskRatio:    o.TextMaskRatio,
		ImageLossWeight:  o.ImageLossWeight,
		TextLossWeight:   o.TextLossWeight,
		Seed:             o.Seed,
	}
}

// Augmentation returns the training transform that o selects.
func (o DataOptions) Augmentation() data.Augmentation {
	aug := data.DefaultAugmentation
	aug.Scale[0] = o.CropMinScale
	aug.FlipProb = o.FlipProb
	return aug
}

// Validate reports the first option that cannot start a run, naming its
// flag.
func (o Options) Validate() error {
	cfg, err := core.Preset(o.Preset)
	if err != nil {
		return fmt.Errorf("--preset: %w", err)
	}
	if err := o.DataOptions.validate(); err != nil {
		return err
	}
	// Every float must be finite: run.json and each checkpoint's
	// run-state.json store the options as JSON, which has no NaN or
	// infinity.
	for _, f := range []struct {
		flag  string
		value float64
	}{
		{"--lr", o.LearningRate}, {"--beta1", o.Beta1}, {"--beta2", o.Beta2}, {"--adam-epsilon", o.Epsilon},
		{"--weight-decay", o.WeightDecay}, {"--grad-clip", o.MaxGradNorm},
		{"--image-mask-ratio", o.ImageMaskRatio}, {"--text-mask-ratio", o.TextMaskRatio},
		{"--image-loss-weight", o.ImageLossWeight}, {"--text-loss-weight", o.TextLossWeight},
		{"--paired-weight", o.PairedWeight}, {"--image-only-weight", o.ImageOnlyWeight}, {"--text-only-weight", o.TextOnlyWeight},
		{"--eval-fraction", o.EvalFraction}, {"--crop-min-scale", o.CropMinScale}, {"--flip-prob", o.FlipProb},
	} {
		if math.IsNaN(f.value) || math.IsInf(f.value, 0) {
			return fmt.Errorf("%s %g: want a finite number", f.flag, f.value)
		}
	}
	switch {
	case o.BatchSize < 1 || o.BatchSize > MaxBatchSize:
		return fmt.Errorf("--batch %d: want 1 to %d", o.BatchSize, MaxBatchSize)
	case o.Steps < 1:
		return fmt.Errorf("--steps %d: want at least 1", o.Steps)
	case o.WarmupSteps < -1:
		return fmt.Errorf("--warmup-steps %d: want -1 (5%% of --steps) or a count >= 0", o.WarmupSteps)
	case o.LearningRate < 0 || math.IsNaN(o.LearningRate) || math.IsInf(o.LearningRate, 0):
		return fmt.Errorf("--lr %g: want a positive number, or 0 for 1.5e-4 x batch/256", o.LearningRate)
	case o.Workers < 0:
		return fmt.Errorf("--workers %d: want 0 (one per CPU) or more", o.Workers)
	case o.CheckpointEvery < 0 || o.Keep < 0 || o.EvalEvery < 0:
		return fmt.Errorf("--checkpoint-every %d, --keep %d and --eval-every %d must not be negative",
			o.CheckpointEvery, o.Keep, o.EvalEvery)
	case o.LogEvery < 1:
		return fmt.Errorf("--log-every %d: want at least 1", o.LogEvery)
	case o.EvalExamples < 1 || o.ReconExamples < 0:
		return fmt.Errorf("--eval-examples %d and --recon-examples %d: want at least 1 and at least 0", o.EvalExamples, o.ReconExamples)
	}
	if err := o.validateOptimizer(); err != nil {
		return err
	}
	if err := o.validateMasking(cfg); err != nil {
		return err
	}
	if err := o.TrainConfig().Validate(cfg); err != nil {
		return err
	}
	return nil
}

// validateOptimizer checks the AdamW settings and the loss weights with the
// same bounds as native.TrainConfig.Validate, and also rejects two zero
// loss weights, which leave nothing to minimize.
func (o Options) validateOptimizer() error {
	for _, beta := range []struct {
		flag  string
		value float64
	}{{"--beta1", o.Beta1}, {"--beta2", o.Beta2}} {
		if !(beta.value >= 0 && beta.value < 1) {
			return fmt.Errorf("%s %g: want 0 up to but not including 1", beta.flag, beta.value)
		}
	}
	if !(o.Epsilon > 0) {
		return fmt.Errorf("--adam-epsilon %g: want a positive number", o.Epsilon)
	}
	if !(o.WeightDecay >= 0) {
		return fmt.Errorf("--weight-decay %g: want 0 (no decay) or more", o.WeightDecay)
	}
	if !(o.MaxGradNorm >= 0) {
		return fmt.Errorf("--grad-clip %g: want 0 (no clipping) or more", o.MaxGradNorm)
	}
	for _, weight := range []struct {
		flag  string
		value float64
	}{{"--image-loss-weight", o.ImageLossWeight}, {"--text-loss-weight", o.TextLossWeight}} {
		if !(weight.value >= 0) {
			return fmt.Errorf("%s %g: want 0 or more", weight.flag, weight.value)
		}
	}
	if o.ImageLossWeight == 0 && o.TextLossWeight == 0 {
		return fmt.Errorf("--image-loss-weight and --text-loss-weight are both 0: want at least one positive")
	}
	return nil
}

// validateMasking checks each mask ratio with the bounds of
// native.TrainConfig.Validate. A ratio must be in [0, 1) and leave at least
// one of the preset's positions visible, counted as int(length*(1-ratio)).
func (o Options) validateMasking(cfg core.Config) error {
	for _, r := range []struct {
		flag   string
		ratio  float64
		length int
		unit   string
	}{
		{"--image-mask-ratio", o.ImageMaskRatio, cfg.NumPatches(), "image patches"},
		{"--text-mask-ratio", o.TextMaskRatio, cfg.TextLength, "text positions"},
	} {
		if !(r.ratio >= 0 && r.ratio < 1) {
			return fmt.Errorf("%s %g: want 0 up to but not including 1", r.flag, r.ratio)
		}
		if int(float64(r.length)*(1-r.ratio)) < 1 {
			return fmt.Errorf("%s %g hides all %d %s of preset %q: want a lower ratio that keeps at least one visible",
				r.flag, r.ratio, r.length, r.unit, o.Preset)
		}
	}
	return nil
}

func (o DataOptions) validate() error {
	if len(o.Captions)+len(o.Shards)+len(o.ImageFolders)+len(o.TextLines) == 0 {
		return fmt.Errorf("no training data: pass --captions, --shards, --image-folder or --text-lines")
	}
	for _, w := range []struct {
		flag  string
		value float64
	}{{"--paired-weight", o.PairedWeight}, {"--image-only-weight", o.ImageOnlyWeight}, {"--text-only-weight", o.TextOnlyWeight}} {
		if !(w.value > 0) || math.IsInf(w.value, 0) {
			return fmt.Errorf("%s %g: want a positive number", w.flag, w.value)
		}
	}
	if !(o.EvalFraction >= 0 && o.EvalFraction < 1) {
		return fmt.Errorf("--eval-fraction %g: want 0 (none) up to but not including 1", o.EvalFraction)
	}
	if o.EvalFraction > 0 && o.EvalCaptions != "" {
		return fmt.Errorf("--eval-captions and --eval-fraction both set: hold out examples one way only")
	}
	if o.EvalFraction > 0 && len(o.Captions)+len(o.Shards) == 0 {
		return fmt.Errorf("--eval-fraction %g needs paired data to split: pass --captions or --shards, or use --eval-captions", o.EvalFraction)
	}
	if o.Augment {
		if err := o.Augmentation().Validate(); err != nil {
			return fmt.Errorf("--crop-min-scale %g, --flip-prob %g: %w", o.CropMinScale, o.FlipProb, err)
		}
	}
	if o.Norm != NormData && o.Norm != NormCC12M {
		return fmt.Errorf("--norm %q: use %q (measure the training images) or %q", o.Norm, NormData, NormCC12M)
	}
	for _, path := range o.Captions {
		if err := checkCaptionsFile("--captions", path); err != nil {
			return err
		}
	}
	if o.EvalCaptions != "" {
		if err := checkCaptionsFile("--eval-captions", o.EvalCaptions); err != nil {
			return err
		}
	}
	return nil
}

// checkCaptionsFile reports a captions path that is missing or a folder
// before data.OpenCaptions judges its name, whose message about an unknown
// format would hide that the file is not there.
func checkCaptionsFile(flag, path string) error {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s: file not found", flag, path)
	case err != nil:
		return fmt.Errorf("%s %s: %w", flag, path, err)
	case info.IsDir():
		return fmt.Errorf("%s %s is a folder: want a .jsonl or .csv captions file", flag, path)
	}
	return nil
}

// withAbsolutePaths returns o with every data path made absolute, so a
// resumed run finds its data from any working folder.
func (o DataOptions) withAbsolutePaths() (DataOptions, error) {
	absAll := func(paths []string) ([]string, error) {
		if len(paths) == 0 {
			return nil, nil // an empty list and none encode alike
		}
		out := make([]string, len(paths))
		for i, p := range paths {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, fmt.Errorf("data path %q: %w", p, err)
			}
			out[i] = abs
		}
		return out, nil
	}
	var err error
	for _, list := range []*[]string{&o.Captions, &o.Shards, &o.ImageFolders, &o.TextLines} {
		if *list, err = absAll(*list); err != nil {
			return o, err
		}
	}
	if o.EvalCaptions != "" {
		if o.EvalCaptions, err = filepath.Abs(o.EvalCaptions); err != nil {
			return o, fmt.Errorf("--eval-captions %q: %w", o.EvalCaptions, err)
		}
	}
	return o, nil
}

// identityOptions are the options that decide which run a checkpoint
// belongs to: the architecture, the batch, the seed and every data
// setting. A resumed run must keep them to continue the same stream.
var identityOptions = []string{
	"preset", "batch", "seed",
	"captions", "shards", "image-folder", "text-lines",
	"paired-weight", "image-only-weight", "text-only-weight",
	"eval-captions", "eval-fraction",
	"augment", "crop-min-scale", "flip-prob", "norm", "skip-bad",
}

// OptionChange is one option whose value differs between a saved run and
// the options it is resumed with, or one field that DiffJSONFields found.
type OptionChange struct {
	// Flag is the field's JSON name. For Options it is the train command's
	// flag.
	Flag string
	// Saved and Requested are the two values, JSON-encoded.
	Saved, Requested string
}

// compareOptions returns the identity options that differ between saved
// and requested, which forbid the resume, and the other options that
// differ, which a resumed run may change.
func compareOptions(saved, requested Options) (conflicts, changes []OptionChange) {
	for _, change := range DiffJSONFields(saved, requested) {
		if slices.Contains(identityOptions, change.Flag) {
			conflicts = append(conflicts, change)
		} else {
			changes = append(changes, change)
		}
	}
	return conflicts, changes
}

// DiffJSONFields compares the JSON objects of saved and requested field by
// field and returns the fields of saved whose value differs in requested,
// sorted by JSON name. It panics when either value does not encode to a
// JSON object, so callers validate first because NaN and infinities do
// not encode.
func DiffJSONFields(saved, requested any) []OptionChange {
	savedFields, requestedFields := jsonFields(saved), jsonFields(requested)
	keys := make([]string, 0, len(savedFields))
	for key := range savedFields {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	var changes []OptionChange
	for _, key := range keys {
		a, b := savedFields[key], requestedFields[key]
		if reflect.DeepEqual(a, b) {
			continue
		}
		changes = append(changes, OptionChange{Flag: key, Saved: encodeValue(a), Requested: encodeValue(b)})
	}
	return changes
}

// jsonFields returns v's JSON object as a map from field name to decoded
// value.
func jsonFields(v any) map[string]any {
	encoded, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("trainrun: %T does not encode: %v", v, err))
	}
	var fields map[string]any
	if err := json.Unmarshal(encoded, &fields); err != nil {
		panic(fmt.Sprintf("trainrun: %T does not decode as a JSON object: %v", v, err))
	}
	return fields
}

func encodeValue(v any) string {
	encoded, _ := json.Marshal(v)
	return string(encoded)
}

// conflictError returns the error that rejects a resume with conflicts.
func conflictError(conflicts []OptionChange) error {
	parts := make([]string, len(conflicts))
	for i, c := range conflicts {
		parts[i] = fmt.Sprintf("--%s is %s but the run was started with %s", c.Flag, c.Requested, c.Saved)
	}
	return fmt.Errorf("cannot resume: %s; a resumed run keeps its preset, batch, seed and data, so drop these flags or start a new run with another --out",
		strings.Join(parts, "; "))
}
