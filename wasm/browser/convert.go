//go:build js && wasm

package main

import (
	"encoding/binary"
	"fmt"
	"image"
	"math"
	"strconv"

	"syscall/js"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// maxSafeInteger is Number.MAX_SAFE_INTEGER, 2^53 - 1, the largest integer
// a JS Number holds exactly.
const maxSafeInteger = 1<<53 - 1

// JS functions the conversions call. They run through js.Value.Invoke and
// Call, whose JS side catches exceptions and hands them to Go as a panic,
// which the call boundary recovers.
var (
	reflectGet     = js.Global().Get("Reflect").Get("get")
	objectToString = js.Global().Get("Object").Get("prototype").Get("toString")
)

// typeTag returns the tag of Object.prototype.toString, such as "Number",
// "BigInt", "String", "Uint8Array" or "Undefined". Unlike js.Value.Type it
// works for every value: Type panics on a BigInt.
func typeTag(v js.Value) string {
	tag := objectToString.Call("call", v).String()
	// "[object Name]"
	if len(tag) > len("[object ]") {
		return tag[len("[object ") : len(tag)-1]
	}
	return tag
}

// get returns v[name]. js.Value.Get would let an exception from a getter
// or a Proxy unwind through Go's stack and leave the module broken, while
// Reflect.get through Invoke turns it into a recoverable panic.
func get(v js.Value, name string) js.Value {
	return reflectGet.Invoke(v, name)
}

// property returns opts[name], or undefined when opts is undefined or
// null. checkOptions has rejected the other non-objects.
func property(opts js.Value, name string) js.Value {
	if isMissing(opts) {
		return js.Undefined()
	}
	return get(opts, name)
}

// checkOptions rejects an options argument that is neither an object nor
// missing.
func checkOptions(opts js.Value) error {
	switch tag := typeTag(opts); tag {
	case "Undefined", "Null", "Number", "String", "Boolean", "BigInt", "Symbol":
		if !isMissing(opts) {
			return fmt.Errorf("%w: options must be an object, got %s", core.ErrInvalidInput, tag)
		}
	}
	return nil
}

func isMissing(v js.Value) bool { return v.IsUndefined() || v.IsNull() }

// bytesArg copies a Uint8Array, Uint8ClampedArray or ArrayBuffer into Go.
func bytesArg(name string, v js.Value) ([]byte, error) {
	switch tag := typeTag(v); tag {
	case "Uint8Array", "Uint8ClampedArray":
	case "ArrayBuffer":
		v = js.Global().Get("Uint8Array").New(v)
	default:
		return nil, fmt.Errorf("%s must be a Uint8Array or ArrayBuffer, got %s", name, tag)
	}
	data := make([]byte, get(v, "length").Int())
	js.CopyBytesToGo(data, v)
	return data, nil
}

// inputs is the image and caption of an embed or reconstruct call.
type inputs struct {
	image image.Image // nil for none
	text  string
}

func readInputs(opts js.Value) (inputs, error) {
	var in inputs
	if err := checkOptions(opts); err != nil {
		return inputs{}, err
	}
	imageValue, pixelsValue := property(opts, "image"), property(opts, "pixels")
	switch {
	case !isMissing(imageValue) && !isMissing(pixelsValue):
		return inputs{}, fmt.Errorf("%w: both image and pixels are set: give one", core.ErrInvalidInput)
	case !isMissing(imageValue):
		data, err := bytesArg("image", imageValue)
		if err != nil {
			return inputs{}, fmt.Errorf("%w: %w", core.ErrInvalidImage, err)
		}
		if in.image, err = core.DecodeImage(data); err != nil {
			return inputs{}, err
		}
	case !isMissing(pixelsValue):
		img, err := readPixels(pixelsValue)
		if err != nil {
			return inputs{}, err
		}
		in.image = img
	}
	text := property(opts, "text")
	switch tag := typeTag(text); tag {
	case "Undefined", "Null":
	case "String":
		in.text = text.String()
	default:
		return inputs{}, fmt.Errorf("%w: text must be a string, got %s", core.ErrInvalidInput, tag)
	}
	return in, nil
}

// readPixels copies {data, width, height}, straight-alpha RGBA as in an
// ImageData, into an NRGBA image.
func readPixels(v js.Value) (*image.NRGBA, error) {
	width, err := intProperty(v, "width")
	if err != nil {
		return nil, err
	}
	height, err := intProperty(v, "height")
	if err != nil {
		return nil, err
	}
	if width <= 0 || height <= 0 || int64(width)*int64(height) > core.MaxImagePixels {
		return nil, fmt.Errorf("%w: pixels are %dx%d, want a positive width and height with at most %d pixels (MaxImagePixels)",
			core.ErrInvalidImage, width, height, core.MaxImagePixels)
	}
	data := property(v, "data")
	switch tag := typeTag(data); tag {
	case "Uint8ClampedArray", "Uint8Array":
	default:
		return nil, fmt.Errorf("%w: pixels.data must be a Uint8ClampedArray, got %s", core.ErrInvalidImage, tag)
	}
	if n, want := get(data, "length").Int(), 4*width*height; n != want {
		return nil, fmt.Errorf("%w: pixels.data has %d bytes, want 4*width*height = %d", core.ErrInvalidImage, n, want)
	}
	img := image.NewNRGBA(image.Rect(0, 0, width, height))
	js.CopyBytesToGo(img.Pix, data)
	return img, nil
}

// intProperty reads pixels[name], a Number that must be an integer.
func intProperty(pixels js.Value, name string) (int, error) {
	p := property(pixels, name)
	if typeTag(p) != "Number" {
		return 0, fmt.Errorf("%w: pixels.%s must be a number, got %s", core.ErrInvalidImage, name, describe(p))
	}
	f := p.Float()
	if f != math.Trunc(f) || math.Abs(f) > maxSafeInteger {
		return 0, fmt.Errorf("%w: pixels.%s is %v, want an integer", core.ErrInvalidImage, name, f)
	}
	return int(f), nil
}

func poolingOption(opts js.Value) (core.Pooling, error) {
	v := property(opts, "pooling")
	if isMissing(v) {
		return core.PoolCLS, nil
	}
	if typeTag(v) == "String" {
		switch v.String() {
		case "cls":
			return core.PoolCLS, nil
		case "mean":
			return core.PoolMean, nil
		}
	}
	return 0, fmt.Errorf("%w: pooling is %s, want \"cls\" or \"mean\"", core.ErrInvalidInput, describe(v))
}

func reconstructOptions(opts js.Value) (core.ReconstructOptions, error) {
	out := core.DefaultReconstructOptions()
	var err error
	if out.ImageMaskRatio, err = numberOption(opts, "imageMaskRatio", out.ImageMaskRatio); err != nil {
		return out, err
	}
	if out.TextMaskRatio, err = numberOption(opts, "textMaskRatio", out.TextMaskRatio); err != nil {
		return out, err
	}
	topK, err := numberOption(opts, "topK", float64(out.TopK))
	if err != nil {
		return out, err
	}
	if topK != math.Trunc(topK) || topK < 0 || topK > math.MaxInt32 {
		return out, fmt.Errorf("%w: topK is %v, want a positive integer", core.ErrInvalidInput, topK)
	}
	out.TopK = int(topK)
	if out.Seed, err = seedOption(property(opts, "seed")); err != nil {
		return out, err
	}

	imageMask, textMask := property(opts, "imageMask"), property(opts, "textMask")
	if isMissing(imageMask) && isMissing(textMask) {
		return out, nil
	}
	out.Masks = &core.Masks{}
	if out.Masks.Image, err = maskOption("imageMask", imageMask); err != nil {
		return out, err
	}
	if out.Masks.Text, err = maskOption("textMask", textMask); err != nil {
		return out, err
	}
	return out, nil
}

// numberOption reads a Number option, or returns fallback when it is
// missing.
func numberOption(opts js.Value, name string, fallback float64) (float64, error) {
	v := property(opts, name)
	if isMissing(v) {
		return fallback, nil
	}
	if typeTag(v) != "Number" {
		return 0, fmt.Errorf("%w: %s must be a number, got %s", core.ErrInvalidInput, name, describe(v))
	}
	return v.Float(), nil
}

// seedOption reads a uint64 seed from a safe-integer Number or a BigInt.
// A BigInt travels as its decimal string, since syscall/js has no BigInt
// conversion.
func seedOption(v js.Value) (uint64, error) {
	switch typeTag(v) {
	case "Undefined", "Null":
		return 0, nil
	case "Number":
		f := v.Float()
		if f != math.Trunc(f) || f < 0 || f > maxSafeInteger {
			return 0, fmt.Errorf("%w: seed %v is not a safe non-negative integer: pass a BigInt for seeds above 2^53 - 1", core.ErrInvalidInput, f)
		}
		return uint64(f), nil
	case "BigInt":
		text := js.Global().Call("String", v).String()
		seed, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: seed %sn is outside 0 to 2^64 - 1", core.ErrInvalidInput, text)
		}
		return seed, nil
	default:
		return 0, fmt.Errorf("%w: seed must be a Number or a BigInt, got %s", core.ErrInvalidInput, describe(v))
	}
}

