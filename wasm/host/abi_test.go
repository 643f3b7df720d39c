package host_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/m3ae-edge/m3ae-edge/wasm/abi"
)

// rawPlugin is one plugin instance called through wazero directly, the way
// a host that does not use this package calls it.
type rawPlugin struct {
	t      *testing.T
	ctx    context.Context
	module api.Module
}

func newRawPlugin(t *testing.T) *rawPlugin {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	t.Cleanup(func() { r.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	module, err := r.InstantiateWithConfig(ctx, pluginWasm, wazero.NewModuleConfig().
		WithStartFunctions("_initialize").WithSysNanotime().WithSysWalltime())
	if err != nil {
		t.Fatal(err)
	}
	return &rawPlugin{t: t, ctx: ctx, module: module}
}

// call calls an export and returns its result, or 0 for m3ae_free, which
// has none.
func (p *rawPlugin) call(name string, params ...uint64) uint64 {
	p.t.Helper()
	results, err := p.module.ExportedFunction(name).Call(p.ctx, params...)
	if err != nil {
		p.t.Fatalf("%s%v trapped: %v", name, params, err)
	}
	if len(results) == 0 {
		return 0
	}
	return results[0]
}

// lastError returns the message of the last failed call.
func (p *rawPlugin) lastError() string {
	p.t.Helper()
	ptr, n, _, ok := abi.Unpack(p.call("m3ae_last_error"))
	if !ok {
		return ""
	}
	message, ok := p.module.Memory().Read(ptr, n)
	if !ok {
		p.t.Fatalf("m3ae_last_error returned %d bytes at %#x, outside memory", n, ptr)
	}
	return string(message)
}

// write copies data into a new guest buffer and returns its address.
func (p *rawPlugin) write(data []byte) uint64 {
	p.t.Helper()
	ptr := p.call("m3ae_alloc", uint64(len(data)))
	if ptr == 0 || !p.module.Memory().Write(uint32(ptr), data) {
		p.t.Fatalf("m3ae_alloc(%d) = %#x, want a writable buffer", len(data), ptr)
	}
	return ptr
}

func TestPluginABIRejectsBadCalls(t *testing.T) {
	p := newRawPlugin(t)
	if got := p.call("m3ae_last_error"); got != 0 {
		t.Errorf("m3ae_last_error() before any failure = %#x, want 0", got)
	}
	if got := p.call("m3ae_abi_version"); got != abi.Version {
		t.Errorf("m3ae_abi_version() = %d, want %d", got, abi.Version)
	}

	model := p.write(microModel)
	handle := int32(uint32(p.call("m3ae_load", model, uint64(len(microModel)))))
	if handle <= 0 {
		t.Fatalf("m3ae_load(micro) = %d, want a handle: %s", handle, p.lastError())
	}
	p.call("m3ae_free", model)
	request, err := abi.EncodeEmbedRequest(abi.EmbedRequest{Text: "a cat"})
	if err != nil {
		t.Fatal(err)
	}
	ptr := p.write(request)
	size := uint64(len(request))

	// Each bad call must fail with its code and a message, and leave the
	// instance working.
	tests := []struct {
		name        string
		call        func() uint64 // returns the status code
		wantCode    abi.Code
		wantMessage string
	}{
		{"alloc 0 bytes", func() uint64 {
			if p.call("m3ae_alloc", 0) != 0 {
				return 0
			}
			return uint64(abi.CodeInvalidRequest)
		}, abi.CodeInvalidRequest, "allocation of 0 bytes"},
		{"alloc over MaxAllocBytes", func() uint64 {
			if p.call("m3ae_alloc", abi.MaxAllocBytes+1) != 0 {
				return 0
			}
			return uint64(abi.CodeInvalidRequest)
		}, abi.CodeInvalidRequest, "want 1 to 1073741824"},
		{"load from an unknown address", func() uint64 {
			return uint64(-int32(uint32(p.call("m3ae_load", 12345, 10))))
		}, abi.CodeInvalidRequest, "not a buffer from m3ae_alloc"},
		{"load past the buffer", func() uint64 {
			return uint64(-int32(uint32(p.call("m3ae_load", ptr, size+1))))
		}, abi.CodeInvalidRequest, "over the"},
		{"load a caption as a model", func() uint64 {
			return uint64(-int32(uint32(p.call("m3ae_load", ptr, size))))
		}, abi.CodeInvalidModelFile, "invalid model file"},
		{"embed on an unknown handle", func() uint64 {
			return p.call("m3ae_embed", 999, ptr, size)
		}, abi.CodeUnknownHandle, "handle 999 is not loaded"},
		{"embed a truncated request", func() uint64 {
			return p.call("m3ae_embed", uint64(handle), ptr, size-1)
		}, abi.CodeInvalidRequest, "embed request"},
		{"reconstruct an embed request", func() uint64 {
			return p.call("m3ae_reconstruct", uint64(handle), ptr, size)
		}, abi.CodeInvalidRequest, "reconstruct request"},
		{"config of an unknown handle", func() uint64 {
			return p.call("m3ae_config", 0)
		}, abi.CodeUnknownHandle, "handle 0"},
		{"release an unknown handle", func() uint64 {
			return p.call("m3ae_release", 999)
		}, abi.CodeUnknownHandle, "handle 999"},
	}
	for _, tt := range tests {
		if got := abi.Code(tt.call()); got != tt.wantCode {
			t.Errorf("%s: code = %v, want %v", tt.name, got, tt.wantCode)
		}
		if got := p.lastError(); !strings.Contains(got, tt.wantMessage) {
			t.Errorf("%s: message = %q, want it to contain %q", tt.name, got, tt.wantMessage)
		}
	}

	// Freeing twice, 0 or an unknown address does nothing.
	p.call("m3ae_free", 0)
	p.call("m3ae_free", 12345)

	// A request over MaxRequestBytes fails inside the guest too.
	big := p.call("m3ae_alloc", abi.MaxRequestBytes+1)
	if got := abi.Code(p.call("m3ae_embed", uint64(handle), big, abi.MaxRequestBytes+1)); got != abi.CodeInvalidRequest {
		t.Errorf("embed of %d bytes: code = %v, want %v", abi.MaxRequestBytes+1, got, abi.CodeInvalidRequest)
	}
	p.call("m3ae_free", big)

	// The instance still serves.
	packed := p.call("m3ae_embed", uint64(handle), ptr, size)
	responsePtr, n, code, ok := abi.Unpack(packed)
	if !ok {
		t.Fatalf("m3ae_embed after the bad calls failed with %v: %s", code, p.lastError())
	}
	response, _ := p.module.Memory().Read(responsePtr, n)
	embedding, err := abi.DecodeEmbedding(response)
	if err != nil || len(embedding) != 32 {
		t.Errorf("m3ae_embed after the bad calls = %d values, %v, want 32 values", len(embedding), err)
	}
	if got := abi.Code(p.call("m3ae_release", uint64(handle))); got != abi.CodeOK {
		t.Errorf("m3ae_release(%d) = %v, want ok", handle, got)
	}
}
