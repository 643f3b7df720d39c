package main

import (
	"testing"

	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
)

// TestBrowserQuick runs the browser group's smoke path in headless
// Chromium and checks the shape of its table and that every figure is
// positive, not the speed.
func TestBrowserQuick(t *testing.T) {
	requirePeer(t, "M3AE_REQUIRE_BROWSER", findChromium(harness.DefaultChromiumPath))
	_, _, err := findNodePackage("onnxruntime-web")
	requirePeer(t, "M3AE_REQUIRE_ONNXRUNTIME", err)

	output := runQuick(t, "browser")
	header := []string{"preset", "op", "runtime", "runs", "median ms", "p90 ms", "min ms", "ours/theirs"}
	checkInferenceTable(t, output, header, 1)
}
