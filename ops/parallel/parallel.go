// Package parallel runs the independent chunks of one kernel call on the
// calling goroutine and a fixed set of shared worker goroutines: the one
// intra-op worker pool of every kernel family (ops/nn, ops/math, ops/rnn).
//
// When to split, and into how many chunks, stays with each family (its
// thresholds depend on its kernels); this package only hands chunks out.
package parallel

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Task is a kernel call cut into chunks. Do(i) computes chunk i; Run calls
// it once for every i, from several goroutines at once, so chunks must
// write disjoint memory.
//
// Run keeps the Task where workers see it, so the dynamic value should be
// a pointer to state the kernel (or its arena) owns and reuses: a fresh
// stack value would move to the heap on every call.
type Task interface {
	Do(chunk int)
}

// batch is one Run in progress. Its chunks are claimed from a shared
// counter by the caller and by whichever workers answer its invitations,
// so a late or busy worker only finds fewer chunks left and nobody waits
// on a particular goroutine.
//
// A worker may take an invitation after the Run is over (it was busy, or
// the caller ran every chunk itself), by which time the batch may serve
// another Run. So the counter shares one atomic word with a generation
// number, the invitation carries the generation, and a claim succeeds only
// while the generation matches: a stale invitation claims nothing and
// touches nothing else. That lets the caller recycle the batch as soon as
// its chunks are done, without waiting for every invited worker.
type batch struct {
	claim atomic.Uint64 // generation<<32 | chunks left to claim
	t     Task          // set before the generation is published
	n     int32
	done  atomic.Int32 // chunks finished
	state atomic.Int32 // running, sleeping (caller parked on wake), finished
	wake  chan struct{}
	// failed holds the first panic of a chunk of this Run; Run re-raises
	// it on the caller once every chunk is done
	failed atomic.Pointer[PanicError]
}

// PanicError is what Run panics with on the calling goroutine when a chunk
// panicked on any goroutine: the chunk's panic value and the stack of the
// goroutine it happened on. Recovering it on a worker and re-raising it on
// the caller lets the caller's recover (the runtime turns a kernel panic
// into a *runtime.NodeError) see it, where a panic left on a worker would
// end the process.
type PanicError struct {
	Chunk int
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("panic in parallel chunk %d: %v\n%s", e.Chunk, e.Value, e.Stack)
}

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

const (
	running int32 = iota
	sleeping
	finished
)

// invitation asks a worker to join a batch's Run of generation gen.
type invitation struct {
	b   *batch
	gen uint32
}

// work claims and runs chunks of generation gen until none is left. Chunks
// are claimed from the last down, so the counter is all a claim needs.
func (b *batch) work(gen uint32) {
	for {
		c := b.claim.Load()
		left := uint32(c)
		if uint32(c>>32) != gen || left == 0 {
			return
		}
		if !b.claim.CompareAndSwap(c, c-1) {
			continue
		}
		// the claim holds the Run open, so b.t and b.n belong to gen until
		// our chunk is counted done; after that only atomics are touched
		n := b.n
		b.do(int(left - 1))
		if b.done.Add(1) == n && b.state.Swap(finished) == sleeping {
			b.wake <- struct{}{}
		}
	}
}

// do runs one chunk, recording a panic in b.failed instead of letting it
// unwind the goroutine: the chunk still counts as done, so the Run ends
// and its caller re-raises the panic.
func (b *batch) do(chunk int) {
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*PanicError) // a nested Run's, already wrapped
			if !ok {
				buf := make([]byte, 4096)
				pe = &PanicError{Chunk: chunk, Value: r, Stack: buf[:runtime.Stack(buf, false)]}
			}
			b.failed.CompareAndSwap(nil, pe)
		}
	}()
	b.t.Do(chunk)
}

// free holds idle batches. Not a sync.Pool, which a garbage collection
// empties; a channel is also cheap next to a Run.
var free = make(chan *batch, 64)

// spinFor is how long an idle worker keeps polling the queue before it
// parks, and how long a caller polls for its chunks' completion before it
// parks. Waking a parked goroutine costs a futex and, in a VM, an
// inter-processor interrupt: on the 2-vCPU development VM a parked worker
// took ~100 µs to start its first chunk (~230 µs under load), more than
// many kernels' whole chunks. A worker that finishes early and parks is
// late for the next Run, finishes early again, and so on. Polling for a
// millisecond keeps it awake across back-to-back calls (the layers of one
// model run, consecutive runs): LSTM(64) batch 64 on two threads went from
// 0.58 to 0.51 ms at p50 against 50 µs of polling. The price is up to a
// millisecond of one core's time after the last Run of a burst, which is
// what an explicit Threads budget asks for.
const spinFor = time.Millisecond

