package core

import (
	"reflect"
	"testing"
	"unicode"
	"unicode/utf8"
)

// regenerateGoUnicode is the command that rewrites unicode_go_tables.go.
const regenerateGoUnicode = "go run ./core/internal/gen/gounicode core/unicode_go_tables.go (with Go 1.26, from the repository root)"

// goUnicodeRangeTables pairs each copied range table with its original in
// the unicode package of the running toolchain.
var goUnicodeRangeTables = []struct {
	name      string
	got, want *unicode.RangeTable
}{
	{"goCc", goCc, unicode.Cc},
	{"goCf", goCf, unicode.Cf},
	{"goCo", goCo, unicode.Co},
	{"goMn", goMn, unicode.Mn},
	{"goP", goP, unicode.P},
	{"goWhiteSpace", goWhiteSpace, unicode.White_Space},
}

// TestGoUnicodeTables checks that unicode_go_tables.go is an exact copy of
// the unicode package it was generated from, and that the tokenizer's
// functions over it return what the unicode package's functions return for
// every rune. It can only run under a toolchain with the tables' Unicode
// version (Go 1.26); under any other it skips.
func TestGoUnicodeTables(t *testing.T) {
	if unicode.Version != goUnicodeVersion {
		t.Skipf("this toolchain's unicode package has Unicode %s and unicode_go_tables.go has %s, so there is no original to compare with; Go 1.26 runs this test",
			unicode.Version, goUnicodeVersion)
	}
	for _, tt := range goUnicodeRangeTables {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s differs from the unicode package's table; regenerate it with %s", tt.name, regenerateGoUnicode)
		}
	}

	var want []lowerCasePair
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		if lower := unicode.ToLower(r); lower != r {
			want = append(want, lowerCasePair{r, lower})
		}
	}
	if !reflect.DeepEqual(goLowerCase[:], want) {
		t.Errorf("goLowerCase has %d pairs that differ from unicode.ToLower's %d; regenerate it with %s",
			len(goLowerCase), len(want), regenerateGoUnicode)
	}

	funcs := []struct {
		name      string
		got, want func(rune) bool
	}{
		{"isControlFormatOrPrivate", isControlFormatOrPrivate, func(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co) }},
		{"isSpace", isSpace, unicode.IsSpace},
		{"isPunct", isPunct, unicode.IsPunct},
		{"unicode.Is(goMn)", func(r rune) bool { return unicode.Is(goMn, r) }, func(r rune) bool { return unicode.Is(unicode.Mn, r) }},
	}
	// -1 and MaxRune+1 check that invalid runes give the same results.
	const first, last = rune(-1), unicode.MaxRune + 1
	for _, f := range funcs {
		mismatches := 0
		for r := first; r <= last; r++ {
			if got, want := f.got(r), f.want(r); got != want {
				if mismatches++; mismatches <= 5 {
					t.Errorf("%s(%U) = %v, want %v as the unicode package gives", f.name, r, got, want)
				}
			}
		}
		if mismatches > 5 {
			t.Errorf("%s: %d runes in all differ from the unicode package", f.name, mismatches)
		}
	}
	mismatches := 0
	for r := first; r <= last; r++ {
		if got, want := toLower(r), unicode.ToLower(r); got != want {
			if mismatches++; mismatches <= 5 {
				t.Errorf("toLower(%U) = %U, want %U as unicode.ToLower gives", r, got, want)
			}
		}
	}
	if mismatches > 5 {
		t.Errorf("toLower: %d runes in all differ from unicode.ToLower", mismatches)
	}
}

