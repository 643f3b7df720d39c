package quantize

import (
	"fmt"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Targets are the thresholds that an int8 model should meet against its
// float32 original.
type Targets struct {
	// MaxSizeRatio bounds the int8 file's size over the float32 file's.
	MaxSizeRatio float64
	// MinCosineMean and MinCosineWorst bound the mean and the smallest
	// cosine similarity of the embeddings, for each input kind.
	MinCosineMean, MinCosineWorst float64
	// MaxPSNRDiffDB bounds the difference of the mean reconstruction PSNRs.
	MaxPSNRDiffDB float64
	// MinTop1Agreement bounds the fraction of hidden tokens whose top-1
	// prediction is the same.
	MinTop1Agreement float64
}

// DefaultTargets returns the release targets. The file is at most 27 % of
// the float32 size, and embedding cosine similarity is at least 0.999 on
// average and 0.99 at worst. Reconstruction PSNR is within 0.1 dB, and the
// top-1 token is the same at 99 % of the hidden positions.
func DefaultTargets() Targets {
	return Targets{
		MaxSizeRatio:     0.27,
		MinCosineMean:    0.999,
		MinCosineWorst:   0.99,
		MaxPSNRDiffDB:    0.1,
		MinTop1Agreement: 0.99,
	}
}

// Sizes compares the two files.
type Sizes struct {
	Float32Bytes int64 `json:"float32_bytes"`
	Int8Bytes    int64 `json:"int8_bytes"`
	// Ratio is Int8Bytes / Float32Bytes.
	Ratio float64 `json:"ratio"`
}

// NewSizes returns the sizes and their ratio.
func NewSizes(float32Bytes, int8Bytes int64) Sizes {
	s := Sizes{Float32Bytes: float32Bytes, Int8Bytes: int8Bytes}
	if float32Bytes > 0 {
		s.Ratio = float64(int8Bytes) / float64(float32Bytes)
	}
	return s
}

// Target statuses.
const (
	StatusPass        = "pass"
	StatusFail        = "fail"
	StatusNotMeasured = "not measured"
)

// TargetResult is one target checked against the measured value.
type TargetResult struct {
	Name string `json:"name"`
	// Value is the measured value, or nil when the report has no
	// measurement of it, such as the fidelity targets without a sample
	// set.
	Value  *float64 `json:"value"`
	Want   string   `json:"want"`
	Status string   `json:"status"`
}

// Report is everything that the quantize command writes as JSON.
type Report struct {
	Quantization string        `json:"quantization"`
	Sizes        Sizes         `json:"sizes"`
	Tensors      []TensorError `json:"tensors"`
	// Fidelity is nil when no sample set was given.
	Fidelity *FidelityReport `json:"fidelity"`
	Targets  []TargetResult  `json:"targets"`
	// TargetsMet is true when every target passed, false when one failed
	// or was not measured.
	TargetsMet bool `json:"all_targets_met"`
	// Summary is one line that counts the targets passed, failed and not
	// measured, and names the ones that failed.
	Summary string `json:"summary"`
}

// NewReport assembles a report and checks it against targets. fidelity
// may be nil.
func NewReport(sizes Sizes, tensors *TensorReport, fidelity *FidelityReport, targets Targets) *Report {
	r := &Report{Quantization: core.QuantizationInt8, Sizes: sizes, Fidelity: fidelity}
	if tensors != nil {
		r.Tensors = tensors.Tensors
	}
	r.Targets = checkTargets(sizes, fidelity, targets)
	r.TargetsMet, r.Summary = summarize(r.Targets)
	return r
}

func checkTargets(sizes Sizes, f *FidelityReport, targets Targets) []TargetResult {
	atMost := func(name string, value, limit float64, measured bool) TargetResult {
		return newTarget(name, value, measured, fmt.Sprintf("<= %g", limit), value <= limit)
	}
	atLeast := func(name string, value, limit float64, measured bool) TargetResult {
		return newTarget(name, value, measured, fmt.Sprintf(">= %g", limit), value >= limit)
	}
	results := []TargetResult{atMost("file size ratio", sizes.Ratio, targets.MaxSizeRatio, sizes.Float32Bytes > 0)}
	if f == nil {
		f = &FidelityReport{}
	}
	kinds := []struct {
		name  string
		stats CosineStats
	}{
		{"image", f.ImageEmbedding},
		{"text", f.TextEmbedding},
		{"paired", f.PairedEmbedding},
	}
	for _, kind := range kinds {
		measured := kind.stats.Count > 0
		results = append(results,
			atLeast(kind.name+" embedding cosine mean", kind.stats.Mean, targets.MinCosineMean, measured),
			atLeast(kind.name+" embedding cosine worst", kind.stats.Worst, targets.MinCosineWorst, measured))
	}
	results = append(results,
		atMost("reconstruction PSNR difference (dB)", f.Reconstruction.DiffDB, targets.MaxPSNRDiffDB, f.Reconstruction.Count > 0),
		atLeast("masked token top-1 agreement", f.TokenTop1.Rate, targets.MinTop1Agreement, f.TokenTop1.Total > 0))
	return results
}

func newTarget(name string, value float64, measured bool, want string, pass bool) TargetResult {
	t := TargetResult{Name: name, Want: want, Status: StatusNotMeasured}
	if !measured {
		return t
	}
	t.Value = &value
	t.Status = StatusFail
	if pass {
		t.Status = StatusPass
	}
	return t
}

func summarize(results []TargetResult) (met bool, summary string) {
	var passed, notMeasured int
	var failed []string
	for _, t := range results {
		switch t.Status {
		case StatusPass:
			passed++
		case StatusFail:
			failed = append(failed, t.Name)
		default:
			notMeasured++
		}
	}
	summary = fmt.Sprintf("%d of %d targets met", passed, len(results))
	if len(failed) > 0 {
		summary += fmt.Sprintf(", %d missed (%s)", len(failed), strings.Join(failed, ", "))
	}
	if notMeasured > 0 {
		summary += fmt.Sprintf(", %d not measured for lack of samples", notMeasured)
	}
	return passed == len(results), summary
}
