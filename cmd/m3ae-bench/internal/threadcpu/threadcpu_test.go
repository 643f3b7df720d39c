package threadcpu

import (
	"runtime"
	"testing"
	"time"
)

func TestNowCountsOnlyRunning(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, ok := Now()
	if !ok {
		t.Skipf("no thread CPU clock on %s", runtime.GOOS)
	}

	// Sleeping uses no CPU time.
	time.Sleep(50 * time.Millisecond)
	afterSleep, _ := Now()
	if slept := afterSleep - start; slept > 20*time.Millisecond {
		t.Errorf("thread CPU time grew %v during a 50ms sleep, want under 20ms", slept)
	}

	// Spinning does.
	spinStart := time.Now()
	sum := 0
	for time.Since(spinStart) < 50*time.Millisecond {
		sum++
	}
	afterSpin, _ := Now()
	if spun := afterSpin - afterSleep; spun <= 0 {
		t.Errorf("thread CPU time grew %v during 50ms of spinning (%d iterations), want a positive amount", spun, sum)
	}
}
