package main

import (
	"strings"
	"testing"
)

func TestCountNoun(t *testing.T) {
	tests := []struct {
		n    int
		noun string
		want string
	}{
		{0, "token", "0 tokens"},
		{1, "token", "1 token"},
		{2, "token", "2 tokens"},
		{1, "patch", "1 patch"},
		{16, "patch", "16 patches"},
		{1, "class", "1 class"},
		{3, "class", "3 classes"},
		{1, "L-BFGS iteration", "1 L-BFGS iteration"},
		{-1, "step", "-1 steps"},
	}
	for _, tt := range tests {
		if got := countNoun(tt.n, tt.noun); got != tt.want {
			t.Errorf("countNoun(%d, %q) = %q, want %q", tt.n, tt.noun, got, tt.want)
		}
	}
	if got := countNoun(int64(1), "byte"); got != "1 byte" {
		t.Errorf("countNoun(int64(1), \"byte\") = %q, want \"1 byte\"", got)
	}
}

// TestReconstructPrintsSingular runs reconstruct on a one-word caption,
// which printed "0 of 1 tokens hidden".
func TestReconstructPrintsSingular(t *testing.T) {
	model := writeMicroModel(t, t.TempDir())
	stdout, stderr, err := execute(t, "reconstruct", "--model", model, "--text", "cat", "--text-mask-ratio", "0")
	if err != nil {
		t.Fatalf("m3ae-edge reconstruct --text cat: %v\nstderr:\n%s", err, stderr)
	}
	if want := "0 of 1 token hidden\n"; !strings.HasSuffix(stdout, want) {
		t.Errorf("m3ae-edge reconstruct --text cat output = %q, want it to end with %q", stdout, want)
	}
}
