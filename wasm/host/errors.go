package host

import (
	"errors"
	"fmt"

	"github.com/m3ae-edge/m3ae-edge/wasm/abi"
)

var (
	// ErrClosed is returned by every call on a closed Plugin or Model.
	ErrClosed = errors.New("plugin or model is closed")
	// ErrTrap marks a call that the guest did not finish: a WebAssembly
	// trap (out of memory, unreachable, out-of-bounds access), an exit, or
	// output that does not decode. The pool discards the instance and
	// creates a fresh one, with its models re-loaded, for a later call.
	ErrTrap = errors.New("plugin instance trapped")
)

// GuestError is a call that the guest rejected with a status code, such as
// an invalid image or a corrupt model file. The instance stays usable.
//
// errors.Is matches the code's sentinel: core.ErrInvalidModelFile,
// core.ErrInvalidImage, core.ErrInvalidInput, abi.ErrInvalidRequest,
// abi.ErrUnknownHandle or abi.ErrInternal.
type GuestError struct {
	// Op is the call: load, embed, reconstruct, config, release or alloc.
	Op string
	// Code is the guest's status code.
	Code abi.Code
	// Message is the guest's error text, core's message for core errors.
	Message string
}

func (e *GuestError) Error() string {
	return fmt.Sprintf("m3ae plugin: %s: %s", e.Op, e.Message)
}

// Unwrap returns the sentinel of e.Code.
func (e *GuestError) Unwrap() error { return e.Code.Err() }
