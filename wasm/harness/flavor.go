package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// SIMDToolchain is the Go release that builds the wasm SIMD flavor. Go
// 1.26's wasm backend emits no SIMD instructions, and Go 1.27 with
// GOEXPERIMENT=simd emits SIMD128 for the core's kernels. The module proxy
// serves it, and the go command fetches it on first use.
const SIMDToolchain = "go1.27.3"

// Flavor is one build of the core: a toolchain and its experiments, set by
// environment variables that a build adds to its own.
type Flavor struct {
	// Name is "scalar" or "simd".
	Name string
	Env  []string
}

var (
	// ScalarFlavor is the running toolchain without experiments: the
	// scalar kernels, natively and in wasm.
	ScalarFlavor = Flavor{Name: "scalar", Env: []string{"GOTOOLCHAIN=local", "GOEXPERIMENT="}}
	// NativeSIMDFlavor is the running toolchain with GOEXPERIMENT=simd:
	// with Go 1.26 on amd64, the AVX2 kernels where the CPU has AVX2.
	NativeSIMDFlavor = Flavor{Name: "simd", Env: []string{"GOTOOLCHAIN=local", "GOEXPERIMENT=simd"}}
	// WasmSIMDFlavor is SIMDToolchain with GOEXPERIMENT=simd: the SIMD128
	// kernels, which need an engine with WebAssembly SIMD.
	WasmSIMDFlavor = Flavor{Name: "simd", Env: []string{"GOTOOLCHAIN=" + SIMDToolchain, "GOEXPERIMENT=simd"}}

	// NativeFlavors and WasmFlavors are the builds that must give the same
	// bits as each other.
	NativeFlavors = []Flavor{ScalarFlavor, NativeSIMDFlavor}
	WasmFlavors   = []Flavor{ScalarFlavor, WasmSIMDFlavor}
)

// WasmExecJSFlavor returns the wasm_exec.js support file of flavor's
// toolchain, which its GOOS=js module needs.
func WasmExecJSFlavor(ctx context.Context, flavor Flavor) ([]byte, error) {
	tool, err := GoTool()
	if err != nil {
		return nil, fmt.Errorf("find the go command: %w", err)
	}
	cmd := exec.CommandContext(ctx, tool, "env", "GOROOT")
	cmd.Env = append(os.Environ(), flavor.Env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s go env GOROOT: %w\n%s", strings.Join(flavor.Env, " "), err, stderr.Bytes())
	}
	return wasmExecJSIn(strings.TrimSpace(string(out)))
}

// NativeCasesPackage is the import path of the command that runs cases in
// a native build of flavor.
const NativeCasesPackage = "github.com/m3ae-edge/m3ae-edge/wasm/harness/nativecases"

// BuildNative builds the nativecases command of flavor for this machine
// into out.
func BuildNative(ctx context.Context, flavor Flavor, out string) error {
	return goBuild(ctx, flavor.Env, out, NativeCasesPackage)
}

// NativeSpec is the input of the nativecases command, as JSON on its
// standard input.
type NativeSpec struct {
	Model  []byte `json:"model"`
	Inputs Inputs `json:"inputs"`
	Cases  []Case `json:"cases"`
}

// RunNativeBuild runs the cases in the nativecases binary and returns the
// Digest of each case's output, in the order of cases.
func RunNativeBuild(ctx context.Context, binary string, model []byte, cases []Case, inputs Inputs) ([]map[string]string, error) {
	spec, err := json.Marshal(NativeSpec{Model: model, Inputs: inputs, Cases: cases})
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, binary)
	cmd.Stdin = bytes.NewReader(spec)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run %s: %w\n%s", binary, err, stderr.Bytes())
	}
	var digests []map[string]string
	if err := json.Unmarshal(stdout.Bytes(), &digests); err != nil {
		return nil, fmt.Errorf("decode the output of %s: %w", binary, err)
	}
	if len(digests) != len(cases) {
		return nil, fmt.Errorf("%s returned %d digests for %d cases", binary, len(digests), len(cases))
	}
	return digests, nil
}
