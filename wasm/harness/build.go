// Package harness runs the same inputs through the three targets of the
// core, natively, through the wazero plugin and in headless Chromium, and
// hashes every output so that tests and benchmarks can compare them bit for
// bit.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/core/bertvocab"
)

// Import paths of the two WebAssembly entry points.
const (
	BrowserPackage = "github.com/m3ae-edge/m3ae-edge/wasm/browser"
	PluginPackage  = "github.com/m3ae-edge/m3ae-edge/wasm/plugin"
)

// GoTool returns the go command of the toolchain that built the running
// program, falling back to the one on PATH.
func GoTool() (string, error) {
	tool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(tool); err == nil {
		return tool, nil
	}
	return exec.LookPath("go")
}

// BuildBrowser builds the GOOS=js module into out with the running
// toolchain and environment.
func BuildBrowser(ctx context.Context, out string) error {
	return build(ctx, nil, "js", out, BrowserPackage)
}

// BuildPlugin builds the GOOS=wasip1 reactor into out with the running
// toolchain and environment.
func BuildPlugin(ctx context.Context, out string) error {
	return build(ctx, nil, "wasip1", out, PluginPackage, "-buildmode=c-shared")
}

// BuildBrowserFlavor builds the GOOS=js module of flavor into out.
func BuildBrowserFlavor(ctx context.Context, flavor Flavor, out string) error {
	return build(ctx, flavor.Env, "js", out, BrowserPackage)
}

// BuildPluginFlavor builds the GOOS=wasip1 reactor of flavor into out.
func BuildPluginFlavor(ctx context.Context, flavor Flavor, out string) error {
	return build(ctx, flavor.Env, "wasip1", out, PluginPackage, "-buildmode=c-shared")
}

// BuildGuest builds any wasip1 reactor package, such as a test guest, into
// out. pkg is an import path or a directory.
func BuildGuest(ctx context.Context, out, pkg string) error {
	return build(ctx, nil, "wasip1", out, pkg, "-buildmode=c-shared")
}

// build runs go build for GOOS=goos GOARCH=wasm, with env added to the
// environment.
func build(ctx context.Context, env []string, goos, out, pkg string, flags ...string) error {
	return goBuild(ctx, append(env, "GOOS="+goos, "GOARCH=wasm"), out, pkg, flags...)
}

// goBuild runs go build -trimpath -o out with flags on pkg, with env added
// to the environment.
func goBuild(ctx context.Context, env []string, out, pkg string, flags ...string) error {
	tool, err := GoTool()
	if err != nil {
		return fmt.Errorf("find the go command: %w", err)
	}
	args := append([]string{"build", "-trimpath", "-o", out}, flags...)
	cmd := exec.CommandContext(ctx, tool, append(args, pkg)...)
	cmd.Env = append(os.Environ(), env...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s go %s %s: %w\n%s", strings.Join(env, " "), strings.Join(args, " "), pkg, err, output.Bytes())
	}
	return nil
}

// WasmExecJS returns the wasm_exec.js support file of the running
// toolchain, which the GOOS=js module needs.
func WasmExecJS() ([]byte, error) {
	return wasmExecJSIn(runtime.GOROOT())
}

// wasmExecJSIn reads wasm_exec.js from the Go installation at goroot.
func wasmExecJSIn(goroot string) ([]byte, error) {
	for _, dir := range []string{"lib/wasm", "misc/wasm"} {
		data, err := os.ReadFile(filepath.Join(goroot, dir, "wasm_exec.js"))
		if err == nil {
			return data, nil
		}
	}
	return nil, fmt.Errorf("wasm_exec.js not found under %s/lib/wasm or misc/wasm", goroot)
}

// ModelFile returns a model file of the named preset with InitModelFile
// weights from seed, the bert-base-uncased vocabulary and the CC12M image
// normalization.
func ModelFile(preset string, seed uint64) ([]byte, error) {
	cfg, err := core.Preset(preset)
	if err != nil {
		return nil, err
	}
	mf, err := core.InitModelFile(cfg, bertvocab.Tokens(), core.CC12MNorm, seed)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := core.WriteModelFile(&buf, mf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
