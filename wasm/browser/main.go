//go:build js && wasm

// Command browser is the m3ae WebAssembly module for web pages. Build it
// with
//
//	GOOS=js GOARCH=wasm go build -o m3ae.wasm ./wasm/browser
//
// and run it in a Web Worker, since every call holds the worker's thread
// for the whole forward pass:
//
//	importScripts("wasm_exec.js"); // from $(go env GOROOT)/lib/wasm
//	const go = new Go();
//	const { instance } = await WebAssembly.instantiateStreaming(fetch("m3ae.wasm"), go.importObject);
//	go.run(instance); // defines globalThis.m3ae before it returns
//	const handle = await m3ae.load(new Uint8Array(await (await fetch("model.safetensors")).arrayBuffer()));
//	const embedding = await m3ae.embed(handle, { text: "a red apple" });
//
// The module touches only globalThis, never the DOM. It defines
// globalThis.m3ae with these functions:
//
//	load(bytes: Uint8Array | ArrayBuffer) -> Promise<handle: number>
//	embed(handle, {image?, pixels?, text?, pooling?}) -> Promise<Float32Array>
//	reconstruct(handle, {image?, pixels?, text?, imageMaskRatio?, textMaskRatio?,
//	    seed?, topK?, imageMask?, textMask?}) -> Promise<Reconstruction>
//	attention(handle, {image?, pixels?, text?, pooling?}) -> Promise<Attention>
//	ood({reference, input?, referenceIndex?}) -> Promise<OODReading>
//	config(handle) -> Promise<Config>
//	release(handle) -> boolean
//
// image is the bytes of a PNG or JPEG file (Uint8Array or ArrayBuffer).
// pixels is {data: Uint8ClampedArray, width, height} with straight-alpha
// RGBA, which an ImageData is. Give at most one of them. text is a caption.
// pooling is "cls" (the default) or "mean".
//
// imageMaskRatio and textMaskRatio default to 0.75, and topK to 5. seed
// picks the random masks and defaults to 0. It is a uint64 in Go, so give
// it as a non-negative safe integer Number (up to 2^53 - 1) or as a BigInt
// (up to 2^64 - 1). imageMask and textMask, both Uint8Array with nonzero
// meaning hidden, replace the random masks when either is given; a missing
// one hides nothing.
//
// A Reconstruction is
//
//	{original, masked, reconstructed: {data: Uint8ClampedArray, width, height} | null,
//	 pixelPred: Float32Array | null, imageMask: Uint8Array | null,
//	 textMask: Uint8Array | null, tokens: string[], hidden: boolean[],
//	 predictions: [{position, original, candidates: [{id, token, prob}]}]}
//
// with the images null without an image and the text fields empty without
// text. Masks hold 1 for hidden positions.
//
// attention embeds the unmasked input as embed does and resolves to what
// the encoder's CLS token attends to:
//
//	{depth, numHeads, gridSize, tokens: string[], embedding: Float32Array,
//	 rollout: Map, layers: [{mean: Map, heads: Map[]}]}
//	Map = {cls: number, patches: Float32Array | null, text: Float32Array | null}
//
// A Map is one row of softmax probabilities split by input position. cls
// is CLS's weight on itself, and patches the weight of each of the
// gridSize*gridSize patches in row-major order. text is the weight of
// each caption token in tokens, the caption's WordPiece tokens. Pads get
// no weight and are left out, so the three parts sum to 1 within float
// rounding. layers[l].heads[h] is head h of block l, layers[l].mean its
// mean over the heads, and rollout the attention rollout over every block
// (Abnar and Zuidema 2020). embedding has the same bits as embed's.
//
// ood scores an embedding against reference, an Array of at least 3
// Float32Array embeddings of one class, with a Gaussian whose covariance
// is shrunk by Ledoit-Wolf shrinkage (analysis.NewReferenceSet). Give
// input, an embedding to score, or referenceIndex, the index of a
// reference embedding to score against a fit of the others. An
// OODReading is
//
//	{score, percentile, shrinkage, referenceScores: number[]}
//
// with score the Mahalanobis distance, percentile the percentage of
// referenceScores below it (ties count one half; the scored reference
// embedding is left out), shrinkage the Ledoit-Wolf weight of the fit and
// referenceScores each reference embedding's leave-one-out score.
//
// A Config has the fields
// imageSize, patchSize, textLength, vocabSize, embedDim, depth, numHeads,
// decoderEmbedDim, decoderDepth, decoderNumHeads and mlpRatio.
//
// Every failure rejects the promise with an Error whose message is the
// core's error text. Outputs are bit-identical to the native core and to
// the wasip1 plugin for the same model, input and seed.
package main

