package core

import (
	"slices"
	"testing"
)

// maxFuzzLen bounds the maxLen the fuzzer tries, well above any model's
// text length, so the fuzzer spends its time on text rather than padding.
const maxFuzzLen = 300

// FuzzTokenizer checks Encode on any text and maxLen. It must not panic
// and must return exactly maxLen ids inside [0, V), the same ids on a
// second call, and no pad before a non-pad id. Its ids must equal
// EncodeNoPad's cut to maxLen, and EncodeInto must give the same row. The
// seeds are the golden corpus plus invalid UTF-8.
//
// Run it with: go test ./core -run '^$' -fuzz FuzzTokenizer -fuzztime 30s
func FuzzTokenizer(f *testing.F) {
	tok := newBertTokenizer(f)
	golden, _ := loadGolden(f)
	for i, c := range golden {
		f.Add(c.Text, uint16(i%70))
	}
	for _, text := range []string{"caf\xc3", "\xff\xfe", "a\xed\xa0\x80b", "\x00\x00", "é\u0301\u0301"} {
		f.Add(text, uint16(8))
	}
	f.Fuzz(func(t *testing.T, text string, rawLen uint16) {
		maxLen := int(rawLen % (maxFuzzLen + 1))
		ids := tok.Encode(text, maxLen)
		if len(ids) != maxLen {
			t.Fatalf("len(Encode(%q, %d)) = %d, want %d", text, maxLen, len(ids), maxLen)
		}
		for i, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("Encode(%q, %d)[%d] = %d, want an id in [0, %d)", text, maxLen, i, id, tok.VocabSize())
			}
		}
		numTokens := NumTokens(ids)
		if i := slices.Index(ids, PadID); i >= 0 && i < numTokens {
			t.Fatalf("Encode(%q, %d) = %v has a pad at %d before a non-pad id", text, maxLen, ids, i)
		}
		if again := tok.Encode(text, maxLen); !slices.Equal(again, ids) {
			t.Fatalf("Encode(%q, %d) = %v, then %v on a second call", text, maxLen, ids, again)
		}
		all := tok.EncodeNoPad(text)
		want := make([]int32, maxLen)
		copy(want, all)
		if !slices.Equal(ids, want) {
			t.Fatalf("Encode(%q, %d) = %v, want EncodeNoPad cut and padded to %d: %v", text, maxLen, ids, maxLen, want)
		}
		row := make([]int32, maxLen)
		for i := range row {
			row[i] = -1
		}
		if n := tok.EncodeInto(row, text); n != numTokens || !slices.Equal(row, ids) {
			t.Fatalf("EncodeInto(row[%d], %q) = %d, row %v, want %d, row %v", maxLen, text, n, row, numTokens, ids)
		}
	})
}
