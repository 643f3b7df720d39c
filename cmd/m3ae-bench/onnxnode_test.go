package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testImage is the -image of the smoke tests, which run in this folder.
const testImage = "../../testdata/images/photo512x384.jpg"

// requirePeer skips the test when err reports a missing peer, or fails it
// when the environment variable requireVar is 1, as .ci/run sets it. Any
// other error fails the test.
func requirePeer(t *testing.T, requireVar string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if !errors.Is(err, errPeerMissing) {
		t.Fatal(err)
	}
	if os.Getenv(requireVar) == "1" {
		t.Fatalf("%v (%s=1 turns this skip into a failure)", err, requireVar)
	}
	t.Skipf("%v; set %s=1 to fail instead of skipping", err, requireVar)
}

// runQuick runs one group through the driver with -quick and returns what
// it prints.
func runQuick(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stdout bytes.Buffer
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	args = append([]string{"-quick", "-groups", name, "-image", testImage}, args...)
	if err := run(ctx, args, &stdout, logger); err != nil {
		t.Fatalf("m3ae-bench %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String()
}

// parsedTable is a Markdown table of a group's output.
type parsedTable struct {
	header []string
	rows   []map[string]string
}

// parseTables returns the Markdown tables of text in order. It fails the
// test on a table whose separator line is missing or whose row has a cell
// count different from the header's.
func parseTables(t *testing.T, text string) []parsedTable {
	t.Helper()
	var tables []parsedTable
	var block []string
	flush := func() {
		if len(block) == 0 {
			return
		}
		header := splitRow(block[0])
		if len(block) < 2 || block[1] != strings.Repeat("|---", len(header))+"|" {
			t.Fatalf("table %q has no separator line after its header", block[0])
		}
		table := parsedTable{header: header}
		for _, line := range block[2:] {
			cells := splitRow(line)
			if len(cells) != len(header) {
				t.Fatalf("row %q has %d cells, want %d as in header %q", line, len(cells), len(header), block[0])
			}
			row := map[string]string{}
			for i, cell := range cells {
				row[header[i]] = cell
			}
			table.rows = append(table.rows, row)
		}
		tables = append(tables, table)
		block = nil
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "|") {
			block = append(block, line)
			continue
		}
		flush()
	}
	flush()
	return tables
}

func splitRow(line string) []string {
	cells := strings.Split(strings.Trim(line, "|"), "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

// positive returns the value of row[column], failing the test unless it
// is a finite number above 0.
func positive(t *testing.T, row map[string]string, column string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(row[column], 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) {
		t.Fatalf("row %v: %s = %q, want a positive number", row, column, row[column])
	}
	return v
}

// checkTimingRow checks the runs, median, p90 and min cells of a row:
// positive, with min <= median <= p90.
func checkTimingRow(t *testing.T, row map[string]string) (median float64) {
	t.Helper()
	positive(t, row, "runs")
	median = positive(t, row, "median ms")
	p90, low := positive(t, row, "p90 ms"), positive(t, row, "min ms")
	if low > median || median > p90 {
		t.Errorf("row %v: want min <= median <= p90", row)
	}
	return median
}

// checkRatio checks that row's ratio column is ours/theirs of the printed
// medians, to rounding.
func checkRatio(t *testing.T, row map[string]string, column string, ours, theirs float64) {
	t.Helper()
	got := positive(t, row, column)
	if want := ours / theirs; math.Abs(got-want) > 0.05*want+0.01 {
		t.Errorf("row %v: %s = %v, want %.3f from the medians %v and %v", row, column, got, want, ours, theirs)
	}
}

// TestONNXNodeQuick runs the onnx-node group's smoke path and checks the
// shape of its table and that every figure is positive, not the speed.
func TestONNXNodeQuick(t *testing.T) {
	_, err := findNode()
	if err == nil {
		_, _, err = findNodePackage("onnxruntime-node")
	}
	requirePeer(t, "M3AE_REQUIRE_ONNXRUNTIME", err)

	output := runQuick(t, "onnx-node")
	tables := parseTables(t, output)
	if len(tables) != 1 {
		t.Fatalf("output has %d tables, want 1:\n%s", len(tables), output)
	}
	table := tables[0]
	header := []string{"preset", "op", "threads", "runtime", "runs", "median ms", "p90 ms", "min ms", "ours/theirs"}
	if strings.Join(table.header, ",") != strings.Join(header, ",") {
		t.Errorf("header = %q, want %q", table.header, header)
	}

	// Each op has, at 1 thread, the core's row, the scalar build's row and
	// onnxruntime-node's row, then at 2 threads the core's and the peer's.
	type rowSpec struct {
		threads string
		runtime string
		peer    bool
	}
	var want []rowSpec
	for range inferenceOps {
		want = append(want,
			rowSpec{"1", "m3ae-edge core (Go, ", false}, rowSpec{"1", "m3ae-edge core (Go, scalar kernels)", false},
			rowSpec{"1", "onnxruntime-node", true},
			rowSpec{"2", "m3ae-edge core (Go, ", false}, rowSpec{"2", "onnxruntime-node", true})
	}
	if len(table.rows) != len(want) {
		t.Fatalf("table has %d rows, want %d:\n%s", len(table.rows), len(want), output)
	}
	perOp := len(want) / len(inferenceOps)
	var oursMedians []float64
	for i, row := range table.rows {
		spec := want[i]
		op := inferenceOps[i/perOp].name
		if row["preset"] != "tiny" || row["op"] != op || row["threads"] != spec.threads {
			t.Errorf("row %d = %v, want tiny %s at %s threads", i, row, op, spec.threads)
		}
		if !strings.HasPrefix(row["runtime"], spec.runtime) {
			t.Errorf("row %d runtime = %q, want it to start with %q", i, row["runtime"], spec.runtime)
		}
		median := checkTimingRow(t, row)
		if !spec.peer {
			oursMedians = append(oursMedians, median)
			continue
		}
		if row["ours/theirs"] != "-" {
			t.Errorf("row %d = %v, want the peer's row with no ratio", i, row)
		}
		// The ratio of each of our rows above, back to the previous peer
		// row, is its median over this row's.
		for j := len(oursMedians); j > 0; j-- {
			checkRatio(t, table.rows[i-j], "ours/theirs", oursMedians[len(oursMedians)-j], median)
		}
		oursMedians = oursMedians[:0]
	}
}
