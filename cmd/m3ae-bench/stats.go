// This file holds what the groups share: timing repeated calls, the
// summary of a row's timed calls, and a Markdown table writer.

package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

// summary describes the timed calls of one row, in milliseconds.
type summary struct {
	runs int
	// median is the middle value, or the mean of the two middle values
	// for an even number of runs.
	median float64
	// p90 is the 90th percentile by the nearest-rank method: the
	// ceil(0.9*runs)-th smallest value, which is the largest for fewer
	// than 10 runs.
	p90 float64
	min float64
}

// summarize returns the summary of millis, which must not be empty.
func summarize(millis []float64) summary {
	if len(millis) == 0 {
		panic("m3ae-bench: summarize of no timed calls")
	}
	sorted := slices.Clone(millis)
	slices.Sort(sorted)
	n := len(sorted)
	median := sorted[n/2]
	if n%2 == 0 {
		median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	rank := int(math.Ceil(0.9 * float64(n)))
	return summary{runs: n, median: median, p90: sorted[rank-1], min: sorted[0]}
}

// timeCalls makes warmup untimed calls of call, then runs timed ones, and
// returns the time of each timed call in milliseconds. It stops at the
// first error and when ctx is done.
func timeCalls(ctx context.Context, warmup, runs int, call func() error) ([]float64, error) {
	for range warmup {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := call(); err != nil {
			return nil, err
		}
	}
	millis := make([]float64, runs)
	for i := range millis {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := call(); err != nil {
			return nil, err
		}
		millis[i] = toMillis(time.Since(start))
	}
	return millis, nil
}

// withGOMAXPROCS runs fn with runtime.GOMAXPROCS, the number of threads
// that run Go code at once, set to n, and then restores the previous
// setting.
func withGOMAXPROCS(n int, fn func() error) error {
	previous := runtime.GOMAXPROCS(n)
	defer runtime.GOMAXPROCS(previous)
	return fn()
}

func toMillis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// formatMillis writes ms with three significant digits for values under
// 100 and as a whole number above, so that columns stay narrow.
func formatMillis(ms float64) string {
	switch {
	case ms < 1:
		return fmt.Sprintf("%.3f", ms)
	case ms < 10:
		return fmt.Sprintf("%.2f", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f", ms)
	default:
		return fmt.Sprintf("%.0f", ms)
	}
}

// formatRatio writes ours/theirs with two decimals: above 1 ours is slower.
func formatRatio(ours, theirs float64) string {
	return fmt.Sprintf("%.2f", ours/theirs)
}

// summaryCells returns the runs, median, p90 and min cells of s.
func summaryCells(s summary) []string {
	return []string{fmt.Sprint(s.runs), formatMillis(s.median), formatMillis(s.p90), formatMillis(s.min)}
}

// timingRow returns a table row: the labels, the cells of s and the ratio.
func timingRow(labels []string, s summary, ratio string) []string {
	row := append(slices.Clone(labels), summaryCells(s)...)
	return append(row, ratio)
}

// markdownTable is a Markdown table built row by row.
type markdownTable struct {
	header []string
	rows   [][]string
}

func newMarkdownTable(header ...string) *markdownTable {
	return &markdownTable{header: header}
}

// add appends a row. It panics when the row does not have one cell per
// column, which is a bug in the group that builds the table.
func (t *markdownTable) add(cells ...string) {
	if len(cells) != len(t.header) {
		panic(fmt.Sprintf("m3ae-bench: table row has %d cells, want %d: %q", len(cells), len(t.header), cells))
	}
	t.rows = append(t.rows, cells)
}

// String returns the table as Markdown lines, each ending in a newline.
// A | inside a cell is escaped.
func (t *markdownTable) String() string {
	var b strings.Builder
	writeRow := func(cells []string) {
		b.WriteString("|")
		for _, cell := range cells {
			b.WriteString(" " + strings.ReplaceAll(cell, "|", `\|`) + " |")
		}
		b.WriteString("\n")
	}
	writeRow(t.header)
	b.WriteString(strings.Repeat("|---", len(t.header)) + "|\n")
	for _, row := range t.rows {
		writeRow(row)
	}
	return b.String()
}
