// Package defaultmodel embeds the model that every m3ae-edge command and the
// browser demo use when no model file is given: the mini preset trained on
// the emoji image-caption data and quantized to int8. docs/MODEL.md is its
// model card, and `make model` rebuilds it.
package defaultmodel

import (
	_ "embed"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// FileName is the default model's file name, which the demo server also
// uses in the model's URL.
const FileName = "emoji-mini.int8.safetensors"

//go:embed emoji-mini.int8.safetensors
var file []byte

// Bytes returns the default model file. The slice is shared, so callers
// must not modify it.
func Bytes() []byte { return file }

// Load parses the default model into a pipeline ready to embed and
// reconstruct.
func Load() (*core.Pipeline, error) {
	return core.Load(file)
}
