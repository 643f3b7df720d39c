//go:build js && wasm

// Command forward is a GOOS=js build of the core's forward pass for the
// browser group of cmd/m3ae-bench, which builds it with
//
//	GOOS=js GOARCH=wasm go build -o forward.wasm ./cmd/m3ae-bench/testdata/forward
//
// wasm/browser's calls take an image and a caption and preprocess them.
// This module takes the preprocessed inputs that the ONNX models take, so
// that both sides of the comparison time the same work. It defines
// globalThis.m3aeForward with these synchronous functions:
//
//	load(model: Uint8Array)
//	setInputs(patches, tokens, imageMask, textMask: Uint8Array)
//	embed() -> Float32Array
//	reconstruct() -> Float32Array
//
// load reads a model file. setInputs copies one example: patches are the
// little-endian float32 bytes of [Np, p*p*C], tokens the little-endian
// int32 bytes of [Nt], and each mask has one byte per position, nonzero
// meaning hidden. embed returns the CLS embedding [D], and reconstruct the
// encoder output [K, D] of core.Model.Reconstruct. A function that fails
// returns an Error instead of throwing, because a Go callback cannot throw.
package main

import (
	"errors"
	"syscall/js"

	"github.com/m3ae-edge/m3ae-edge/cmd/m3ae-bench/internal/forwardinput"
	"github.com/m3ae-edge/m3ae-edge/core"
)

var (
	model  *core.Model
	inputs core.Inputs
	masks  core.Masks
)

func main() {
	api := js.Global().Get("Object").New()
	api.Set("load", js.FuncOf(func(this js.Value, args []js.Value) any {
		return result(nil, load(args))
	}))
	api.Set("setInputs", js.FuncOf(func(this js.Value, args []js.Value) any {
		return result(nil, setInputs(args))
	}))
	api.Set("embed", js.FuncOf(func(this js.Value, args []js.Value) any {
		if model == nil {
			return result(nil, errors.New("embed: no model: call load first"))
		}
		return result(model.Embed(inputs, core.PoolCLS))
	}))
	api.Set("reconstruct", js.FuncOf(func(this js.Value, args []js.Value) any {
		if model == nil {
			return result(nil, errors.New("reconstruct: no model: call load first"))
		}
		r, err := model.Reconstruct(inputs, masks)
		if err != nil {
			return result(nil, err)
		}
		return result(r.Encoded, nil)
	}))
	js.Global().Set("m3aeForward", api)
	select {} // keep the functions alive
}

// result returns values as a Float32Array, err as an Error, or undefined.
func result(values []float32, err error) any {
	if err != nil {
		return js.Global().Get("Error").New(err.Error())
	}
	if values == nil {
		return js.Undefined()
	}
	raw := forwardinput.Float32Bytes(values)
	bytes := js.Global().Get("Uint8Array").New(len(raw))
	js.CopyBytesToJS(bytes, raw)
	return js.Global().Get("Float32Array").New(bytes.Get("buffer"))
}

// bytesArg copies args[i], a Uint8Array, into Go.
func bytesArg(args []js.Value, i int, name string) ([]byte, error) {
	if len(args) <= i || !args[i].InstanceOf(js.Global().Get("Uint8Array")) {
		return nil, errors.New(name + " is not a Uint8Array")
	}
	data := make([]byte, args[i].Get("length").Int())
	js.CopyBytesToGo(data, args[i])
	return data, nil
}

func load(args []js.Value) error {
	data, err := bytesArg(args, 0, "model")
	if err != nil {
		return err
	}
	mf, err := core.ReadModelFile(data)
	if err != nil {
		return err
	}
	model, err = core.NewModel(mf)
	return err
}

func setInputs(args []js.Value) error {
	var raw [4][]byte
	for i, name := range []string{"patches", "tokens", "imageMask", "textMask"} {
		data, err := bytesArg(args, i, name)
		if err != nil {
			return err
		}
		raw[i] = data
	}
	var err error
	inputs, masks, err = forwardinput.Decode(raw[0], raw[1], raw[2], raw[3])
	return err
}
