package core

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

//go:generate /usr/bin/python3 internal/gen/unicodetables/gen.py unicode_tables.go
//go:generate go run ./internal/gen/gounicode unicode_go_tables.go

// Special tokens and limits of the BERT WordPiece tokenizer.
const (
	// PadID is the id of PadToken. Encode pads with it, and the model masks
	// it out as an attention key.
	PadID int32 = 0
	// PadToken is the padding token, which NewTokenizer requires at id 0.
	PadToken = "[PAD]"
	// UnkToken replaces a word that WordPiece cannot split into vocabulary
	// tokens.
	UnkToken = "[UNK]"
	// ContinuationPrefix marks a token that continues a word, as in
	// "straw" "##berries".
	ContinuationPrefix = "##"
	// MaxWordRunes is the longest word, in runes after normalization, that
	// WordPiece splits. A longer word becomes one UnkToken, as in BERT.
	MaxWordRunes = 100
	// MaxInputBytes is how much of a text the tokenizer reads. Text after
	// the first MaxInputBytes bytes (cut back to a rune boundary) is
	// ignored, not rejected. Every word or punctuation mark takes at least
	// one byte and gives at least one id. So 64 KiB of ordinary text gives
	// far more ids than any text length a model uses (64 in the official
	// presets), and the limit only bounds the work that a huge input can
	// cause. A text whose first 64 KiB are all whitespace or dropped
	// characters gives no ids even when words follow.
	MaxInputBytes = 64 << 10
)

// ErrInvalidVocab marks a WordPiece vocabulary that NewTokenizer cannot use.
var ErrInvalidVocab = errors.New("invalid vocabulary")

// Tokenizer converts text to BERT uncased WordPiece ids. It reproduces the
// Hugging Face tokenizers pipeline for bert-base-uncased (BertNormalizer,
// BertPreTokenizer, WordPiece) without special tokens:
//
//  1. Clean: drop U+0000, U+FFFD (so also invalid UTF-8) and characters of
//     category Cc, Cf and Co other than tab, newline and carriage return.
//     Map every White_Space character to a space.
//  2. Put spaces around CJK ideographs, so each becomes its own word.
//  3. Strip accents: decompose to NFD and drop nonspacing marks (Mn).
//     Hangul syllables decompose into jamo, which are letters and stay.
//  4. Lowercase each character.
//  5. Split on spaces and isolate each punctuation character: ASCII
//     33-47, 58-64, 91-96 and 123-126, and Unicode category P.
//  6. Split each word greedily into the longest vocabulary tokens,
//     ContinuationPrefix marking all but the first. A word that cannot be
//     split, or that is longer than MaxWordRunes, becomes UnkToken.
//
// Where the Python BertTokenizer of transformers differs, this follows
// tokenizers: the CJK ranges include U+2B920-U+2CEAF but not
// U+2B820-U+2B91F, and a final capital sigma lowercases to σ (Python's
// str.lower gives ς). Unassigned code points are kept. Text such as
// "[MASK]" is ordinary text here ("[", "mask", "]"), so a caption cannot
// inject special tokens.
//
// Categories and case mappings come from unicode_go_tables.go, a copy of
// the unicode package of Go 1.26 (Unicode 15.0.0) that keeps the words the
// same whichever toolchain builds core (Go 1.27's unicode package is
// newer), and decompositions from unicode_tables.go (Unicode 14.0.0).
// tokenizers 0.23.2 uses other Unicode tables, so 624 rarely used code
// points give other words there. testdata/tokenizer/skew.txt lists them,
// and a test compares every other code point. A Tokenizer is immutable
// and safe for concurrent use.
type Tokenizer struct {
	// tokens maps an id to its token.
	tokens []string
	// ids maps every token to its id.
	ids map[string]int32
	// continuations maps each token that starts with ContinuationPrefix,
	// with the prefix removed, to its id.
	continuations map[string]int32
	// maxTokenBytes and maxContinuationBytes are the lengths of the longest
	// keys of ids and continuations, so WordPiece tries no longer substring.
	maxTokenBytes        int
	maxContinuationBytes int
	unkID                int32
}

