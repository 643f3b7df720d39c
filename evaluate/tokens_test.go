package evaluate

import (
	"slices"
	"testing"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
)

func TestMostFrequentTies(t *testing.T) {
	f := &TokenFrequencies{Counts: map[int32]int{7: 2, 3: 5, 9: 2, 4: 1, 2: 2}}
	if got, want := f.MostFrequent(4), []int32{3, 2, 7, 9}; !slices.Equal(got, want) {
		t.Errorf("MostFrequent(4) = %v, want %v (equal counts by lower id)", got, want)
	}
	if got := f.MostFrequent(10); len(got) != 5 {
		t.Errorf("MostFrequent(10) returned %d ids, want the 5 that occurred", len(got))
	}
}

func TestCountTokensTruncates(t *testing.T) {
	tokenizer, err := core.NewTokenizer(bertvocab.Tokens())
	if err != nil {
		t.Fatal(err)
	}
	// With room for 2 tokens, "pie" of the first caption is not counted.
	f := CountTokens(tokenizer, 2, []string{"apple apple pie", "", "pie"})
	apple, _ := tokenizer.ID("apple")
	pie, _ := tokenizer.ID("pie")
	if f.Captions != 3 || f.Tokens != 3 || f.Counts[apple] != 2 || f.Counts[pie] != 1 {
		t.Errorf("frequencies = %+v, want 3 captions, 3 tokens: apple 2, pie 1", f)
	}
}
