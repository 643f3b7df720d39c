package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestQuantizeFidelityStopsOnInterrupt sends SIGINT while quantize
// measures fidelity on thousands of examples. The loop must stop at the
// next example and exit with the interrupted status well before the
// forced exit that interruptGrace gives a command that ignores its context.
func TestQuantizeFidelityStopsOnInterrupt(t *testing.T) {
	dir := t.TempDir()
	model := writeMicroModel(t, dir)
	image, err := filepath.Abs(filepath.Join(filepath.Dir(fixtureTestCaptions), "images", "google", "1f1e7-1f1ef.png"))
	if err != nil {
		t.Fatal(err)
	}
	// 5000 examples take minutes on the micro model, far longer than the
	// test waits.
	var captions strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&captions, "{\"image\": %q, \"caption\": \"flag number %d\"}\n", image, i)
	}
	captionsPath := filepath.Join(dir, "many.jsonl")
	if err := os.WriteFile(captionsPath, []byte(captions.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd, stderr := startMain(t, "quantize", "--in", model, "--out", filepath.Join(dir, "q.safetensors"),
		"--captions", captionsPath, "--log-level", "info")
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stderr.String(), "measuring fidelity") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("quantize did not start measuring fidelity within a minute; stderr:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code := waitExit(t, cmd, interruptGrace+5*time.Second)
	if elapsed := time.Since(start); elapsed > interruptGrace/2 {
		t.Errorf("quantize exited %v after SIGINT, want well under the %v grace", elapsed, interruptGrace)
	}
	if code != exitInterrupted {
		t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitInterrupted, stderr)
	}
	if want := "measure fidelity: stopped after"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}
