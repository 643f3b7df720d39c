package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestMemoryQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and the plugin and runs them")
	}
	res, err := measureMemory(t.Context(), quickBenchEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.rows) != 2 {
		t.Fatalf("quick run has %d rows, want micro float32 and int8", len(res.rows))
	}
	for _, row := range res.rows {
		if row.preset != "micro" || row.fileBytes <= 0 {
			t.Errorf("row %s %s: model file of %d bytes, want micro and a positive size", row.preset, row.weights, row.fileBytes)
		}
		if len(row.peaksKiB) != len(memoryColumns) {
			t.Fatalf("row %s %s has %d peaks, want %d", row.preset, row.weights, len(row.peaksKiB), len(memoryColumns))
		}
		for i, kib := range row.peaksKiB {
			if kib <= 0 {
				t.Errorf("row %s %s, %s %s: peak %d KiB, want positive", row.preset, row.weights, memoryColumns[i].program, memoryColumns[i].op, kib)
			}
		}
	}
	if !(res.rows[1].fileBytes < res.rows[0].fileBytes) {
		t.Errorf("int8 file is %d bytes, float32 %d: want the int8 one smaller", res.rows[1].fileBytes, res.rows[0].fileBytes)
	}
	if res.versionKiB <= 0 || res.compileKiB <= 0 {
		t.Errorf("version peak %d KiB, first plugin run %d KiB: want both positive", res.versionKiB, res.compileKiB)
	}
	body := renderMemory(res)
	if !strings.Contains(body, "| preset | weights | model file MiB | CLI embed | CLI reconstruct | plugin host embed | plugin host reconstruct |") {
		t.Errorf("section lacks the table header:\n%s", body)
	}
}

// A program started through peakrss reports its own peak, not the peak of
// the process that started peakrss.
func TestPeakRSSIgnoresParentPeak(t *testing.T) {
	program, err := exec.LookPath("true")
	if err != nil {
		t.Skipf("no true program on PATH: %v", err)
	}
	dir := t.TempDir()
	peakrss := filepath.Join(dir, "peakrss")
	if err := buildProgram(t.Context(), modulePath+"/cmd/m3ae-bench/peakrss", peakrss, nil); err != nil {
		t.Fatal(err)
	}

	// Raise this process's peak well above what true needs.
	const ballastBytes = 256 << 20
	ballast := make([]byte, ballastBytes)
	for i := range ballast {
		ballast[i] = byte(i)
	}

	resultPath := filepath.Join(dir, "result.json")
	if _, err := runChild(t.Context(), nil, peakrss, "-o", resultPath, "--", program); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(resultPath)
	if err != nil {
		t.Fatal(err)
	}
	var r rssResult
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 0 || r.MaxRSSKiB <= 0 {
		t.Fatalf("peakrss -- true: exit code %d, peak %d KiB; want 0 and a positive peak", r.ExitCode, r.MaxRSSKiB)
	}
	if limit := int64(ballastBytes / 4 / 1024); r.MaxRSSKiB > limit {
		t.Errorf("peakrss -- true: peak %d KiB, want under %d KiB, far below this process's %d MiB", r.MaxRSSKiB, limit, ballastBytes>>20)
	}
	_ = ballast[len(ballast)-1]
}
