package nn

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Intra-op parallelism. Kernels with a Threads budget above one split their
// rows (or batch entries) into chunks; the calling goroutine runs the first
// chunk and a small package-wide pool of worker goroutines runs the others.
//
// The chunks here are a few microseconds of work, about what it costs to
// wake a parked goroutine (a futex and, in a VM, an inter-processor
// interrupt), so handing them to sleeping workers made two threads slower
// than one. Workers therefore spin for a short while (pollFor) after each
// job before parking, and the caller spins for its chunks' completion
// instead of sleeping on a WaitGroup, running queued chunks itself when no
// worker has taken them: back-to-back products (the layers of one model
// run, or consecutive runs) find the workers awake.
//
// A job travels to a worker by value through a channel and completion is a
// pooled counter, so fanning out allocates nothing in steady state (a `go`
// statement with a closure would allocate the closure on every call).

// job is one chunk of a kernel's work: rows [r0, r1) of the payload kind
// says. Dispatch is a switch rather than a func field, because an indirect
// call makes the job escape to the heap.
type job struct {
	kind  jobKind
	left  *atomic.Int32 // chunks not yet done
	idx   int           // chunk number
	r0    int
	r1    int
	dense denseJob
	conv  convJob
}

type jobKind uint8

const (
	jobDense jobKind = iota
	jobConv
)

func (j *job) do() {
	switch j.kind {
	case jobDense:
		j.dense.rows(j.r0, j.r1)
	case jobConv:
		j.conv.batches(j.idx, j.r0, j.r1)
	}
}

// pollFor is how long an idle worker keeps polling for the next job.
const pollFor = 20 * time.Microsecond

var (
	workerOnce  sync.Once
	workerCh    chan job
	counterPool = sync.Pool{New: func() any { return new(atomic.Int32) }}
)

// startWorkers starts GOMAXPROCS−1 workers (at least one): with the
// caller, that fills the processors.
func startWorkers() {
	n := max(runtime.GOMAXPROCS(0)-1, 1)
	workerCh = make(chan job, 4*maxChunks)
	for i := 0; i < n; i++ {
		go worker()
	}
}

func worker() {
	var j job
	for {
		select {
		case j = <-workerCh:
		default:
			if !poll(&j) {
				j = <-workerCh
			}
		}
		j.do()
		j.left.Add(-1)
	}
}

// poll waits up to pollFor for a job without parking. It spins without
// yielding: a yield goes through the scheduler's global queue and its lock,
// which the caller's processor needs too.
func poll(j *job) bool {
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case *j = <-workerCh:
			return true
		default:
		}
		if i&63 == 63 && time.Since(start) > pollFor {
			return false
		}
	}
}

// fanOut runs template over the chunk boundaries: chunk i covers
// [bounds[i], bounds[i+1]). The caller's goroutine runs chunk 0.
func fanOut(template *job, bounds []int) {
	workerOnce.Do(startWorkers)
	left := counterPool.Get().(*atomic.Int32)
	chunks := len(bounds) - 1
	left.Store(int32(chunks - 1))
	for i := 1; i < chunks; i++ {
		j := *template
		j.left, j.idx, j.r0, j.r1 = left, i, bounds[i], bounds[i+1]
		workerCh <- j
	}
	j := *template
	j.r0, j.r1 = bounds[0], bounds[1]
	j.do()
	// while waiting, run queued chunks (ours or another caller's) rather
	// than idle: when every worker is busy this is what keeps us moving
	for spins := 0; left.Load() > 0; spins++ {
		select {
		case j = <-workerCh:
			j.do()
			j.left.Add(-1)
		default:
			if spins&255 == 255 {
				// a worker just woken may be queued on our processor
				runtime.Gosched()
			}
		}
	}
	counterPool.Put(left)
}

// maxChunks bounds the number of goroutines one kernel call fans out to.
const maxChunks = 16

// splitRows divides rows [0, m) into at most `parts` chunks whose
// boundaries are multiples of `align`, returned in buf. It returns a single
// chunk when there is nothing to split.
func splitRows(buf *[maxChunks + 1]int, m, parts, align int) []int {
	parts = max(1, min(parts, maxChunks))
	units := (m + align - 1) / align
	parts = min(parts, units)
	b := buf[:0]
	b = append(b, 0)
	for i := 1; i < parts; i++ {
		b = append(b, min(m, (units*i/parts)*align))
	}
	b = append(b, m)
	return b
}
