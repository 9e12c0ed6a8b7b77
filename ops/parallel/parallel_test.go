package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sumTask adds chunk i's range of xs into sums[i].
type sumTask struct {
	xs    []float64
	sums  []float64
	calls []atomic.Int32
	n     int
}

func (t *sumTask) Do(i int) {
	t.calls[i].Add(1)
	lo, hi := len(t.xs)*i/t.n, len(t.xs)*(i+1)/t.n
	s := 0.0
	for _, x := range t.xs[lo:hi] {
		s += x
	}
	t.sums[i] = s
}

func newSumTask(size, n int) *sumTask {
	t := &sumTask{xs: make([]float64, size), sums: make([]float64, n), calls: make([]atomic.Int32, n), n: n}
	for i := range t.xs {
		t.xs[i] = float64(i % 7)
	}
	return t
}

func (t *sumTask) check(tb testing.TB) {
	tb.Helper()
	for i := range t.calls {
		if c := t.calls[i].Swap(0); c != 1 {
			tb.Fatalf("chunk %d ran %d times", i, c)
		}
	}
	want := make([]float64, t.n)
	for i := range want {
		for _, x := range t.xs[len(t.xs)*i/t.n : len(t.xs)*(i+1)/t.n] {
			want[i] += x
		}
	}
	for i := range want {
		if t.sums[i] != want[i] {
			tb.Fatalf("chunk %d: sum %v, want %v", i, t.sums[i], want[i])
		}
	}
}

// TestSerialStartsNothing: at one thread nothing is started or queued. It
// comes first in the file, before any test starts the workers.
func TestSerialStartsNothing(t *testing.T) {
	if queue != nil {
		t.Skip("workers started by an earlier pass (-count)")
	}
	before := runtime.NumGoroutine()
	task := newSumTask(100, 4)
	Run(task, 4, 1)
	Wake(1)
	task.check(t)
	if queue != nil || runtime.NumGoroutine() != before {
		t.Fatalf("workers started at one thread (goroutines %d → %d)", before, runtime.NumGoroutine())
	}
	if n := testing.AllocsPerRun(100, func() { Run(task, 4, 1) }); n != 0 {
		t.Fatalf("%v allocations per Run at one thread", n)
	}
}

func TestRunEveryChunkOnce(t *testing.T) {
	for _, threads := range []int{0, 1, 2, 3, 8, 64} {
		for _, n := range []int{0, 1, 2, 5, 16, 100} {
			task := newSumTask(1000, n)
			Run(task, n, threads)
			task.check(t)
		}
	}
}

// TestConcurrentRuns fans out from many goroutines at once, more than the
// queue holds, with long and short chunks: every Run must finish (a full
// queue makes callers run chunks themselves) and run each chunk once.
func TestConcurrentRuns(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			task := newSumTask(1000*(g%5+1), 2+g%7)
			for r := 0; r < 200; r++ {
				Run(task, task.n, 2+g%5)
				task.check(t)
			}
		}()
	}
	wg.Wait()
}

// TestNestedRuns fans out from inside a chunk (a worker's or a caller's).
func TestNestedRuns(t *testing.T) {
	outer := &nestTask{inner: make([]*sumTask, 4)}
	for i := range outer.inner {
		outer.inner[i] = newSumTask(500, 3)
	}
	for r := 0; r < 100; r++ {
		Run(outer, 4, 4)
		for _, in := range outer.inner {
			in.check(t)
		}
	}
}

type nestTask struct{ inner []*sumTask }

func (t *nestTask) Do(i int) { Run(t.inner[i], 3, 3) }

func TestRunAllocatesNothing(t *testing.T) {
	task := newSumTask(4096, 4)
	for _, threads := range []int{1, 2, 4} {
		Run(task, 4, threads)
		task.check(t)
		if n := testing.AllocsPerRun(200, func() { Run(task, 4, threads) }); n != 0 {
			t.Errorf("threads %d: %v allocations per Run", threads, n)
		}
		for i := range task.calls {
			task.calls[i].Store(0)
		}
	}
}

