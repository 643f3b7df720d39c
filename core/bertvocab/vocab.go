// Package bertvocab embeds the bert-base-uncased WordPiece vocabulary, 30522
// tokens in id order, for core.NewTokenizer.
//
// It lives apart from core so that programs that read the vocabulary from a
// model file, such as the wasm builds, do not carry a second copy. The
// package imports only the standard library. vocab.txt is rebuilt by
// rebuild.sh; NOTICE and LICENSE give its source and licence (Apache 2.0).
package bertvocab

import (
	_ "embed"
	"strings"
	"sync"
)

// Size is the number of tokens in the vocabulary.
const Size = 30522

// SHA256 is the hex SHA-256 of vocab.txt: one token per line, each line
// ending in "\n".
const SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"

//go:embed vocab.txt
var text string

// Text returns vocab.txt as embedded: one token per line, in id order.
func Text() string { return text }

var splitOnce = sync.OnceValue(func() []string {
	return strings.Split(strings.TrimSuffix(text, "\n"), "\n")
})

// Tokens returns the vocabulary, indexed by id. Each call returns a fresh
// slice that the caller may modify, and its strings share the embedded data.
func Tokens() []string {
	shared := splitOnce()
	tokens := make([]string, len(shared))
	copy(tokens, shared)
	return tokens
}