// NewTokenizer returns a tokenizer for vocab, where vocab[id] is the token
// of id. The vocabulary must have PadToken at id 0, contain UnkToken, and
// hold no empty or duplicate tokens. NewTokenizer copies vocab.
func NewTokenizer(vocab []string) (*Tokenizer, error) {
	if len(vocab) == 0 {
		return nil, fmt.Errorf("%w: no tokens, want one token per id (bert-base-uncased has 30522)", ErrInvalidVocab)
	}
	if len(vocab) > math.MaxInt32 {
		return nil, fmt.Errorf("%w: %d tokens do not fit int32 ids", ErrInvalidVocab, len(vocab))
	}
	if vocab[0] != PadToken {
		return nil, fmt.Errorf("%w: token 0 is %q, want %q because id 0 pads every text", ErrInvalidVocab, vocab[0], PadToken)
	}
	t := &Tokenizer{
		tokens:        slices.Clone(vocab),
		ids:           make(map[string]int32, len(vocab)),
		continuations: make(map[string]int32),
		unkID:         -1,
	}
	for i, token := range t.tokens {
		id := int32(i)
		if token == "" {
			return nil, fmt.Errorf("%w: token %d is empty", ErrInvalidVocab, id)
		}
		if first, ok := t.ids[token]; ok {
			return nil, fmt.Errorf("%w: token %q appears at ids %d and %d, want each token once", ErrInvalidVocab, token, first, id)
		}
		t.ids[token] = id
		t.maxTokenBytes = max(t.maxTokenBytes, len(token))
		if rest, ok := strings.CutPrefix(token, ContinuationPrefix); ok && rest != "" {
			t.continuations[rest] = id
			t.maxContinuationBytes = max(t.maxContinuationBytes, len(rest))
		}
	}
	unk, ok := t.ids[UnkToken]
	if !ok {
		return nil, fmt.Errorf("%w: %q is missing, and WordPiece needs it for words it cannot split", ErrInvalidVocab, UnkToken)
	}
	t.unkID = unk
	return t, nil
}

// VocabSize returns the number of tokens V.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// Vocab returns a copy of the vocabulary, indexed by id.
func (t *Tokenizer) Vocab() []string { return slices.Clone(t.tokens) }

// UnkID returns the id of UnkToken.
func (t *Tokenizer) UnkID() int32 { return t.unkID }

// Token returns the token of id, or "" when id is outside [0, V).
func (t *Tokenizer) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// ID returns the id of token and whether the vocabulary contains it.
func (t *Tokenizer) ID(token string) (int32, bool) {
	id, ok := t.ids[token]
	return id, ok
}

// Encode returns exactly maxLen ids for text: its WordPiece ids, without
// [CLS] or [SEP], truncated to maxLen and padded with PadID. It returns an
// empty slice when maxLen <= 0, and reads only the first MaxInputBytes
// bytes of text.
func (t *Tokenizer) Encode(text string, maxLen int) []int32 {
	ids := make([]int32, max(maxLen, 0))
	t.EncodeInto(ids, text)
	return ids
}

// EncodeInto fills dst the way Encode(text, len(dst)) does and returns the
// number of non-pad ids written, so a caller can fill one row of a batch
// without allocating a slice per text.
func (t *Tokenizer) EncodeInto(dst []int32, text string) int {
	ids := t.appendIDs(dst[:0], text, len(dst))
	// appendIDs writes in place unless the last word overflowed dst's
	// capacity, in which case ids is a new array and the copy is needed.
	n := copy(dst, ids)
	clear(dst[n:])
	return n
}

// EncodeNoPad returns every WordPiece id of text, without truncation,
// padding or special tokens. Only the first MaxInputBytes bytes are read.
func (t *Tokenizer) EncodeNoPad(text string) []int32 {
	return t.appendIDs(nil, text, -1)
}

// Tokenize returns the WordPiece tokens of text, the tokens of
// EncodeNoPad(text).
func (t *Tokenizer) Tokenize(text string) []string {
	ids := t.EncodeNoPad(text)
	tokens := make([]string, len(ids))
	for i, id := range ids {
		tokens[i] = t.tokens[id]
	}
	return tokens
}

// Decode joins the tokens of ids into text: it skips PadID, glues a
// ContinuationPrefix token to the token before it, and puts one space
// between words. An id outside [0, V) decodes as UnkToken. Encode followed
// by Decode returns the normalized text with spaces around punctuation,
// not the original text.
func (t *Tokenizer) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		if id == PadID {
			continue
		}
		token := t.Token(id)
		if token == "" {
			token = UnkToken
		}
		if rest, ok := strings.CutPrefix(token, ContinuationPrefix); ok && rest != "" && b.Len() > 0 {
			b.WriteString(rest)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(token)
	}
	return b.String()
}