import (
	"errors"
	"fmt"
	"sync"
	"syscall/js"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// globalName is the property of globalThis that contains the API.
const globalName = "m3ae"

// loaded is one model and the lock that serializes its calls. Go's wasm
// code runs on one thread, but goroutines still interleave wherever one
// blocks or yields, and a Pipeline must not run two calls at once.
type loaded struct {
	mu       sync.Mutex
	pipeline *core.Pipeline
}

var (
	modelsMu   sync.Mutex
	models     = map[int]*loaded{}
	lastHandle int
)

func main() {
	api := js.Global().Get("Object").New()
	api.Set("load", promiseFunc(load))
	api.Set("embed", promiseFunc(embed))
	api.Set("reconstruct", promiseFunc(reconstruct))
	api.Set("attention", promiseFunc(attention))
	api.Set("ood", promiseFunc(ood))
	api.Set("config", promiseFunc(config))
	api.Set("release", js.FuncOf(release))
	js.Global().Set(globalName, api)
	select {} // keep the exported functions alive
}

// promiseFunc wraps fn in a JS function that returns a Promise. fn runs on
// its own goroutine, because a js.FuncOf callback must not block, and its
// error rejects the promise with an Error.
func promiseFunc(fn func(args []js.Value) (any, error)) js.Func {
	return js.FuncOf(func(this js.Value, args []js.Value) any {
		var resolve, reject js.Value
		executor := js.FuncOf(func(this js.Value, callbacks []js.Value) any {
			resolve, reject = callbacks[0], callbacks[1]
			return nil
		})
		promise := js.Global().Get("Promise").New(executor)
		executor.Release()
		go func() {
			result, err := callRecovering(fn, args)
			if err != nil {
				reject.Invoke(js.Global().Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(result)
		}()
		return promise
	})
}

// callRecovering runs fn and turns a panic into an error. Recovering is
// right at this boundary: an unrecovered panic would exit the Go program,
// and every later call on the page would fail with "Go program has already
// exited" until the page reloads the module and its models. Invalid input
// from JavaScript, such as a getter that throws, panics inside syscall/js.
// core's per-call buffers are rewritten by the next call, so the instance
// stays usable.
func callRecovering(fn func([]js.Value) (any, error), args []js.Value) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, fmt.Errorf("internal error: %v", r)
		}
	}()
	return fn(args)
}

// load(bytes) reads a model file and resolves to its handle.
func load(args []js.Value) (any, error) {
	if len(args) < 1 {
		return nil, errors.New("load: missing argument: pass the model file as a Uint8Array")
	}
	data, err := bytesArg("model file", args[0])
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	pipeline, err := core.Load(data)
	if err != nil {
		return nil, err
	}
	modelsMu.Lock()
	defer modelsMu.Unlock()
	lastHandle++
	models[lastHandle] = &loaded{pipeline: pipeline}
	return lastHandle, nil
}

// release(handle) unloads a model and returns whether it was loaded. A
// call already running on the model still completes.
func release(this js.Value, args []js.Value) (released any) {
	// release returns a boolean rather than a promise, so it recovers on
	// its own, for the reason callRecovering gives.
	defer func() {
		if recover() != nil {
			released = false
		}
	}()
	if len(args) < 1 || typeTag(args[0]) != "Number" {
		return false
	}
	handle := args[0].Int()
	modelsMu.Lock()
	defer modelsMu.Unlock()
	_, ok := models[handle]
	delete(models, handle)
	return ok
}

// lookup returns the model of args[0].
func lookup(args []js.Value) (*loaded, error) {
	if len(args) < 1 || typeTag(args[0]) != "Number" {
		return nil, errors.New("missing handle: pass the number that load resolved to")
	}
	handle := args[0].Int()
	modelsMu.Lock()
	defer modelsMu.Unlock()
	m, ok := models[handle]
	if !ok {
		return nil, fmt.Errorf("handle %d is not loaded: call load first", handle)
	}
	return m, nil
}

// config(handle) resolves to the model's architecture.
func config(args []js.Value) (any, error) {
	m, err := lookup(args)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg := m.pipeline.Config()
	return map[string]any{
		"imageSize":       cfg.ImageSize,
		"patchSize":       cfg.PatchSize,
		"textLength":      cfg.TextLength,
		"vocabSize":       cfg.VocabSize,
		"embedDim":        cfg.EmbedDim,
		"depth":           cfg.Depth,
		"numHeads":        cfg.NumHeads,
		"decoderEmbedDim": cfg.DecoderEmbedDim,
		"decoderDepth":    cfg.DecoderDepth,
		"decoderNumHeads": cfg.DecoderNumHeads,
		"mlpRatio":        cfg.MLPRatio,
	}, nil
}

// embed(handle, options) resolves to the embedding as a Float32Array.
func embed(args []js.Value) (any, error) {
	m, err := lookup(args)
	if err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	opts := optionsArg(args)
	in, err := readInputs(opts)
	if err != nil {
		return nil, err // core's message, as the other targets give it
	}
	pooling, err := poolingOption(opts)
	if err != nil {
		return nil, err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	embedding, err := m.pipeline.Embed(in.image, in.text, pooling)
	if err != nil {
		return nil, err
	}
	return float32Array(embedding), nil
}

// reconstruct(handle, options) resolves to a Reconstruction object.
func reconstruct(args []js.Value) (any, error) {
	m, err := lookup(args)
	if err != nil {
		return nil, fmt.Errorf("reconstruct: %w", err)
	}
	opts := optionsArg(args)
	in, err := readInputs(opts)
	if err != nil {
		return nil, err // core's message, as the other targets give it
	}
	reconstructOpts, err := reconstructOptions(opts)
	if err != nil {
		return nil, err
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	result, err := m.pipeline.Reconstruct(in.image, in.text, reconstructOpts)
	if err != nil {
		return nil, err
	}
	return reconstructionObject(result), nil
}

// optionsArg returns args[1], or undefined when it is missing.
func optionsArg(args []js.Value) js.Value {
	if len(args) < 2 {
		return js.Undefined()
	}
	return args[1]
}