// BenchmarkRun is the hand-off cost: a Run of two tiny chunks, back to
// back (the worker stays awake between them).
func BenchmarkRun(b *testing.B) {
	for _, c := range []struct {
		name          string
		size, threads int
	}{{"tiny/t1", 64, 1}, {"tiny/t2", 64, 2}, {"64K/t1", 1 << 16, 1}, {"64K/t2", 1 << 16, 2}} {
		b.Run(c.name, func(b *testing.B) {
			task := newSumTask(c.size, 2)
			b.ReportAllocs()
			for b.Loop() {
				Run(task, 2, c.threads)
			}
		})
	}
}

// slowTask's chunk 0 outlasts spinFor, and chunk 1 (the caller's first
// claim, as chunks are claimed from the top) waits for chunk 0 to start,
// so chunk 0 runs on a worker while the caller, done with chunk 1, parks
// and must be woken by the worker.
type slowTask struct {
	ran     [2]atomic.Int32
	started atomic.Bool
}

func (t *slowTask) Do(i int) {
	if i == 0 {
		t.started.Store(true)
		time.Sleep(3 * spinFor)
	} else {
		// bounded: chunks may not depend on each other, and when the
		// invitation was dropped (queue full) this goroutine runs both
		for deadline := time.Now().Add(100 * time.Millisecond); !t.started.Load() && time.Now().Before(deadline); {
			runtime.Gosched()
		}
	}
	t.ran[i].Add(1)
}

func TestLongChunkParksCaller(t *testing.T) {
	task := &slowTask{}
	for r := 0; r < 5; r++ {
		task.started.Store(false)
		Run(task, 2, 2)
		for i := range task.ran {
			if n := task.ran[i].Swap(0); n != 1 {
				t.Fatalf("run %d: chunk %d ran %d times", r, i, n)
			}
		}
	}
}

// panicTask panics in chunk 0 once chunk 1 is running, so with two threads
// the panic happens on a worker while the caller is busy: chunks are
// claimed from the last down, the caller takes chunk 1 and waits in it
// until chunk 0 has started elsewhere.
type panicTask struct {
	started    chan struct{}
	concurrent atomic.Bool
	ran        [2]atomic.Int32
}

func (t *panicTask) Do(i int) {
	t.ran[i].Add(1)
	if i == 0 {
		close(t.started)
		panic("chunk zero broke")
	}
	select {
	case <-t.started:
		t.concurrent.Store(true)
	case <-time.After(10 * time.Second): // a guard, not a measurement
	}
}

func TestWorkerPanicReachesCaller(t *testing.T) {
	for rep := 0; rep < 3; rep++ {
		task := &panicTask{started: make(chan struct{})}
		var got any
		func() {
			defer func() { got = recover() }()
			Run(task, 2, 2)
		}()
		pe, ok := got.(*PanicError)
		if !ok {
			t.Fatalf("Run panicked with %T %v, want *PanicError", got, got)
		}
		if pe.Chunk != 0 || pe.Value != "chunk zero broke" || len(pe.Stack) == 0 {
			t.Fatalf("PanicError = chunk %d value %v, %d bytes of stack", pe.Chunk, pe.Value, len(pe.Stack))
		}
		if !task.concurrent.Load() {
			t.Fatalf("chunk 0 did not run beside chunk 1: the panic was not on a worker")
		}
		if task.ran[0].Load() != 1 || task.ran[1].Load() != 1 {
			t.Fatalf("chunks ran %d and %d times", task.ran[0].Load(), task.ran[1].Load())
		}
	}
	// the pool still works afterwards
	task := newSumTask(1000, 16)
	Run(task, 16, 2)
	task.check(t)
}

func TestNestedPanicIsWrappedOnce(t *testing.T) {
	inner := &panicTask{started: make(chan struct{})}
	outer := &nestPanic{inner: inner}
	var got any
	func() {
		defer func() { got = recover() }()
		Run(outer, 2, 2)
	}()
	pe, ok := got.(*PanicError)
	if !ok || pe.Value != "chunk zero broke" {
		t.Fatalf("Run panicked with %#v, want the inner chunk's *PanicError", got)
	}
}

type nestPanic struct{ inner *panicTask }

func (t *nestPanic) Do(i int) {
	if i == 1 {
		Run(t.inner, 2, 2)
	}
}