// TestGoUnicodeTablesWellFormed checks, under every toolchain, what
// unicode.Is and toLower's binary search assume of the tables, so a hand
// edit that breaks them fails here even where TestGoUnicodeTables skips.
func TestGoUnicodeTablesWellFormed(t *testing.T) {
	for _, tt := range goUnicodeRangeTables {
		last := rune(-1)
		latin := 0
		for _, r := range tt.got.R16 {
			lo, hi := rune(r.Lo), rune(r.Hi)
			if lo <= last || hi < lo || r.Stride == 0 || (hi-lo)%rune(r.Stride) != 0 {
				t.Errorf("%s: range %U..%U stride %d is out of order or malformed", tt.name, lo, hi, r.Stride)
			}
			if hi <= unicode.MaxLatin1 {
				latin++
			}
			last = hi
		}
		for _, r := range tt.got.R32 {
			lo, hi := rune(r.Lo), rune(r.Hi)
			if lo <= last || lo <= 0xFFFF || hi < lo || hi > unicode.MaxRune || r.Stride == 0 || (hi-lo)%rune(r.Stride) != 0 {
				t.Errorf("%s: range %U..%U stride %d is out of order or malformed", tt.name, lo, hi, r.Stride)
			}
			last = hi
		}
		if tt.got.LatinOffset != latin {
			t.Errorf("%s: LatinOffset = %d, want %d, the number of R16 ranges within Latin-1", tt.name, tt.got.LatinOffset, latin)
		}
	}
	last := rune(unicode.MaxASCII)
	for _, p := range goLowerCase {
		if p.from <= last || p.from > unicode.MaxRune || p.lower == p.from {
			t.Errorf("goLowerCase: pair {%U, %U} is out of order or maps a rune to itself", p.from, p.lower)
		}
		last = p.from
	}
}

// TestTokenizerUnicodeFuncs spot-checks the tokenizer's character classes
// under every toolchain, among them code points that Unicode 15.0.0 does
// not assign but later versions (so Go 1.27's unicode package) do.
func TestTokenizerUnicodeFuncs(t *testing.T) {
	lower := []struct{ r, want rune }{
		{'A', 'a'}, {'z', 'z'}, {'[', '['}, {0xC0, 0xE0}, {0xD7, 0xD7}, {0x130, 'i'},
		{0x3A3, 0x3C3}, {0x1E9E, 0xDF}, {0x2C00, 0x2C30}, {0x10400, 0x10428}, {0x1E900, 0x1E922},
		{0xA7CB, 0xA7CB}, {0x1C89, 0x1C89}, {0x10D50, 0x10D50}, {-1, -1}, {unicode.MaxRune + 1, unicode.MaxRune + 1},
	}
	for _, tt := range lower {
		if got := toLower(tt.r); got != tt.want {
			t.Errorf("toLower(%U) = %U, want %U", tt.r, got, tt.want)
		}
	}
	classes := []struct {
		name string
		f    func(rune) bool
		yes  []rune
		no   []rune
	}{
		{"isSpace", isSpace, []rune{'\t', '\v', ' ', 0x85, 0xA0, 0x1680, 0x2000, 0x2028, 0x3000}, []rune{'a', 0x1C, 0x180E, 0x200B, 0xFEFF}},
		{"isPunct", isPunct, []rune{'!', '_', 0xA1, 0xA7, 0xBF, 0x2010, 0x3001, 0x1E95E}, []rune{'$', '+', 0xA2, 0xAC, 'a', 0x10D6E}},
		{"isControlFormatOrPrivate", isControlFormatOrPrivate, []rune{0, 0x7F, 0x85, 0xAD, 0x200B, 0xE000, 0xFEFF, 0xF0000, 0x10FFFD}, []rune{' ', 'a', 0xA0, 0x378, 0xFFFE}},
		{"unicode.Is(goMn)", func(r rune) bool { return unicode.Is(goMn, r) }, []rune{0x300, 0x36F, 0x1ACE, 0xE0100}, []rune{'a', 0x903, 0x10D69}},
	}
	for _, c := range classes {
		for _, r := range c.yes {
			if !c.f(r) {
				t.Errorf("%s(%U) = false, want true", c.name, r)
			}
		}
		for _, r := range c.no {
			if c.f(r) {
				t.Errorf("%s(%U) = true, want false", c.name, r)
			}
		}
	}
}
