package quantize

import (
	"strings"
	"testing"
)

func TestNewReportTargets(t *testing.T) {
	passing := &FidelityReport{
		ImageEmbedding:  CosineStats{Count: 2, Mean: 0.9999, Worst: 0.999},
		TextEmbedding:   CosineStats{Count: 2, Mean: 0.9995, Worst: 0.995},
		PairedEmbedding: CosineStats{Count: 2, Mean: 0.9999, Worst: 0.999},
		Reconstruction:  PSNRStats{Count: 2, DiffDB: 0.05},
		TokenTop1:       AgreementStats{Agree: 99, Total: 100, Rate: 0.99},
	}
	failing := *passing
	failing.TextEmbedding.Worst = 0.98
	failing.TokenTop1 = AgreementStats{Agree: 97, Total: 100, Rate: 0.97}

	tests := []struct {
		name     string
		sizes    Sizes
		fidelity *FidelityReport
		met      bool
		statuses map[string]string
		summary  string
	}{
		{
			name: "all met", sizes: NewSizes(1000, 260), fidelity: passing, met: true,
			statuses: map[string]string{"file size ratio": StatusPass, "masked token top-1 agreement": StatusPass},
			summary:  "9 of 9 targets met",
		},
		{
			name: "two missed", sizes: NewSizes(1000, 280), fidelity: &failing, met: false,
			statuses: map[string]string{
				"file size ratio":            StatusFail,
				"text embedding cosine mean": StatusPass, "text embedding cosine worst": StatusFail,
				"masked token top-1 agreement": StatusFail,
			},
			summary: "6 of 9 targets met, 3 missed (file size ratio, text embedding cosine worst, masked token top-1 agreement)",
		},
		{
			name: "no sample set", sizes: NewSizes(1000, 260), fidelity: nil, met: false,
			statuses: map[string]string{"file size ratio": StatusPass, "image embedding cosine mean": StatusNotMeasured},
			summary:  "1 of 9 targets met, 8 not measured for lack of samples",
		},
	}
	for _, tt := range tests {
		r := NewReport(tt.sizes, &TensorReport{}, tt.fidelity, DefaultTargets())
		if r.TargetsMet != tt.met {
			t.Errorf("NewReport(%s).TargetsMet = %v, want %v", tt.name, r.TargetsMet, tt.met)
		}
		if r.Summary != tt.summary {
			t.Errorf("NewReport(%s).Summary = %q, want %q", tt.name, r.Summary, tt.summary)
		}
		for _, target := range r.Targets {
			want, ok := tt.statuses[target.Name]
			if ok && target.Status != want {
				t.Errorf("NewReport(%s) target %q = %s (value %v), want %s", tt.name, target.Name, target.Status, target.Value, want)
			}
			if (target.Value == nil) != (target.Status == StatusNotMeasured) {
				t.Errorf("NewReport(%s) target %q has value %v and status %s, want a value exactly when measured",
					tt.name, target.Name, target.Value, target.Status)
			}
			if !strings.HasPrefix(target.Want, "<= ") && !strings.HasPrefix(target.Want, ">= ") {
				t.Errorf("NewReport(%s) target %q want = %q, want a bound", tt.name, target.Name, target.Want)
			}
		}
	}
}

func TestNewSizes(t *testing.T) {
	if s := NewSizes(400, 100); s.Ratio != 0.25 {
		t.Errorf("NewSizes(400, 100).Ratio = %v, want 0.25", s.Ratio)
	}
	if s := NewSizes(0, 100); s.Ratio != 0 {
		t.Errorf("NewSizes(0, 100).Ratio = %v, want 0", s.Ratio)
	}
}