// NumTokens returns the number of ids in ids that are not PadID.
func NumTokens(ids []int32) int {
	n := 0
	for _, id := range ids {
		if id != PadID {
			n++
		}
	}
	return n
}

// appendIDs appends the WordPiece ids of text to dst and returns the
// result. With limit >= 0 it stops reading text once dst holds limit ids
// and cuts dst to limit. With limit < 0 it reads the whole text (up to
// MaxInputBytes).
func (t *Tokenizer) appendIDs(dst []int32, text string, limit int) []int32 {
	if limit >= 0 && len(dst) >= limit {
		return dst[:limit]
	}
	s := wordScanner{tokenizer: t, ids: dst, limit: limit}
	s.scan(text)
	if limit >= 0 && len(s.ids) > limit {
		s.ids = s.ids[:limit]
	}
	return s.ids
}

// cutToRuneBoundary returns the longest prefix of text that has at most
// maxBytes bytes and does not end inside a UTF-8 sequence.
func cutToRuneBoundary(text string, maxBytes int) string {
	if len(text) <= maxBytes {
		return text
	}
	end := maxBytes
	for end > 0 && !utf8.RuneStart(text[end]) {
		end--
	}
	return text[:end]
}

// wordScanner runs normalization and pre-tokenization over a text one rune
// at a time and hands each finished word to WordPiece. Fusing the passes
// that tokenizers runs one after another gives the same words, because
// every pass maps characters one by one except NFD's canonical reordering,
// which the pending field carries across runes.
type wordScanner struct {
	tokenizer *Tokenizer
	ids       []int32
	limit     int
	// onWord, when set, receives each finished word in place of WordPiece.
	// Tests use it to compare words with other pre-tokenizers.
	onWord func(word string)

	// word[:wordBytes] is the normalized current word in UTF-8, and
	// wordRunes its length in runes. Runes past MaxWordRunes are counted
	// but not stored, because such a word becomes UnkToken whatever it
	// contains. A fixed array keeps the scanner off the heap.
	word      [MaxWordRunes * utf8.UTFMax]byte
	wordBytes int
	wordRunes int
	// pending holds the kept characters with a non-zero canonical
	// combining class (a few spacing marks, category Mc) that follow the
	// last class-0 character. NFD sorts each such run by class, so they
	// join word only when a class-0 character ends the run.
	pending []rune
}

// scan feeds the first MaxInputBytes bytes of text through the scanner
// until it holds limit ids, then finishes the last word.
func (s *wordScanner) scan(text string) {
	for _, r := range cutToRuneBoundary(text, MaxInputBytes) {
		s.addInputRune(r)
		if s.full() {
			break
		}
	}
	s.endWord()
}

// full reports whether the scanner has produced limit ids.
func (s *wordScanner) full() bool {
	return s.limit >= 0 && len(s.ids) >= s.limit
}

// addInputRune runs the normalizer on one rune of the input text.
func (s *wordScanner) addInputRune(r rune) {
	if r < utf8.RuneSelf {
		s.addASCII(r)
		return
	}

	// Clean: drop U+FFFD and characters of category Cc, Cf and Co (Go's
	// unicode.C would also drop unassigned code points, which tokenizers
	// keeps), and map White_Space to ' '. U+0085 is both Cc and
	// White_Space, and is dropped. A Go string cannot hold a surrogate (Cs).
	if r == utf8.RuneError || isControlFormatOrPrivate(r) {
		return
	}
	if isSpace(r) {
		s.endWord()
		return
	}

	// A CJK ideograph becomes a word of its own.
	if isCJKIdeograph(r) {
		s.endWord()
		s.addDecomposed(r)
		s.endWord()
		return
	}
	s.addDecomposed(r)
}

// addASCII handles a rune below utf8.RuneSelf. No ASCII character has a
// decomposition, a combining class or a nonspacing mark.
func (s *wordScanner) addASCII(r rune) {
	switch {
	case r == '\t' || r == '\n' || r == '\r' || r == ' ':
		s.endWord()
	case r < ' ' || r == 0x7F:
		// Control characters, U+0000 included, are dropped.
	case isASCIIPunct(r):
		s.endWord()
		s.addRune(r)
		s.endWord()
	case 'A' <= r && r <= 'Z':
		s.addRune(r + 'a' - 'A')
	default:
		s.addRune(r)
	}
}

