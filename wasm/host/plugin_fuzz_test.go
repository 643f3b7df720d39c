package host_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"math"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/abi"
)

// fuzzGuest is one plugin instance, built from wasm/plugin by TestMain, with
// the micro model loaded. The fuzz target reuses it for every input, so a
// request that corrupts the guest's state shows up in later ones too.
type fuzzGuest struct {
	module api.Module
	handle int32
}

func newFuzzGuest(f *testing.F) *fuzzGuest {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	f.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	module, err := r.InstantiateWithConfig(ctx, pluginWasm, wazero.NewModuleConfig().
		WithStartFunctions("_initialize").WithSysNanotime().WithSysWalltime())
	if err != nil {
		f.Fatal(err)
	}
	g := &fuzzGuest{module: module}
	ptr, err := g.write(microModel)
	if err != nil {
		f.Fatal(err)
	}
	defer g.call("m3ae_free", uint64(ptr))
	results, err := g.call("m3ae_load", uint64(ptr), uint64(len(microModel)))
	if err != nil {
		f.Fatal(err)
	}
	if g.handle = int32(uint32(results)); g.handle <= 0 {
		f.Fatalf("m3ae_load(micro) = %d, want a handle", g.handle)
	}
	return g
}

// call calls an export and returns its result, or 0 for one without.
func (g *fuzzGuest) call(name string, params ...uint64) (uint64, error) {
	results, err := g.module.ExportedFunction(name).Call(context.Background(), params...)
	if err != nil || len(results) == 0 {
		return 0, err
	}
	return results[0], nil
}

// write copies data into a new guest buffer and returns its address.
func (g *fuzzGuest) write(data []byte) (uint32, error) {
	ptr, err := g.call("m3ae_alloc", uint64(len(data)))
	if err != nil {
		return 0, err
	}
	if ptr == 0 || !g.module.Memory().Write(uint32(ptr), data) {
		return 0, errAllocFailed
	}
	return uint32(ptr), nil
}

// read returns a copy of the guest buffer of a packed result.
func (g *fuzzGuest) read(ptr, n uint32) ([]byte, bool) {
	view, ok := g.module.Memory().Read(ptr, n)
	return bytes.Clone(view), ok
}

type fuzzError string

func (e fuzzError) Error() string { return string(e) }

const errAllocFailed = fuzzError("m3ae_alloc returned no writable buffer")

