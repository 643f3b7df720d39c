package core

import "errors"

// Sentinel errors. Functions wrap them with the value and step that failed,
// so callers test with errors.Is and show the whole message to users.
var (
	// ErrInvalidConfig marks an architecture config that cannot describe a
	// model.
	ErrInvalidConfig = errors.New("invalid model config")
	// ErrInvalidModelFile marks a model file that is truncated, malformed
	// or inconsistent with its own config.
	ErrInvalidModelFile = errors.New("invalid model file")
	// ErrInvalidImage marks image bytes that cannot be decoded or that are
	// outside the documented limits.
	ErrInvalidImage = errors.New("invalid image")
	// ErrInvalidInput marks a request whose inputs do not fit the model,
	// such as a mask of the wrong length or a ratio outside [0, 1].
	ErrInvalidInput = errors.New("invalid input")
)
