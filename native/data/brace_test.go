package data

import (
	"slices"
	"strings"
	"testing"
)

func TestExpandBraces(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string
	}{
		{"shard.tar", []string{"shard.tar"}},
		{"shards/{00000..00003}.tar", []string{"shards/00000.tar", "shards/00001.tar", "shards/00002.tar", "shards/00003.tar"}},
		{"{8..11}", []string{"8", "9", "10", "11"}},
		{"{08..10}", []string{"08", "09", "10"}},
		{"{8..010}", []string{"008", "009", "010"}},
		{"{3..1}", []string{"3", "2", "1"}},
		{"{0..10..5}", []string{"0", "5", "10"}},
		{"{10..0..5}", []string{"10", "5", "0"}},
		{"{7..7}", []string{"7"}},
		{"{a,b,c}.tar", []string{"a.tar", "b.tar", "c.tar"}},
		{"{a,}x", []string{"ax", "x"}},
		{"{train,val}-{0..1}.tar", []string{"train-0.tar", "train-1.tar", "val-0.tar", "val-1.tar"}},
		{"{a,b{1..2}}", []string{"a", "b1", "b2"}},
		{"x{a,b}y{c,d}z", []string{"xaycz", "xaydz", "xbycz", "xbydz"}},
	}
	for _, tt := range tests {
		got, err := ExpandBraces(tt.pattern)
		if err != nil {
			t.Errorf("ExpandBraces(%q) error: %v", tt.pattern, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ExpandBraces(%q) = %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

func TestExpandBracesErrors(t *testing.T) {
	tests := []struct {
		pattern, wantInError string
	}{
		{"shards/{0..3.tar", "unmatched {"},
		{"shards/0..3}.tar", "unmatched }"},
		{"{abc}", "neither a comma list nor a numeric range"},
		{"{a..z}", "neither a comma list nor a numeric range"},
		{"{0..9..0}", "step"},
		{"{0..99999999}", "over the limit"},
		{"{0..999}{0..999}{0..9}", "more than"},
	}
	for _, tt := range tests {
		got, err := ExpandBraces(tt.pattern)
		if err == nil {
			t.Errorf("ExpandBraces(%q) = %d strings, want an error containing %q", tt.pattern, len(got), tt.wantInError)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantInError) || !strings.Contains(err.Error(), tt.pattern) {
			t.Errorf("ExpandBraces(%q) error = %q, want it to name the pattern and contain %q", tt.pattern, err, tt.wantInError)
		}
	}
}
