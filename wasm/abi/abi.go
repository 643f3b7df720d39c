// Package abi defines the binary interface between the m3ae plugin (the
// GOOS=wasip1 build of wasm/plugin) and its host: the limits, the status
// codes, and the little-endian encoding of every request and response.
//
// The guest and the host both import this package, so it uses only the
// standard library and core. docs/PLUGIN_ABI.md is the full specification,
// with the exports, the memory ownership rules and the byte layouts.
package abi

import (
	"errors"

	"github.com/m3ae-edge/m3ae-edge/core"
)

// Version is the ABI version that the guest's m3ae_abi_version export
// returns. A host rejects a module with any other version, because the byte
// layouts below may differ.
const Version = 1

// Limits on the buffers that cross the boundary. The guest rejects a larger
// request with CodeInvalidRequest, and the host checks the same limits
// before it copies anything into the guest.
const (
	// MaxModelBytes is the largest model file m3ae_load accepts, 1 GiB.
	// Loading holds the file and its decoded tensors in guest memory at
	// once, about twice the file size, and a wasm32 memory is at most
	// 4 GiB. Go's collector needs headroom above the live heap, so a
	// larger file would not load reliably.
	MaxModelBytes = 1 << 30
	// MaxTextBytes is the longest caption a request may carry, 1 MiB. The
	// tokenizer reads only the first core.MaxInputBytes (64 KiB) of a text,
	// so this limit bounds the copy and never changes a result.
	MaxTextBytes = 1 << 20
	// MaxRequestBytes is the largest embed or reconstruct request, 256
	// MiB. It holds the largest raw pixel image core accepts
	// (4 bytes x core.MaxImagePixels, 160 MB) or encoded image
	// (core.MaxImageBytes, 64 MiB), plus the caption and the masks.
	MaxRequestBytes = 256 << 20
	// MaxAllocBytes is the largest buffer m3ae_alloc returns, the larger of
	// MaxModelBytes and MaxRequestBytes.
	MaxAllocBytes = max(MaxModelBytes, MaxRequestBytes)
)

// Code is the status of a call across the boundary. Zero means success.
// Exports that return a handle return the negated code on failure, and
// exports that return a packed buffer return the code in the low 32 bits
// with the high 32 bits zero.
type Code uint32

// Status codes. docs/PLUGIN_ABI.md lists which export returns which.
const (
	CodeOK Code = iota
	// CodeInvalidRequest marks a request that breaks the ABI: a pointer
	// the guest did not allocate, a length over a limit, or bytes that do
	// not decode.
	CodeInvalidRequest
	// CodeInvalidModelFile marks a model file that core cannot read.
	CodeInvalidModelFile
	// CodeInvalidImage marks image bytes or pixels that core rejects.
	CodeInvalidImage
	// CodeInvalidInput marks inputs that do not fit the model: no image
	// and no text, a mask ratio outside [0, 1], a mask of the wrong length.
	CodeInvalidInput
	// CodeUnknownHandle marks a model handle that is not loaded.
	CodeUnknownHandle
	// CodeInternal marks a failure inside the guest that its input does
	// not explain, such as a recovered panic.
	CodeInternal
)

// Sentinel errors of the codes that core has no sentinel for.
var (
	// ErrInvalidRequest marks a request or response that breaks the ABI.
	ErrInvalidRequest = errors.New("invalid plugin request")
	// ErrUnknownHandle marks a model handle that the guest does not know.
	ErrUnknownHandle = errors.New("unknown model handle")
	// ErrInternal marks a failure inside the guest.
	ErrInternal = errors.New("internal plugin error")
)

// Err returns the sentinel error of c: a core sentinel for the model, image
// and input codes, one of this package's for the others, and nil for
// CodeOK.
func (c Code) Err() error {
	switch c {
	case CodeOK:
		return nil
	case CodeInvalidRequest:
		return ErrInvalidRequest
	case CodeInvalidModelFile:
		return core.ErrInvalidModelFile
	case CodeInvalidImage:
		return core.ErrInvalidImage
	case CodeInvalidInput:
		return core.ErrInvalidInput
	case CodeUnknownHandle:
		return ErrUnknownHandle
	default:
		return ErrInternal
	}
}

// String returns the code's name.
func (c Code) String() string {
	switch c {
	case CodeOK:
		return "ok"
	case CodeInvalidRequest:
		return "invalid request"
	case CodeInvalidModelFile:
		return "invalid model file"
	case CodeInvalidImage:
		return "invalid image"
	case CodeInvalidInput:
		return "invalid input"
	case CodeUnknownHandle:
		return "unknown handle"
	case CodeInternal:
		return "internal error"
	default:
		return "unknown code"
	}
}

// CodeOf returns the code of err, matching the sentinels with errors.Is in
// the order of the Code constants. An error that matches none is
// CodeInternal.
func CodeOf(err error) Code {
	switch {
	case err == nil:
		return CodeOK
	case errors.Is(err, ErrInvalidRequest):
		return CodeInvalidRequest
	case errors.Is(err, core.ErrInvalidModelFile), errors.Is(err, core.ErrInvalidConfig):
		return CodeInvalidModelFile
	case errors.Is(err, core.ErrInvalidImage):
		return CodeInvalidImage
	case errors.Is(err, core.ErrInvalidInput):
		return CodeInvalidInput
	case errors.Is(err, ErrUnknownHandle):
		return CodeUnknownHandle
	default:
		return CodeInternal
	}
}

// Pack returns the uint64 that a buffer-returning export returns for a
// buffer at ptr of length n: ptr in the high 32 bits, n in the low ones.
func Pack(ptr, n uint32) uint64 { return uint64(ptr)<<32 | uint64(n) }

// PackError returns the uint64 that a buffer-returning export returns on
// failure: zero high bits and the code in the low ones.
func PackError(code Code) uint64 { return uint64(code) }

// Unpack splits a buffer-returning export's result. ok is false when the
// call failed, and code is then its status.
func Unpack(packed uint64) (ptr, n uint32, code Code, ok bool) {
	ptr = uint32(packed >> 32)
	if ptr == 0 {
		return 0, 0, Code(uint32(packed)), false
	}
	return ptr, uint32(packed), CodeOK, true
}
