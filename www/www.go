// Package www embeds the browser demo that "m3ae-edge serve" serves: a page
// that runs the GOOS=js build of wasm/browser in a Web Worker, a service
// worker that keeps the page usable offline, and a gallery of emoji from
// the test split.
//
// The modules and their wasm_exec.js are build outputs, so a fresh clone
// has none of them: `make demo` writes them into static/ before it builds
// the command, and Go embeds whatever static/ contains at build time.
// CheckBuilt reports which of the required files are missing. The worker
// loads SIMDModuleFile where the browser supports WebAssembly SIMD and the
// file is there, and ModuleFile otherwise.
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

// Names of the built files, relative to the page's root.
const (
	// ModuleFile is the GOOS=js build of wasm/browser with scalar kernels,
	// which every browser with WebAssembly runs.
	ModuleFile = "m3ae.wasm"
	// SIMDModuleFile is the GOOS=js build of wasm/browser with WebAssembly
	// SIMD kernels (Go 1.27 with GOEXPERIMENT=simd). It is optional, and
	// its outputs have the same bits as ModuleFile's.
	SIMDModuleFile = "m3ae-simd.wasm"
	// WasmExecFile is the JavaScript support file of the Go toolchain that
	// built ModuleFile, from $(go env GOROOT)/lib/wasm. `make demo` checks
	// that SIMDModuleFile's toolchain ships the same file.
	WasmExecFile = "wasm_exec.js"
)

//go:embed static
var static embed.FS

// Files returns the embedded page, rooted at its index.html. It may lack
// ModuleFile and WasmExecFile, and CheckBuilt reports which, and it may
// lack SIMDModuleFile.
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
// files when site lacks ModuleFile or WasmExecFile. A missing
// SIMDModuleFile is no error, because the page then runs ModuleFile.
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