// addDecomposed strips accents from one cleaned rune and lowercases what
// is left: it appends the rune's NFD without its nonspacing marks.
func (s *wordScanner) addDecomposed(r rune) {
	var hangul [3]rune
	var parts []rune
	if n := decomposeHangul(r, &hangul); n > 0 {
		parts = hangul[:n]
	} else if d, ok := lookupDecomposition(r); ok {
		parts = d
	} else {
		hangul[0] = r
		parts = hangul[:1]
	}
	for _, p := range parts {
		ccc := combiningClass(p)
		if unicode.Is(goMn, p) {
			// A dropped mark of class 0 still ends a reordering run.
			if ccc == 0 {
				s.flushPending()
			}
			continue
		}
		if ccc != 0 {
			s.pending = append(s.pending, toLower(p))
			continue
		}
		s.addNormalized(toLower(p))
	}
}

// addNormalized runs the pre-tokenizer on one normalized rune of class 0.
func (s *wordScanner) addNormalized(r rune) {
	switch {
	case isSpace(r):
		s.endWord()
	case isBertPunct(r):
		s.endWord()
		s.addRune(r)
		s.endWord()
	default:
		s.addRune(r)
	}
}

// addRune appends r to the current word after any pending marks.
func (s *wordScanner) addRune(r rune) {
	s.flushPending()
	s.appendToWord(r)
}

// flushPending sorts the pending marks by combining class, keeping the
// order of equal classes as NFD does, and appends them to the word.
func (s *wordScanner) flushPending() {
	if len(s.pending) == 0 {
		return
	}
	slices.SortStableFunc(s.pending, func(a, b rune) int {
		return int(combiningClass(a)) - int(combiningClass(b))
	})
	for _, r := range s.pending {
		s.appendToWord(r)
	}
	s.pending = s.pending[:0]
}

func (s *wordScanner) appendToWord(r rune) {
	if s.wordRunes < MaxWordRunes {
		s.wordBytes += utf8.EncodeRune(s.word[s.wordBytes:], r)
	}
	s.wordRunes++
}

// endWord runs WordPiece on the current word, appends its ids and starts
// a new word.
func (s *wordScanner) endWord() {
	s.flushPending()
	if s.wordRunes == 0 {
		return
	}
	word := s.word[:s.wordBytes]
	switch {
	case s.onWord != nil:
		s.onWord(string(word))
	case s.wordRunes > MaxWordRunes:
		s.ids = append(s.ids, s.tokenizer.unkID)
	default:
		s.ids = s.tokenizer.appendWordPieces(s.ids, word)
	}
	s.wordBytes = 0
	s.wordRunes = 0
}

// appendWordPieces appends the WordPiece ids of one word: greedily the
// longest vocabulary token that starts the rest of the word, with
// ContinuationPrefix after the first. A word with a part that no token
// covers becomes one UnkToken.
func (t *Tokenizer) appendWordPieces(dst []int32, word []byte) []int32 {
	numBefore := len(dst)
	for start := 0; start < len(word); {
		vocab, maxBytes := t.ids, t.maxTokenBytes
		if start > 0 {
			vocab, maxBytes = t.continuations, t.maxContinuationBytes
		}
		end := len(word)
		if end-start > maxBytes {
			// No token is longer, so the search starts at the last rune
			// boundary that a token can reach.
			end = start + maxBytes
			for end > start && !utf8.RuneStart(word[end]) {
				end--
			}
		}
		found := false
		for end > start {
			if id, ok := vocab[string(word[start:end])]; ok {
				dst = append(dst, id)
				found = true
				break
			}
			_, size := utf8.DecodeLastRune(word[start:end])
			end -= size
		}
		if !found {
			return append(dst[:numBefore], t.unkID)
		}
		start = end
	}
	return dst
}

// isASCIIPunct reports whether r is in one of BERT's ASCII punctuation
// ranges, which include symbols such as $, +, <, ^ and ~ that Unicode does
// not class as punctuation.
func isASCIIPunct(r rune) bool {
	return (33 <= r && r <= 47) || (58 <= r && r <= 64) ||
		(91 <= r && r <= 96) || (123 <= r && r <= 126)
}

// isBertPunct reports whether the pre-tokenizer isolates r.
func isBertPunct(r rune) bool {
	return isASCIIPunct(r) || isPunct(r)
}

