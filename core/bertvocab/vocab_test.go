package bertvocab

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// wantBytes is the size of vocab.txt in bytes.
const wantBytes = 231508

func TestTextChecksum(t *testing.T) {
	if got := len(Text()); got != wantBytes {
		t.Errorf("len(Text()) = %d, want %d", got, wantBytes)
	}
	sum := sha256.Sum256([]byte(Text()))
	if got := hex.EncodeToString(sum[:]); got != SHA256 {
		t.Errorf("sha256(Text()) = %s, want %s", got, SHA256)
	}
	if got := strings.Count(Text(), "\n"); got != Size {
		t.Errorf("newlines in Text() = %d, want %d", got, Size)
	}
	if !strings.HasSuffix(Text(), "\n") {
		t.Errorf("Text() does not end in a newline")
	}
}

func TestTokensSpotChecks(t *testing.T) {
	tokens := Tokens()
	if len(tokens) != Size {
		t.Fatalf("len(Tokens()) = %d, want %d", len(tokens), Size)
	}
	tests := []struct {
		id   int
		want string
	}{
		{0, "[PAD]"},
		{1, "[unused0]"},
		{100, "[UNK]"},
		{101, "[CLS]"},
		{102, "[SEP]"},
		{103, "[MASK]"},
		{1996, "the"},
		{20968, "##berries"},
		{Size - 1, "##～"},
	}
	for _, tt := range tests {
		if got := tokens[tt.id]; got != tt.want {
			t.Errorf("Tokens()[%d] = %q, want %q", tt.id, got, tt.want)
		}
	}
}

func TestTokensUniqueAndNonEmpty(t *testing.T) {
	seen := make(map[string]int, Size)
	for id, token := range Tokens() {
		if token == "" {
			t.Errorf("Tokens()[%d] is empty", id)
		}
		if first, ok := seen[token]; ok {
			t.Errorf("Tokens()[%d] = %q, already at id %d", id, token, first)
		}
		seen[token] = id
	}
}

func TestTokensReturnsCopy(t *testing.T) {
	first := Tokens()
	first[0] = "changed"
	if got := Tokens()[0]; got != "[PAD]" {
		t.Errorf("Tokens()[0] after changing an earlier result = %q, want %q", got, "[PAD]")
	}
}