// FuzzPluginRequest sends arbitrary bytes as an m3ae_embed or
// m3ae_reconstruct request through wazero into the real plugin module, and
// runs the same bytes through the guest's steps natively (abi decode, image
// decode, core.Pipeline). The guest must never trap or report
// CodeInternal, must fail with the native status code whenever the native
// path fails, and must otherwise return the native response bit for bit.
// Seeds are valid requests of every kind, which the fuzzer mutates.
func FuzzPluginRequest(f *testing.F) {
	// Seeds stay under a few hundred bytes, because the fuzzer minimizes
	// every new input in time quadratic in its length, and each run here
	// goes through wazero.
	pixels := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	for i := range pixels.Pix {
		pixels.Pix[i] = byte(40 * i)
	}
	var encoded bytes.Buffer
	if err := png.Encode(&encoded, pixels); err != nil {
		f.Fatal(err)
	}
	pngData := encoded.Bytes()
	embeds := []abi.EmbedRequest{
		{Text: "a red apple"},
		{Image: abi.Image{Encoded: pngData}, Pooling: core.PoolMean},
		{Image: abi.Image{Pixels: pixels}, Text: "a cat"},
	}
	for _, req := range embeds {
		data, err := abi.EncodeEmbedRequest(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false)
	}
	reconstructs := []abi.ReconstructRequest{
		{Text: "strawberries on a plate", Options: core.ReconstructOptions{TextMaskRatio: 0.5, Seed: 3, TopK: 2}},
		{Image: abi.Image{Pixels: pixels}, Options: core.ReconstructOptions{ImageMaskRatio: 0.75}},
		{Image: abi.Image{Encoded: pngData}, Text: "x", Options: core.ReconstructOptions{
			Masks: &core.Masks{Image: make([]bool, 4), Text: []bool{true}}}},
	}
	for _, req := range reconstructs {
		data, err := abi.EncodeReconstructRequest(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, true)
	}

	guest := newFuzzGuest(f)
	native, err := core.Load(microModel)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, request []byte, reconstruct bool) {
		if len(request) == 0 {
			return // m3ae_alloc(0) fails by design, which the ABI test covers
		}
		wantCode, wantResponse := nativeResponse(native, request, reconstruct)

		ptr, err := guest.write(request)
		if err != nil {
			t.Fatalf("write a %d-byte request: %v", len(request), err)
		}
		defer guest.call("m3ae_free", uint64(ptr))
		export := "m3ae_embed"
		if reconstruct {
			export = "m3ae_reconstruct"
		}
		packed, err := guest.call(export, uint64(uint32(guest.handle)), uint64(ptr), uint64(len(request)))
		if err != nil {
			t.Fatalf("%s trapped: %v", export, err)
		}
		responsePtr, n, code, ok := abi.Unpack(packed)
		if !ok {
			message := guest.lastError(t)
			if code != wantCode {
				t.Fatalf("%s failed with %v (%s), want %v as natively", export, code, message, wantCode)
			}
			if message == "" {
				t.Fatalf("%s failed with %v and no message", export, code)
			}
			return
		}
		if wantCode != abi.CodeOK {
			t.Fatalf("%s succeeded, want %v as natively", export, wantCode)
		}
		response, ok := guest.read(responsePtr, n)
		if !ok {
			t.Fatalf("%s returned %d bytes at %#x, outside guest memory", export, n, responsePtr)
		}
		if !bytes.Equal(response, wantResponse) {
			t.Fatalf("%s response (%d bytes) differs from the native one (%d bytes)", export, len(response), len(wantResponse))
		}
		if reconstruct {
			return
		}
		embedding, err := abi.DecodeEmbedding(response)
		if err != nil {
			t.Fatalf("%s response does not decode: %v", export, err)
		}
		for i, v := range embedding {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s embedding[%d] = %v, want a finite value", export, i, v)
			}
		}
	})
}

// lastError returns the guest's last error message.
func (g *fuzzGuest) lastError(t *testing.T) string {
	packed, err := g.call("m3ae_last_error")
	if err != nil {
		t.Fatalf("m3ae_last_error trapped: %v", err)
	}
	ptr, n, _, ok := abi.Unpack(packed)
	if !ok {
		return ""
	}
	message, _ := g.read(ptr, n)
	return string(message)
}

// nativeResponse runs request through the plugin's steps with core on the
// host and returns the status code and the response bytes the guest must
// give.
func nativeResponse(p *core.Pipeline, request []byte, reconstruct bool) (abi.Code, []byte) {
	if reconstruct {
		req, err := abi.DecodeReconstructRequest(request)
		if err != nil {
			return abi.CodeOf(err), nil
		}
		img, err := req.Image.Decode()
		if err != nil {
			return abi.CodeOf(err), nil
		}
		result, err := p.Reconstruct(img, req.Text, req.Options)
		if err != nil {
			return abi.CodeOf(err), nil
		}
		out, err := abi.EncodeReconstruction(abi.NewReconstruction(result))
		if err != nil {
			return abi.CodeOf(err), nil
		}
		return abi.CodeOK, out
	}
	req, err := abi.DecodeEmbedRequest(request)
	if err != nil {
		return abi.CodeOf(err), nil
	}
	img, err := req.Image.Decode()
	if err != nil {
		return abi.CodeOf(err), nil
	}
	embedding, err := p.Embed(img, req.Text, req.Pooling)
	if err != nil {
		return abi.CodeOf(err), nil
	}
	return abi.CodeOK, abi.EncodeEmbedding(embedding)
}