// yieldEvery is how often a polling goroutine lets others run: while it
// polls it holds a processor that a goroutine of the program (another
// session's caller, a server handler) may be waiting for, and the
// scheduler would only preempt it after 10 ms.
const yieldEvery = 20 * time.Microsecond

var (
	startOnce sync.Once
	queue     chan invitation // a nil b is a wake-up call (Wake)
)

// Workers is the number of worker goroutines: GOMAXPROCS−1 (at least one),
// which with a calling goroutine fills the processors.
func Workers() int { return max(runtime.GOMAXPROCS(0)-1, 1) }

func start() {
	// room for several concurrent Runs' invitations; when it is full the
	// callers run the chunks themselves
	queue = make(chan invitation, 64)
	for i := 0; i < Workers(); i++ {
		go worker()
	}
}

func worker() {
	for {
		inv, ok := poll()
		if !ok {
			inv = <-queue
		}
		if inv.b != nil {
			inv.b.work(inv.gen)
		}
	}
}

// poll waits up to spinFor for an invitation without parking; ok is false
// when none came.
func poll() (inv invitation, ok bool) {
	var s spinner
	for s.more() {
		select {
		case inv = <-queue:
			if inv.b != nil {
				return inv, true
			}
		default:
		}
	}
	return inv, false
}

// spinner paces a polling loop: more is false once spinFor has passed,
// and it yields the processor every yieldEvery. The clock is read every
// 64 iterations only.
type spinner struct {
	i           int
	start, last time.Time
}

func (s *spinner) more() bool {
	s.i++
	if s.i&63 != 0 {
		return true
	}
	now := time.Now()
	if s.start.IsZero() {
		s.start, s.last = now, now
	}
	if now.Sub(s.start) > spinFor {
		return false
	}
	if now.Sub(s.last) > yieldEvery {
		runtime.Gosched()
		s.last = now
	}
	return true
}

// Run runs t's chunks 0 … n−1 on the calling goroutine and up to
// threads−1 workers, and returns when all are done. The caller works
// through whatever chunks no worker has claimed, so with threads ≤ 1 or
// n ≤ 1 everything runs on the caller, in order, and no goroutine starts.
// Any number of goroutines may call Run at once: when the invitation
// queue is full a caller does the work itself.
//
// A chunk that panics, on whatever goroutine, does not stop the others:
// once all are done Run panics on the caller with a *PanicError holding
// the first chunk panic (at threads ≤ 1 the panic simply unwinds the
// caller).
func Run(t Task, n, threads int) {
	helpers := min(threads, n) - 1
	if helpers <= 0 {
		for i := 0; i < n; i++ {
			t.Do(i)
		}
		return
	}
	startOnce.Do(start)
	var b *batch
	select {
	case b = <-free:
	default:
		b = &batch{wake: make(chan struct{}, 1)}
	}
	b.t, b.n = t, int32(n)
	b.done.Store(0)
	b.state.Store(running)
	gen := uint32(b.claim.Load()>>32) + 1
	b.claim.Store(uint64(gen)<<32 | uint64(n)) // publishes the Run
	for i := 0; i < helpers; i++ {
		select {
		case queue <- invitation{b, gen}:
		default:
			i = helpers // queue full: our share grows
		}
	}
	b.work(gen)
	b.wait()
	b.t = nil // let the kernel's state go
	failed := b.failed.Swap(nil)
	select {
	case free <- b:
	default:
	}
	if failed != nil {
		panic(failed)
	}
}

// wait returns once every chunk of b is done. Meanwhile the caller runs
// queued chunks of other Runs rather than idle (when every worker is busy,
// that is what keeps them moving), then polls, then parks.
func (b *batch) wait() {
	var s spinner
	for b.state.Load() != finished {
		select {
		case inv := <-queue:
			if inv.b != nil && inv.b != b {
				inv.b.work(inv.gen)
			}
			continue
		default:
		}
		if !s.more() {
			// the chunks left are long ones: park until the goroutine
			// finishing the last chunk wakes us (if it finished first,
			// the CAS fails and it sends nothing)
			if b.state.CompareAndSwap(running, sleeping) {
				<-b.wake
			}
			return
		}
	}
}

// Wake asks an idle worker to start polling, ahead of a Run expected
// shortly: a kernel calls it before its own setup (taking buffers,
// packing) so that the worker is awake by the time chunks are handed out.
// It never blocks and does nothing at threads ≤ 1.
func Wake(threads int) {
	if threads <= 1 {
		return
	}
	startOnce.Do(start)
	if len(queue) > 0 {
		return // a worker has something to wake up for already
	}
	select {
	case queue <- invitation{}:
	default:
	}
}
