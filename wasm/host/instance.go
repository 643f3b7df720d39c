package host

import (
	"context"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/m3ae-edge/m3ae-edge/wasm/abi"
)

// exportNames lists the functions every plugin module must export, besides
// _initialize.
var exportNames = []string{
	"m3ae_abi_version", "m3ae_alloc", "m3ae_free", "m3ae_load", "m3ae_release",
	"m3ae_config", "m3ae_embed", "m3ae_reconstruct", "m3ae_last_error",
}

// instance is one guest module with the handles of the models it has
// loaded. Only one goroutine uses an instance at a time: the pool hands it
// out through a channel.
type instance struct {
	module api.Module
	memory api.Memory

	abiVersion, alloc, free, load, release api.Function
	config, embed, reconstruct, lastError  api.Function

	// handles maps each model loaded into this instance to its guest
	// handle.
	handles map[*Model]int32
	// stderr keeps the start of what the guest writes to standard error
	// during a call, where Go's runtime writes the reason for a crash.
	stderr *stderrWriter
}

func newInstance(module api.Module, stderr *stderrWriter) (*instance, error) {
	inst := &instance{
		module:  module,
		memory:  module.Memory(),
		handles: map[*Model]int32{},
		stderr:  stderr,
	}
	if inst.memory == nil {
		return nil, fmt.Errorf("module exports no memory")
	}
	functions := []*api.Function{
		&inst.abiVersion, &inst.alloc, &inst.free, &inst.load, &inst.release,
		&inst.config, &inst.embed, &inst.reconstruct, &inst.lastError,
	}
	for i, name := range exportNames {
		*functions[i] = module.ExportedFunction(name)
		if *functions[i] == nil {
			return nil, fmt.Errorf("module does not export %s", name)
		}
	}
	return inst, nil
}

// call runs fn and wraps any failure that is not a status code, a trap,
// an exit or a cancelled context, in ErrTrap with the guest's last
// standard error output.
func (inst *instance) call(ctx context.Context, name string, fn api.Function, params ...uint64) ([]uint64, error) {
	results, err := fn.Call(ctx, params...)
	if err != nil {
		return nil, inst.trap(name, err)
	}
	if len(results) != 1 {
		return nil, inst.trap(name, fmt.Errorf("%d results, want 1", len(results)))
	}
	return results, nil
}

