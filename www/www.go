// Package www embeds the browser demo that "m3ae-edge serve" serves: a page
// that runs the GOOS=js build of wasm/browser in a Web Worker, a service
// worker that keeps the page usable offline, and a gallery of emoji from
// the test split.
//
// The module and its wasm_exec.js are build outputs, so a fresh clone has
// neither: `make demo` writes them into static/ before it builds the
// command, and Go embeds whatever static/ contains at build time.
// CheckBuilt reports which of them are missing.
//
// NOTE: a module that an earlier `make demo` left in static/ is embedded
// as it is, even after the core has changed. `make demo` rebuilds it.
package www

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
)

// Names of the two built files, relative to the page's root.
const (
	// ModuleFile is the GOOS=js build of wasm/browser.
	ModuleFile = "m3ae.wasm"
	// WasmExecFile is the JavaScript support file of the Go toolchain that
	// built ModuleFile, from $(go env GOROOT)/lib/wasm.
	WasmExecFile = "wasm_exec.js"
)

//go:embed static
var static embed.FS

// Files returns the embedded page, rooted at its index.html. It may lack
// ModuleFile and WasmExecFile, and CheckBuilt reports which.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// fs.Sub fails only for an invalid directory name, and "static"
		// is a constant valid one.
		panic(err)
	}
	return sub
}

// ErrNotBuilt reports a page folder without the built module files.
var ErrNotBuilt = errors.New("browser module not built")

// CheckBuilt returns an error wrapping ErrNotBuilt that names the missing
// files when site lacks ModuleFile or WasmExecFile.
func CheckBuilt(site fs.FS) error {
	var missing []string
	for _, name := range []string{ModuleFile, WasmExecFile} {
		info, err := fs.Stat(site, name)
		if err != nil || info.IsDir() || info.Size() == 0 {
			missing = append(missing, name)
		}
	}
	if missing != nil {
		return fmt.Errorf("%w: %q missing", ErrNotBuilt, missing)
	}
	return nil
}
