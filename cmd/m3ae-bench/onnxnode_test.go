package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// checkInferenceTable checks the table of the onnx-node or browser group:
// rows of the tiny preset in pairs, the core's row and then the peer's,
// pairsPerOp pairs for each op, with ours/theirs computed from the pair's
// medians.
func checkInferenceTable(t *testing.T, output string, header []string, pairsPerOp int) {
	t.Helper()
	tables := parseTables(t, output)
	if len(tables) != 1 {
		t.Fatalf("output has %d tables, want 1:\n%s", len(tables), output)
	}
	table := tables[0]
	if strings.Join(table.header, ",") != strings.Join(header, ",") {
		t.Errorf("header = %q, want %q", table.header, header)
	}
	if want := len(inferenceOps) * pairsPerOp * 2; len(table.rows) != want {
		t.Fatalf("table has %d rows, want %d:\n%s", len(table.rows), want, output)
	}
	for i := 0; i < len(table.rows); i += 2 {
		ours, theirs := table.rows[i], table.rows[i+1]
		op := inferenceOps[i/(2*pairsPerOp)].name
		for _, row := range []map[string]string{ours, theirs} {
			if row["preset"] != "tiny" || row["op"] != op {
				t.Errorf("row %v is %s %s, want tiny %s", row, row["preset"], row["op"], op)
			}
		}
		if !strings.HasPrefix(ours["runtime"], "m3ae-edge core") || ours["ours/theirs"] != "-" {
			t.Errorf("row %d = %v, want the core's row with no ratio", i, ours)
		}
		if !strings.HasPrefix(theirs["runtime"], "onnxruntime-") {
			t.Errorf("row %d runtime = %q, want an onnxruntime package", i+1, theirs["runtime"])
		}
		oursMedian, theirsMedian := checkTimingRow(t, ours), checkTimingRow(t, theirs)
		checkRatio(t, theirs, "ours/theirs", oursMedian, theirsMedian)
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
	header := []string{"preset", "op", "threads", "runtime", "runs", "median ms", "p90 ms", "min ms", "ours/theirs"}
	checkInferenceTable(t, output, header, len(onnxNodeThreads))
	for i, row := range parseTables(t, output)[0].rows {
		// Each op has a pair of rows at 1 thread, then a pair at 2.
		if want := fmt.Sprint(onnxNodeThreads[i/2%len(onnxNodeThreads)]); row["threads"] != want {
			t.Errorf("row %d: threads = %q, want %s", i, row["threads"], want)
		}
	}
}