func (inst *instance) trap(name string, err error) error {
	if message := inst.stderr.message(); message != "" {
		return fmt.Errorf("%w: %s: guest wrote %q: %w", ErrTrap, name, message, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrTrap, name, err)
}

// guestError reads the message of the failed call op.
func (inst *instance) guestError(ctx context.Context, op string, code abi.Code) error {
	if code == abi.CodeOK {
		code = abi.CodeInternal // a failure must carry a code, so this guest is broken
	}
	message := code.String()
	results, err := inst.call(ctx, "m3ae_last_error", inst.lastError)
	if err != nil {
		return err
	}
	if ptr, n, _, ok := abi.Unpack(results[0]); ok {
		if view, ok := inst.memory.Read(ptr, n); ok {
			message = string(view)
		}
	}
	return &GuestError{Op: op, Code: code, Message: message}
}

// writeRequest copies data into a new guest buffer and returns its
// address. The caller frees it with freeBuffer.
func (inst *instance) writeRequest(ctx context.Context, data []byte) (uint32, error) {
	if len(data) == 0 || len(data) > abi.MaxAllocBytes {
		return 0, fmt.Errorf("%w: request of %d bytes, want 1 to %d", abi.ErrInvalidRequest, len(data), abi.MaxAllocBytes)
	}
	results, err := inst.call(ctx, "m3ae_alloc", inst.alloc, uint64(len(data)))
	if err != nil {
		return 0, err
	}
	ptr := uint32(results[0])
	if ptr == 0 {
		return 0, inst.guestError(ctx, "alloc", abi.CodeInvalidRequest)
	}
	if !inst.memory.Write(ptr, data) {
		return 0, inst.trap("m3ae_alloc", fmt.Errorf("buffer at %#x of %d bytes is outside guest memory", ptr, len(data)))
	}
	return ptr, nil
}

func (inst *instance) freeBuffer(ctx context.Context, ptr uint32) {
	// A failure here means the instance is closed or trapped, which the
	// call that follows reports.
	_, _ = inst.call(ctx, "m3ae_free", inst.free, uint64(ptr))
}

// loadModel copies a model file into the guest and returns its handle.
func (inst *instance) loadModel(ctx context.Context, data []byte) (int32, error) {
	ptr, err := inst.writeRequest(ctx, data)
	if err != nil {
		return 0, err
	}
	defer inst.freeBuffer(ctx, ptr)
	results, err := inst.call(ctx, "m3ae_load", inst.load, uint64(ptr), uint64(len(data)))
	if err != nil {
		return 0, err
	}
	handle := int32(uint32(results[0]))
	if handle <= 0 {
		return 0, inst.guestError(ctx, "load", abi.Code(-handle))
	}
	return handle, nil
}

// releaseModel unloads a handle. The guest only drops its references, so
// the memory is reused by later allocations rather than returned.
func (inst *instance) releaseModel(ctx context.Context, handle int32) error {
	results, err := inst.call(ctx, "m3ae_release", inst.release, uint64(uint32(handle)))
	if err != nil {
		return err
	}
	if code := abi.Code(uint32(results[0])); code != abi.CodeOK {
		return inst.guestError(ctx, "release", code)
	}
	return nil
}

// readResponse checks a packed result and passes the response bytes to
// decode. The bytes are a view of guest memory, valid only during decode.
func (inst *instance) readResponse(ctx context.Context, op string, packed uint64, decode func([]byte) error) error {
	ptr, n, code, ok := abi.Unpack(packed)
	if !ok {
		return inst.guestError(ctx, op, code)
	}
	view, ok := inst.memory.Read(ptr, n)
	if !ok {
		return inst.trap(op, fmt.Errorf("%w: response at %#x of %d bytes is outside guest memory", abi.ErrInvalidResponse, ptr, n))
	}
	if err := decode(view); err != nil {
		return inst.trap(op, err)
	}
	return nil
}

// configOf returns the config response of a loaded model.
func (inst *instance) configOf(ctx context.Context, handle int32, decode func([]byte) error) error {
	results, err := inst.call(ctx, "m3ae_config", inst.config, uint64(uint32(handle)))
	if err != nil {
		return err
	}
	return inst.readResponse(ctx, "config", results[0], decode)
}

// infer runs m3ae_embed or m3ae_reconstruct on request bytes.
func (inst *instance) infer(ctx context.Context, op string, fn api.Function, handle int32, request []byte, decode func([]byte) error) error {
	ptr, err := inst.writeRequest(ctx, request)
	if err != nil {
		return err
	}
	defer inst.freeBuffer(ctx, ptr)
	results, err := inst.call(ctx, "m3ae_"+op, fn, uint64(uint32(handle)), uint64(ptr), uint64(len(request)))
	if err != nil {
		return err
	}
	return inst.readResponse(ctx, op, results[0], decode)
}

// stderrWriter keeps the first max bytes that the guest writes to its
// standard error during one call. Go's runtime starts a crash report with
// the reason ("fatal error: out of memory", "panic: ...") and follows it
// with every goroutine's stack, so the start is the part worth quoting.
type stderrWriter struct {
	buf []byte
	max int
}

func (w *stderrWriter) Write(p []byte) (int, error) {
	if room := w.max - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// reset drops what earlier calls wrote.
func (w *stderrWriter) reset() { w.buf = w.buf[:0] }

// message returns the first paragraph written since the last reset.
func (w *stderrWriter) message() string {
	text := strings.TrimSpace(string(w.buf))
	if end := strings.Index(text, "\n\n"); end >= 0 {
		text = text[:end]
	}
	return text
}
