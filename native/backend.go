package native

import (
	"fmt"
	"os"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // Registers the pure-Go backend, which needs no cgo.
)

// DefaultBackendConfig is the backend NewBackend uses when $GOMLX_BACKEND is
// unset: GoMLX's pure-Go backend running one op at a time. On a 2-core
// machine (GoMLX v0.28.2, compute v0.1.2), its parallel scheduler hung at 0%
// CPU in 5 of 7 runs. The sequential one never hung in about 40 runs and was
// no slower there.
const DefaultBackendConfig = "go:ops_sequential"

// NewBackend returns the backend that $GOMLX_BACKEND names ("go", or "xla"
// in builds that register it), or DefaultBackendConfig when it is unset.
func NewBackend() (compute.Backend, error) {
	config := DefaultBackendConfig
	if env, ok := os.LookupEnv(compute.ConfigEnvVar); ok && env != "" {
		config = env
	}
	var backend compute.Backend
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		backend, err = compute.NewWithConfig(config)
	}()
	if err != nil {
		return nil, fmt.Errorf("failed to create GoMLX backend %q (set %s to go or go:ops_sequential): %w", config, compute.ConfigEnvVar, err)
	}
	return backend, nil
}
