package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/m3ae-edge/m3ae-edge/wasm/harness"
)

// TestBrowserQuick runs the browser group's smoke path in headless
// Chromium and checks the shape of its table and that every figure is
// positive, not the speed. The SIMD rows must be there when the go command
// finds harness.SIMDToolchain. Otherwise the section must state that they
// are left out.
func TestBrowserQuick(t *testing.T) {
	requirePeer(t, "M3AE_REQUIRE_BROWSER", findChromium(harness.DefaultChromiumPath))
	_, _, err := findNodePackage("onnxruntime-web")
	requirePeer(t, "M3AE_REQUIRE_ONNXRUNTIME", err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = harness.WasmExecJSFlavor(ctx, harness.WasmSIMDFlavor)
	withSIMD := err == nil
	if !withSIMD {
		t.Logf("expecting no SIMD rows: %v", err)
	}

	output := runQuick(t, "browser")
	tables := parseTables(t, output)
	if len(tables) != 1 {
		t.Fatalf("output has %d tables, want 1:\n%s", len(tables), output)
	}
	table := tables[0]
	header := []string{"preset", "op", "runtime", "runs", "median ms", "p90 ms", "min ms", "ours/theirs", "simd speed-up"}
	if strings.Join(table.header, ",") != strings.Join(header, ",") {
		t.Errorf("header = %q, want %q", table.header, header)
	}

	// Each op has the scalar core's row, the SIMD core's row when the
	// toolchain is there, and onnxruntime-web's row.
	flavors := []string{"scalar", "SIMD128"}
	if !withSIMD {
		flavors = flavors[:1]
	}
	perOp := len(flavors) + 1
	if want := len(inferenceOps) * perOp; len(table.rows) != want {
		t.Fatalf("table has %d rows, want %d:\n%s", len(table.rows), want, output)
	}
	for i := 0; i < len(table.rows); i += perOp {
		op := inferenceOps[i/perOp].name
		rows := table.rows[i : i+perOp]
		for _, row := range rows {
			if row["preset"] != "tiny" || row["op"] != op {
				t.Errorf("row %v is %s %s, want tiny %s", row, row["preset"], row["op"], op)
			}
		}
		theirs := rows[len(flavors)]
		if !strings.HasPrefix(theirs["runtime"], "onnxruntime-web ") {
			t.Errorf("row %d runtime = %q, want onnxruntime-web", i+len(flavors), theirs["runtime"])
		}
		if theirs["ours/theirs"] != "-" || theirs["simd speed-up"] != "-" {
			t.Errorf("row %d = %v, want onnxruntime-web's row with no ratios", i+len(flavors), theirs)
		}
		theirsMedian := checkTimingRow(t, theirs)

		var scalarMedian float64
		for j, flavor := range flavors {
			ours := rows[j]
			if want := "m3ae-edge core (Go, GOOS=js, " + flavor + ")"; ours["runtime"] != want {
				t.Errorf("row %d runtime = %q, want %q", i+j, ours["runtime"], want)
			}
			median := checkTimingRow(t, ours)
			checkRatio(t, ours, "ours/theirs", median, theirsMedian)
			if j == 0 {
				scalarMedian = median
				if ours["simd speed-up"] != "-" {
					t.Errorf("row %d simd speed-up = %q, want - on the scalar row", i+j, ours["simd speed-up"])
				}
				continue
			}
			checkRatio(t, ours, "simd speed-up", scalarMedian, median)
		}
	}

	left := strings.Contains(output, "SIMD rows left out: "+harness.SIMDToolchain)
	if left == withSIMD {
		t.Errorf("output states that the SIMD rows are left out: %v, want %v:\n%s", left, !withSIMD, output)
	}
	if withSIMD && !strings.Contains(output, "The SIMD flavor's outputs matched the scalar flavor's exactly.") {
		t.Errorf("output does not state that the two flavors' outputs matched exactly:\n%s", output)
	}
}
