// Command nativecases runs cross-target cases in its own native build of
// the core, so that a test can compare builds made with other toolchains or
// GOEXPERIMENT settings than its own. It reads a harness.NativeSpec as JSON
// on standard input and writes the harness.Digest of each case's output, a
// JSON array in case order, to standard output.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/m3ae-edge/m3ae-edge/core"
	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "nativecases:", err)
		os.Exit(1)
	}
}

func run() error {
	var spec harness.NativeSpec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		return fmt.Errorf("decode the spec on standard input: %w", err)
	}
	pipeline, err := core.Load(spec.Model)
	if err != nil {
		return fmt.Errorf("load the model: %w", err)
	}
	digests := make([]map[string]string, len(spec.Cases))
	for i, c := range spec.Cases {
		out, err := harness.RunNative(pipeline, c, spec.Inputs)
		if err != nil {
			return fmt.Errorf("case %s: %w", c.Name, err)
		}
		digests[i] = harness.Digest(out)
	}
	return json.NewEncoder(os.Stdout).Encode(digests)
}
