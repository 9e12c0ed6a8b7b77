// Package threadcpu reads the CPU time of the calling OS thread, which
// benchmarks on a shared machine report because other jobs disturb it far
// less than wall time. Callers lock their goroutine to its thread
// (runtime.LockOSThread) around a measurement.
package threadcpu

import "time"

// Now is the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID, ns
// resolution) on Linux; elsewhere, where there is no such clock, the wall
// time since the process started, so differences stay meaningful.
func Now() time.Duration { return now() }

var start = time.Now()
