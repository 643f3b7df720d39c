package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
)

// TestWasmQuick builds the modules of both flavors, runs the wasm group's
// smoke path on the micro preset and checks the shape of its three tables
// and that every figure is positive, not the speed. Without Chromium the
// group leaves its rows out, unless M3AE_REQUIRE_BROWSER is 1. When the go
// command cannot find harness.SIMDToolchain, the test passes missing SIMD
// module paths and checks that the group leaves their rows out.
func TestWasmQuick(t *testing.T) {
	withBrowser := harness.ChromiumAvailable(harness.DefaultChromiumPath)
	if !withBrowser && os.Getenv("M3AE_REQUIRE_BROWSER") == "1" {
		t.Fatalf("%v (M3AE_REQUIRE_BROWSER=1 requires the Chromium rows)", findChromium(harness.DefaultChromiumPath))
	}
	dir := t.TempDir()
	browserModule, pluginModule := filepath.Join(dir, "m3ae.wasm"), filepath.Join(dir, "m3ae-plugin.wasm")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := harness.BuildBrowser(ctx, browserModule); err != nil {
		t.Fatal(err)
	}
	if err := harness.BuildPlugin(ctx, pluginModule); err != nil {
		t.Fatal(err)
	}
	browserSIMD, pluginSIMD := filepath.Join(dir, "m3ae-simd.wasm"), filepath.Join(dir, "m3ae-plugin-simd.wasm")
	_, err := harness.WasmExecJSFlavor(ctx, harness.WasmSIMDFlavor)
	withSIMD := err == nil
	if withSIMD {
		if err := harness.BuildBrowserFlavor(ctx, harness.WasmSIMDFlavor, browserSIMD); err != nil {
			t.Fatal(err)
		}
		if err := harness.BuildPluginFlavor(ctx, harness.WasmSIMDFlavor, pluginSIMD); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("expecting no SIMD rows: %v", err)
	}

	output := runQuick(t, "wasm", "-browser", browserModule, "-plugin", pluginModule,
		"-browser-simd", browserSIMD, "-plugin-simd", pluginSIMD)
	tables := parseTables(t, output)
	if len(tables) != 3 {
		t.Fatalf("output has %d tables, want 3:\n%s", len(tables), output)
	}
	sizes, startup, latency := tables[0], tables[1], tables[2]

	wantModules := []string{"m3ae-plugin.wasm", "m3ae.wasm"}
	if withSIMD {
		wantModules = []string{"m3ae-plugin-simd.wasm", "m3ae-plugin.wasm", "m3ae-simd.wasm", "m3ae.wasm"}
	}
	var modules []string
	for _, row := range sizes.rows {
		modules = append(modules, row["module"])
	}
	if strings.Join(modules, ",") != strings.Join(wantModules, ",") {
		t.Errorf("sizes table lists %q, want %q", modules, wantModules)
	}
	for _, row := range sizes.rows {
		raw, gz := positive(t, row, "raw"), positive(t, row, "gzip -9")
		if gz >= raw {
			t.Errorf("row %v: gzip size %v is not below the raw size %v", row, gz, raw)
		}
		if row["brotli -q 11"] != "brotli not installed" {
			positive(t, row, "brotli -q 11")
		}
	}

	if len(startup.rows) != 4 {
		t.Errorf("start-up table has %d rows, want 4", len(startup.rows))
	}
	for _, row := range startup.rows {
		positive(t, row, "ms")
	}

	targets := []string{"native", "wazero", "wazero, no interrupt"}
	if withSIMD {
		targets = append(targets, "wazero simd", "wazero simd, no interrupt")
	}
	if withBrowser {
		targets = append(targets, "chromium")
	}
	if withBrowser && withSIMD {
		targets = append(targets, "chromium simd")
	}
	// micro float32, then micro int8, each with every target's embed and
	// reconstruct rows.
	if want := 2 * len(targets) * len(wasmCases()); len(latency.rows) != want {
		t.Fatalf("latency table has %d rows, want %d:\n%s", len(latency.rows), want, output)
	}
	native := map[string]float64{}
	for i, row := range latency.rows {
		precision := []string{"float32", "int8"}[i/(2*len(targets))]
		target := targets[i/2%len(targets)]
		if row["preset"] != "micro "+precision || row["target"] != target {
			t.Errorf("row %d is %q on %q, want micro %s on %s", i, row["preset"], row["target"], precision, target)
		}
		positive(t, row, "load ms")
		median := checkTimingRow(t, row)
		key := precision + " " + row["op"]
		if target == "native" {
			native[key] = median
		}
		checkRatio(t, row, "x native", median, native[key])
	}
	if !strings.Contains(output, "A row gives 2 timed calls") {
		t.Errorf("output does not state the quick run's call count:\n%s", output)
	}
	for _, path := range []string{browserSIMD, pluginSIMD} {
		left := strings.Contains(output, "SIMD rows of "+path+" left out")
		if left == withSIMD {
			t.Errorf("output states that the rows of %s are left out: %v, want %v:\n%s", path, left, !withSIMD, output)
		}
	}
}