// maskOption reads a Uint8Array mask, nonzero meaning hidden, or nil when
// it is missing.
func maskOption(name string, v js.Value) ([]bool, error) {
	if isMissing(v) {
		return nil, nil
	}
	data, err := bytesArg(name, v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", core.ErrInvalidInput, err)
	}
	mask := make([]bool, len(data))
	for i, b := range data {
		mask[i] = b != 0
	}
	return mask, nil
}

// describe names a value's type for an error message, quoting strings.
func describe(v js.Value) string {
	if tag := typeTag(v); tag != "String" {
		return tag
	}
	return strconv.Quote(v.String())
}

// float32Array copies values into a new Float32Array. JS typed arrays use
// the platform's byte order, which is little-endian on every platform that
// runs WebAssembly (WebAssembly memory itself is little-endian).
func float32Array(values []float32) js.Value {
	raw := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	bytes := js.Global().Get("Uint8Array").New(len(raw))
	js.CopyBytesToJS(bytes, raw)
	return js.Global().Get("Float32Array").New(bytes.Get("buffer"))
}

func uint8Array(data []byte) js.Value {
	out := js.Global().Get("Uint8Array").New(len(data))
	js.CopyBytesToJS(out, data)
	return out
}

func maskArray(mask []bool) any {
	if mask == nil {
		return nil
	}
	data := make([]byte, len(mask))
	for i, hidden := range mask {
		if hidden {
			data[i] = 1
		}
	}
	return uint8Array(data)
}

