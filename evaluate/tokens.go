package evaluate

import (
	"cmp"
	"slices"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// TokenFrequencies counts the token ids of a set of captions.
type TokenFrequencies struct {
	// Captions is the number of captions counted and Tokens the number of
	// ids counted.
	Captions, Tokens int
	// Counts maps each id that occurred to its number of occurrences.
	Counts map[int32]int
}

// CountTokens tokenizes every caption into the ids the model receives, the
// first textLength WordPiece ids, and counts them. Pads are not counted.
func CountTokens(tokenizer *core.Tokenizer, textLength int, captions []string) *TokenFrequencies {
	f := &TokenFrequencies{Counts: map[int32]int{}}
	ids := make([]int32, textLength)
	for _, caption := range captions {
		n := tokenizer.EncodeInto(ids, caption)
		for _, id := range ids[:n] {
			f.Counts[id]++
		}
		f.Tokens += n
		f.Captions++
	}
	return f
}

// MostFrequent returns the k most frequent ids, most frequent first and
// equal counts by lower id, or fewer when fewer ids occurred.
func (f *TokenFrequencies) MostFrequent(k int) []int32 {
	ids := make([]int32, 0, len(f.Counts))
	for id := range f.Counts {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b int32) int {
		return cmp.Or(cmp.Compare(f.Counts[b], f.Counts[a]), cmp.Compare(a, b))
	})
	return ids[:min(k, len(ids))]
}

func (f *TokenFrequencies) baselineReport(tokenizer *core.Tokenizer) *BaselineReport {
	r := &BaselineReport{Captions: f.Captions, Tokens: f.Tokens, Top: []string{}}
	for _, id := range f.MostFrequent(TopK) {
		r.Top = append(r.Top, tokenizer.Token(id))
	}
	return r
}

// tokenTotals accumulates the token figures of one pass over examples.
type tokenTotals struct {
	examples, tokens int
	model, baseline  topKCounts
}

// topKCounts counts the scored tokens found at rank 1 and within the top
// TopK.
type topKCounts struct {
	top1, topK int
}

// add scores the hidden non-pad positions of rec. baseline lists the
// baseline's predictions, most frequent first, and may be nil.
func (t *tokenTotals) add(rec *core.Reconstruction, baseline []int32) {
	predictions := rec.HiddenTokenTopK(TopK)
	for _, prediction := range predictions {
		ids := make([]int32, len(prediction.Candidates))
		for i, candidate := range prediction.Candidates {
			ids[i] = candidate.ID
		}
		t.model.add(ids, prediction.Original)
		t.baseline.add(baseline, prediction.Original)
	}
	t.tokens += len(predictions)
	if len(predictions) > 0 {
		t.examples++
	}
}

// add counts want against ranked, the predictions best first.
func (c *topKCounts) add(ranked []int32, want int32) {
	rank := slices.Index(ranked, want)
	if rank == 0 {
		c.top1++
	}
	if rank >= 0 && rank < TopK {
		c.topK++
	}
}

func (c topKCounts) accuracy(tokens int) Accuracy {
	return Accuracy{
		Top1:        float64(c.top1) / float64(tokens),
		Top5:        float64(c.topK) / float64(tokens),
		Top1Correct: c.top1,
		Top5Correct: c.topK,
	}
}

func (t *tokenTotals) report(imageRatio, textRatio float64, withBaseline bool) *TokenReport {
	if t.tokens == 0 {
		return nil
	}
	r := &TokenReport{
		ImageMaskRatio: imageRatio,
		TextMaskRatio:  textRatio,
		Examples:       t.examples,
		Tokens:         t.tokens,
		Model:          t.model.accuracy(t.tokens),
	}
	if withBaseline {
		baseline := t.baseline.accuracy(t.tokens)
		r.Baseline = &baseline
	}
	return r
}
