package rnn

import (
	"runtime"
	"sync"
)

// Helper goroutines for parallel runs: a package-wide pool that receives
// work through a buffered channel, so a parallel run allocates nothing (a
// `go` statement per run would allocate its closure). Helpers park between
// runs. Spinning instead (as onnxruntime's pool does) was tried and made
// 2-thread runs 2-3x slower on the shared development machine: when the
// other vCPU is busy with other processes the spinner and the caller share
// one core. A helper that is late only finds the jobs already taken: the
// caller works through the shared job counter itself.

// poolTask is a parallel run a helper joins (*parRun[T]).
type poolTask interface{ worker() }

var (
	poolOnce sync.Once
	poolCh   chan poolTask
)

func startPool() {
	poolCh = make(chan poolTask, 64)
	for i := 0; i < max(runtime.GOMAXPROCS(0), 2); i++ {
		go poolLoop()
	}
}

func poolLoop() {
	for t := range poolCh {
		t.worker()
	}
}

// submit hands t to a helper; if the pool's queue is full (many concurrent
// parallel runs) it gets a goroutine of its own.
func submit(t poolTask) {
	poolOnce.Do(startPool)
	select {
	case poolCh <- t:
	default:
		go t.worker()
	}
}
