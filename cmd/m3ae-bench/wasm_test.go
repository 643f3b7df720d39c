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

// TestWasmQuick builds both modules, runs the wasm group's smoke path on
// the micro preset and checks the shape of its three tables and that every
// figure is positive, not the speed. Without Chromium the group leaves its
// rows out, unless M3AE_REQUIRE_BROWSER is 1.
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

	output := runQuick(t, "wasm", "-browser", browserModule, "-plugin", pluginModule)
	tables := parseTables(t, output)
	if len(tables) != 3 {
		t.Fatalf("output has %d tables, want 3:\n%s", len(tables), output)
	}
	sizes, startup, latency := tables[0], tables[1], tables[2]

	if len(sizes.rows) != 2 {
		t.Errorf("sizes table has %d rows, want 2", len(sizes.rows))
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

	targets := []string{"native", "wazero", "wazero, no interrupt", "chromium"}
	if !withBrowser {
		targets = targets[:3]
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
}
