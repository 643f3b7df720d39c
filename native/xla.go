//go:build xla

package native

import (
	// Registers GoMLX's XLA backend, so GOMLX_BACKEND=xla:cpu, xla:cuda or
	// xla:/abs/path/to/plugin.so selects it. It needs cgo and a PJRT
	// plugin at run time (docs/TRAINING.md explains where to get one).
	"github.com/gomlx/go-xla/compute/xla"
)

// Without this, go-xla v0.4.1 downloads a PJRT plugin from GitHub the first
// time a backend is created by plugin name. Plugins come from
// PJRT_PLUGIN_LIBRARY_PATH, the go-xla library folders or an absolute
// path instead, so a run never reaches the network.
func init() { xla.EnableAutoInstall(false) }
