//go:build js && wasm

package main

import (
	"fmt"

	"syscall/js"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// attention(handle, options) embeds the unmasked input as embed does and
// resolves to what CLS attends to in every block and head and in the
// rollout, as the package doc describes.
func attention(args []js.Value) (any, error) {
	m, err := lookup(args)
	if err != nil {
		return nil, fmt.Errorf("attention: %w", err)
	}
	opts := optionsArg(args)
	in, err := readInputs(opts)
	if err != nil {
		return nil, err // core's message, as embed gives it
	}
	pooling, err := poolingOption(opts)
	if err != nil {
		return nil, err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	result, err := m.pipeline.EmbedWithAttention(in.image, in.text, pooling)
	if err != nil {
		return nil, err
	}
	return attentionObject(result, m.pipeline.Config()), nil
}

// attentionObject converts the CLS rows of result into the JS shape that
// the package doc gives.
func attentionObject(result *core.PipelineAttention, cfg core.Config) js.Value {
	a := result.Attention
	numTokens := a.NumTokens()
	clsMap := func(row []float32) any {
		cls, patches, text := a.ByPosition(row)
		out := map[string]any{"cls": float64(cls), "patches": nil, "text": nil}
		if patches != nil {
			out["patches"] = float32Array(patches)
		}
		if text != nil {
			// Pads get no attention, so the row stops at the last token.
			out["text"] = float32Array(text[:len(result.Tokens)])
		}
		return out
	}

	layers := make([]any, a.Depth)
	for layer := range a.Depth {
		heads := make([]any, a.NumHeads)
		for head := range a.NumHeads {
			heads[head] = clsMap(a.Row(layer, head, 0))
		}
		mean := a.HeadMean(layer)
		layers[layer] = map[string]any{"mean": clsMap(mean[:numTokens]), "heads": heads}
	}
	tokens := make([]any, len(result.Tokens))
	for i, token := range result.Tokens {
		tokens[i] = token
	}
	return js.ValueOf(map[string]any{
		"depth":     a.Depth,
		"numHeads":  a.NumHeads,
		"gridSize":  cfg.GridSize(),
		"tokens":    tokens,
		"embedding": float32Array(result.Embedding),
		"rollout":   clsMap(a.Rollout()[:numTokens]),
		"layers":    layers,
	})
}
