//go:build wasip1

// Command plugin is the m3ae WebAssembly plugin: a WASI reactor that
// exports the model's load, embed and reconstruct calls to any host, such
// as the wazero host library in wasm/host.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o m3ae-plugin.wasm ./wasm/plugin
//
// The host must call _initialize once before any export. docs/PLUGIN_ABI.md
// specifies every export, who owns which buffer and for how long, and the
// byte layouts of requests and responses (package wasm/abi).
package main

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/abi"
)

// main is empty: a c-shared build runs package initialization from
// _initialize and never calls main.
func main() {}

// Guest state. Go's wasm runtime is single-threaded and the host runs one
// export at a time per instance, so nothing here needs a lock.
var (
	// allocations keeps every buffer that m3ae_alloc handed out reachable,
	// so the collector neither frees it nor reuses its memory while the
	// host holds its address. Go's collector (as of Go 1.26) does not move
	// heap objects, so the address stays valid.
	allocations = map[uint32][]byte{}
	// models maps handles to loaded models.
	models     = map[int32]*core.Pipeline{}
	lastHandle int32
	// response is the buffer that the last m3ae_embed, m3ae_reconstruct or
	// m3ae_config call returned. The next such call replaces it.
	response []byte
	// lastError is the message of the last failed call. The next failure
	// replaces it.
	lastError []byte
)

//go:wasmexport m3ae_abi_version
func abiVersion() uint32 { return abi.Version }

// m3ae_alloc returns a zeroed buffer of size bytes that the host may write
// and pass to the other exports, or 0 when size is 0 or over
// abi.MaxAllocBytes. The buffer stays valid until m3ae_free.
//
//go:wasmexport m3ae_alloc
func alloc(size uint32) (ptr uint32) {
	defer recoverInto(func(err error) { ptr = 0; setError(err) })
	if size == 0 || size > abi.MaxAllocBytes {
		setError(fmt.Errorf("%w: allocation of %d bytes, want 1 to %d (abi.MaxAllocBytes)", abi.ErrInvalidRequest, size, abi.MaxAllocBytes))
		return 0
	}
	buf := make([]byte, size)
	ptr = addressOf(buf)
	allocations[ptr] = buf
	return ptr
}

// m3ae_free releases a buffer from m3ae_alloc. Freeing 0 or an unknown
// address does nothing.
//
//go:wasmexport m3ae_free
func free(ptr uint32) { delete(allocations, ptr) }

// m3ae_load reads a model file from the buffer at ptr and returns a
// positive handle, or the negated code on failure. The guest copies what it
// needs, so the host may free the buffer right after the call.
//
//go:wasmexport m3ae_load
func load(ptr, size uint32) (handle int32) {
	defer recoverInto(func(err error) { handle = -int32(setError(err)) })
	data, err := requestBytes(ptr, size, abi.MaxModelBytes)
	if err != nil {
		return -int32(setError(err))
	}
	pipeline, err := core.Load(data)
	if err != nil {
		return -int32(setError(err))
	}
	handle, err = nextHandle()
	if err != nil {
		return -int32(setError(err))
	}
	models[handle] = pipeline
	return handle
}

// nextHandle returns the lowest positive handle above the last one that is
// not in use, wrapping around at math.MaxInt32.
func nextHandle() (int32, error) {
	for range math.MaxInt32 {
		if lastHandle == math.MaxInt32 {
			lastHandle = 0
		}
		lastHandle++
		if _, used := models[lastHandle]; !used {
			return lastHandle, nil
		}
	}
	return 0, fmt.Errorf("%w: every model handle is in use: release a model first", abi.ErrInternal)
}

// m3ae_release unloads a model and returns 0, or CodeUnknownHandle.
//
//go:wasmexport m3ae_release
func release(handle int32) uint32 {
	if _, ok := models[handle]; !ok {
		return uint32(setError(unknownHandle(handle)))
	}
	delete(models, handle)
	return uint32(abi.CodeOK)
}

// m3ae_config returns the model's architecture as a packed response.
//
//go:wasmexport m3ae_config
func config(handle int32) (packed uint64) {
	defer recoverInto(func(err error) { packed = abi.PackError(setError(err)) })
	pipeline, ok := models[handle]
	if !ok {
		return abi.PackError(setError(unknownHandle(handle)))
	}
	return setResponse(abi.EncodeConfig(pipeline.Config()))
}

