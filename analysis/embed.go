package analysis

import (
	"context"
	"fmt"
	"image"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/evaluate"
)

// Input is the part of each example that EmbedExamples gives the encoder.
type Input int

const (
	// InputImage embeds the image alone.
	InputImage Input = iota
	// InputText embeds the caption alone.
	InputText
	// InputBoth embeds the image and the caption together.
	InputBoth
)

// String returns "image", "text" or "both".
func (in Input) String() string {
	switch in {
	case InputImage:
		return "image"
	case InputText:
		return "text"
	case InputBoth:
		return "both"
	}
	return fmt.Sprintf("Input(%d)", int(in))
}

// EmbedExamples returns the embedding of each example's image, caption or
// both, as input selects, pooled by pool. Every example needs the parts
// that input uses, and the others are ignored. progress, when not nil, is
// called after each example with the number done and len(examples).
// EmbedExamples stops with ctx's error when ctx is cancelled.
func EmbedExamples(ctx context.Context, p *core.Pipeline, examples []evaluate.Example, input Input, pool core.Pooling, progress func(done, total int)) ([][]float32, error) {
	if input != InputImage && input != InputText && input != InputBoth {
		return nil, fmt.Errorf("embed: input %d is unknown: use InputImage, InputText or InputBoth", int(input))
	}
	embeddings := make([][]float32, len(examples))
	for i, example := range examples {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("embed: %w", err)
		}
		var img image.Image
		caption := ""
		if input != InputText {
			if !example.HasImage() {
				return nil, fmt.Errorf("embed: %s has no image, but %s embeddings need one: give an image per example or embed the text", example.Name, input)
			}
			var err error
			if img, err = example.LoadImage(); err != nil {
				return nil, fmt.Errorf("embed: %w", err)
			}
		}
		if input != InputImage {
			if example.Caption == "" {
				return nil, fmt.Errorf("embed: %s has no caption, but %s embeddings need one: give a caption per example or embed the image", example.Name, input)
			}
			caption = example.Caption
		}
		var err error
		if embeddings[i], err = p.Embed(img, caption, pool); err != nil {
			return nil, fmt.Errorf("embed: %s: %w", example.Name, err)
		}
		if progress != nil {
			progress(i+1, len(examples))
		}
	}
	return embeddings, nil
}