// imageObject returns {data: Uint8ClampedArray, width, height}, the shape
// of an ImageData, for an opaque RGBA image with bounds at the origin.
func imageObject(img *image.RGBA) any {
	bounds := img.Bounds()
	width, height := bounds.Dx(), bounds.Dy()
	pixels := make([]byte, 0, 4*width*height)
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		start := img.PixOffset(bounds.Min.X, y)
		pixels = append(pixels, img.Pix[start:start+4*width]...)
	}
	data := js.Global().Get("Uint8ClampedArray").New(uint8Array(pixels).Get("buffer"))
	return map[string]any{"data": data, "width": width, "height": height}
}

func reconstructionObject(r *core.PipelineReconstruction) js.Value {
	out := map[string]any{
		"original":      nil,
		"masked":        nil,
		"reconstructed": nil,
		"pixelPred":     nil,
		"imageMask":     maskArray(r.Masks.Image),
		"textMask":      maskArray(r.Masks.Text),
		"tokens":        []any{},
		"hidden":        []any{},
		"predictions":   []any{},
	}
	if r.Image != nil {
		out["original"] = imageObject(r.Image.Original)
		out["masked"] = imageObject(r.Image.Masked)
		out["reconstructed"] = imageObject(r.Image.Reconstructed)
		out["pixelPred"] = float32Array(r.Raw.PixelPred)
	}
	if r.Text != nil {
		tokens := make([]any, len(r.Text.Tokens))
		hidden := make([]any, len(r.Text.Hidden))
		for i, token := range r.Text.Tokens {
			tokens[i] = token
			hidden[i] = r.Text.Hidden[i]
		}
		predictions := make([]any, len(r.Text.Predictions))
		for i, p := range r.Text.Predictions {
			candidates := make([]any, len(p.Candidates))
			for j, c := range p.Candidates {
				candidates[j] = map[string]any{"id": int(c.ID), "token": c.Token, "prob": float64(c.Prob)}
			}
			predictions[i] = map[string]any{"position": p.Position, "original": p.Original, "candidates": candidates}
		}
		out["tokens"], out["hidden"], out["predictions"] = tokens, hidden, predictions
	}
	return js.ValueOf(out)
}