// m3ae_embed runs an abi.EmbedRequest read from the buffer at ptr and
// returns the embedding as a packed response. The guest does not keep the
// request after the call.
//
//go:wasmexport m3ae_embed
func embed(handle int32, ptr, size uint32) (packed uint64) {
	defer recoverInto(func(err error) { packed = abi.PackError(setError(err)) })
	pipeline, data, err := prepare(handle, ptr, size)
	if err != nil {
		return abi.PackError(setError(err))
	}
	req, err := abi.DecodeEmbedRequest(data)
	if err != nil {
		return abi.PackError(setError(err))
	}
	img, err := req.Image.Decode()
	if err != nil {
		return abi.PackError(setError(err))
	}
	embedding, err := pipeline.Embed(img, req.Text, req.Pooling)
	if err != nil {
		return abi.PackError(setError(err))
	}
	return setResponse(abi.EncodeEmbedding(embedding))
}

// m3ae_reconstruct runs an abi.ReconstructRequest read from the buffer at
// ptr and returns an abi.Reconstruction as a packed response. The guest
// does not keep the request after the call.
//
//go:wasmexport m3ae_reconstruct
func reconstruct(handle int32, ptr, size uint32) (packed uint64) {
	defer recoverInto(func(err error) { packed = abi.PackError(setError(err)) })
	pipeline, data, err := prepare(handle, ptr, size)
	if err != nil {
		return abi.PackError(setError(err))
	}
	req, err := abi.DecodeReconstructRequest(data)
	if err != nil {
		return abi.PackError(setError(err))
	}
	img, err := req.Image.Decode()
	if err != nil {
		return abi.PackError(setError(err))
	}
	result, err := pipeline.Reconstruct(img, req.Text, req.Options)
	if err != nil {
		return abi.PackError(setError(err))
	}
	out, err := abi.EncodeReconstruction(abi.NewReconstruction(result))
	if err != nil {
		return abi.PackError(setError(err))
	}
	return setResponse(out)
}

// m3ae_last_error returns the message of the last failed call as a packed
// buffer, or 0 when no call has failed.
//
//go:wasmexport m3ae_last_error
func lastErrorMessage() uint64 {
	if len(lastError) == 0 {
		return 0
	}
	return abi.Pack(addressOf(lastError), uint32(len(lastError)))
}

// prepare looks up the model and the request buffer of an inference call.
func prepare(handle int32, ptr, size uint32) (*core.Pipeline, []byte, error) {
	pipeline, ok := models[handle]
	if !ok {
		return nil, nil, unknownHandle(handle)
	}
	data, err := requestBytes(ptr, size, abi.MaxRequestBytes)
	if err != nil {
		return nil, nil, err
	}
	return pipeline, data, nil
}

// requestBytes returns the first size bytes of the allocation at ptr. Only
// buffers from m3ae_alloc are accepted, so a wrong pointer gets an error
// instead of reading whatever memory it points at.
func requestBytes(ptr, size uint32, limit int) ([]byte, error) {
	buf, ok := allocations[ptr]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: address %#x is not a buffer from m3ae_alloc", abi.ErrInvalidRequest, ptr)
	case int(size) > len(buf):
		return nil, fmt.Errorf("%w: length %d is over the %d bytes allocated at %#x", abi.ErrInvalidRequest, size, len(buf), ptr)
	case int(size) > limit:
		return nil, fmt.Errorf("%w: request is %d bytes, over the limit of %d", abi.ErrInvalidRequest, size, limit)
	}
	return buf[:size], nil
}

func unknownHandle(handle int32) error {
	return fmt.Errorf("%w: handle %d is not loaded: call m3ae_load first", abi.ErrUnknownHandle, handle)
}

// setResponse keeps out as the response buffer and returns it packed.
func setResponse(out []byte) uint64 {
	if len(out) == 0 {
		// An empty response has no address to pack, and no layout produces
		// one.
		return abi.PackError(setError(errors.New("internal error: empty response")))
	}
	response = out
	return abi.Pack(addressOf(out), uint32(len(out)))
}

// setError keeps err's message as the last error and returns its code.
func setError(err error) abi.Code {
	lastError = []byte(err.Error())
	return abi.CodeOf(err)
}

// recoverInto turns a panic into an error for fail. Recovering is right
// here: an unrecovered panic would exit the instance and lose every loaded
// model, and core's per-call buffers are rewritten on the next call, so
// the instance stays usable.
func recoverInto(fail func(error)) {
	if r := recover(); r != nil {
		fail(fmt.Errorf("%w: panic: %v", abi.ErrInternal, r))
	}
}

// addressOf returns the linear-memory address of buf's first byte. wasm32
// addresses fit in 32 bits.
func addressOf(buf []byte) uint32 {
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
}
