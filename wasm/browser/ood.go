//go:build js && wasm

package main

import (
	"encoding/binary"
	"fmt"
	"math"

	"syscall/js"

	"github.com/m3ae-edge/m3ae-edge/analysis"
	"github.com/m3ae-edge/m3ae-edge/core"
)

// ood(options) resolves to how unusual an embedding is against a
// reference set, as the package doc describes. It needs no model.
func ood(args []js.Value) (any, error) {
	opts := js.Undefined()
	if len(args) > 0 {
		opts = args[0]
	}
	if err := checkOptions(opts); err != nil {
		return nil, fmt.Errorf("ood: %w", err)
	}
	reference, err := embeddingList(property(opts, "reference"))
	if err != nil {
		return nil, fmt.Errorf("ood: %w", err)
	}
	input, index := property(opts, "input"), property(opts, "referenceIndex")
	if isMissing(input) == isMissing(index) {
		return nil, fmt.Errorf("ood: %w: give either input, an embedding to score, or referenceIndex, the reference embedding to score against the others", core.ErrInvalidInput)
	}

	set, err := analysis.NewReferenceSet(reference)
	if err != nil {
		return nil, fmt.Errorf("ood: %w: %w", core.ErrInvalidInput, err)
	}
	var reading analysis.Reading
	if !isMissing(index) {
		i, err := indexOption(index, len(reference))
		if err != nil {
			return nil, err
		}
		reading, _ = set.Member(i)
	} else {
		x, err := embeddingArg("input", input)
		if err != nil {
			return nil, fmt.Errorf("ood: %w", err)
		}
		if reading, err = set.Score(x); err != nil {
			return nil, fmt.Errorf("ood: %w: input: %w", core.ErrInvalidInput, err)
		}
	}

	referenceScores := make([]any, len(set.LeaveOneOut))
	for i, score := range set.LeaveOneOut {
		referenceScores[i] = score
	}
	return js.ValueOf(map[string]any{
		"score":           reading.Score,
		"percentile":      reading.Percentile,
		"shrinkage":       set.Model.Shrinkage,
		"referenceScores": referenceScores,
	}), nil
}

// embeddingList reads an Array of Float32Array.
func embeddingList(v js.Value) ([][]float32, error) {
	if tag := typeTag(v); tag != "Array" {
		return nil, fmt.Errorf("%w: reference must be an Array of Float32Array, got %s", core.ErrInvalidInput, tag)
	}
	out := make([][]float32, get(v, "length").Int())
	for i := range out {
		var err error
		if out[i], err = embeddingArg(fmt.Sprintf("reference[%d]", i), get(v, fmt.Sprint(i))); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// embeddingArg copies a Float32Array into Go.
func embeddingArg(name string, v js.Value) ([]float32, error) {
	if tag := typeTag(v); tag != "Float32Array" {
		return nil, fmt.Errorf("%w: %s must be a Float32Array, got %s", core.ErrInvalidInput, name, tag)
	}
	bytes := js.Global().Get("Uint8Array").New(get(v, "buffer"), get(v, "byteOffset"), get(v, "byteLength"))
	raw := make([]byte, bytes.Length())
	js.CopyBytesToGo(raw, bytes)
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

// indexOption reads referenceIndex, an integer Number from 0 to n-1.
func indexOption(v js.Value, n int) (int, error) {
	if typeTag(v) != "Number" {
		return 0, fmt.Errorf("ood: %w: referenceIndex must be a number, got %s", core.ErrInvalidInput, describe(v))
	}
	f := v.Float()
	if f != math.Trunc(f) || f < 0 || f >= float64(n) {
		return 0, fmt.Errorf("ood: %w: referenceIndex is %v, want an integer from 0 to %d", core.ErrInvalidInput, f, n-1)
	}
	return int(f), nil
}