// The functions below look up, in the copy in unicode_go_tables.go, the
// character classes that the tokenizer would otherwise take from Go's
// unicode package, so that their results do not change with the toolchain.
// Each returns what the unicode function named in its comment returns under
// the toolchain that wrote the tables, which TestGoUnicodeTables checks.
// unicode.Is only searches the table it is given, and its search is the same
// in every Go version.

// isControlFormatOrPrivate is unicode.In(r, unicode.Cc, unicode.Cf,
// unicode.Co).
func isControlFormatOrPrivate(r rune) bool {
	return unicode.Is(goCc, r) || unicode.Is(goCf, r) || unicode.Is(goCo, r)
}

// isSpace is unicode.IsSpace.
func isSpace(r rune) bool {
	if uint32(r) <= unicode.MaxLatin1 {
		switch r {
		case '\t', '\n', '\v', '\f', '\r', ' ', 0x85, 0xA0:
			return true
		}
		return false
	}
	return unicode.Is(goWhiteSpace, r)
}

// isPunct is unicode.IsPunct. For Latin-1 that function reads category P
// from a property table of its own, and goP gives the same results there.
func isPunct(r rune) bool {
	return unicode.Is(goP, r)
}

// lowerCasePair is a rune and its lowercase.
type lowerCasePair struct {
	from, lower rune
}

// toLower is unicode.ToLower.
func toLower(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	if r < goLowerCase[0].from {
		return r
	}
	i, found := slices.BinarySearchFunc(goLowerCase[:], r, func(p lowerCasePair, r rune) int {
		return cmp.Compare(p.from, r)
	})
	if !found {
		return r
	}
	return goLowerCase[i].lower
}

// isCJKIdeograph reports whether r is in the CJK ranges of the tokenizers
// BertNormalizer: the Unified Ideographs, their extensions A to D and E
// from U+2B920, and the two compatibility blocks. Hangul and kana are not
// included.
func isCJKIdeograph(r rune) bool {
	return (0x4E00 <= r && r <= 0x9FFF) ||
		(0x3400 <= r && r <= 0x4DBF) ||
		(0x20000 <= r && r <= 0x2A6DF) ||
		(0x2A700 <= r && r <= 0x2B73F) ||
		(0x2B740 <= r && r <= 0x2B81F) ||
		(0x2B920 <= r && r <= 0x2CEAF) ||
		(0xF900 <= r && r <= 0xFAFF) ||
		(0x2F800 <= r && r <= 0x2FA1F)
}

// Hangul syllable constants. A precomposed syllable is
// SBase + (L*VCount + V)*TCount + T, and its NFD is the jamo LBase+L,
// VBase+V and, when T > 0, TBase+T.
const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulVCount = 21
	hangulTCount = 28
	hangulSCount = 19 * hangulVCount * hangulTCount
)

// decomposeHangul writes the jamo of a precomposed Hangul syllable to out
// and returns how many there are (2 or 3), or returns 0 when r is not a
// syllable.
func decomposeHangul(r rune, out *[3]rune) int {
	index := r - hangulSBase
	if index < 0 || index >= hangulSCount {
		return 0
	}
	out[0] = hangulLBase + index/(hangulVCount*hangulTCount)
	out[1] = hangulVBase + index%(hangulVCount*hangulTCount)/hangulTCount
	if trailing := index % hangulTCount; trailing != 0 {
		out[2] = hangulTBase + trailing
		return 3
	}
	return 2
}

// lookupDecomposition returns the full canonical decomposition of r from
// the generated table, or false when r has none.
func lookupDecomposition(r rune) ([]rune, bool) {
	if r < nfdKeys[0] {
		return nil, false
	}
	i, ok := slices.BinarySearch(nfdKeys[:], r)
	if !ok {
		return nil, false
	}
	return nfdRunes[nfdOffsets[i]:nfdOffsets[i+1]], true
}

// combiningClassRange is a run of code points with the same non-zero
// canonical combining class.
type combiningClassRange struct {
	first, last rune
	class       uint8
}

// combiningClass returns the canonical combining class of r.
func combiningClass(r rune) uint8 {
	if r < combiningClassRanges[0].first {
		return 0
	}
	i, found := slices.BinarySearchFunc(combiningClassRanges[:], r, func(c combiningClassRange, r rune) int {
		switch {
		case c.last < r:
			return -1
		case c.first > r:
			return 1
		}
		return 0
	})
	if !found {
		return 0
	}
	return combiningClassRanges[i].class
}
