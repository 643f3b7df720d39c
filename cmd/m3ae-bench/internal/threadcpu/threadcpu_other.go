//go:build !linux

package threadcpu

import "time"

// Now returns false: this platform has no per-thread CPU clock here, so
// callers fall back to wall time.
func Now() (time.Duration, bool) { return 0, false }
