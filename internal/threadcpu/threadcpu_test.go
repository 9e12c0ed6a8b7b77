package threadcpu

import (
	"runtime"
	"testing"
)

// TestNowAdvancesWithWork: a busy loop of some milliseconds moves the
// clock forward, and never backward.
func TestNowAdvancesWithWork(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := Now()
	x := 1.0
	for i := 0; i < 20_000_000; i++ {
		x = x*1.0000001 + 1e-9
	}
	d := Now() - t0
	if d <= 0 {
		t.Fatalf("thread CPU time moved %v over a busy loop (x=%g)", d, x)
	}
}
