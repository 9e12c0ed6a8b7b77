package nn

import (
	"runtime"
	"sync"
)

// Intra-op parallelism. Kernels with a Threads budget above one split their
// rows (or batch entries) into chunks; the calling goroutine runs the first
// chunk and a small package-wide pool of worker goroutines runs the others.
// A job travels to a worker by value through a channel and completion is
// signalled through a pooled WaitGroup, so fanning out allocates nothing in
// steady state (a `go` statement with a closure would allocate the closure
// and its captured WaitGroup on every call).

// job is one chunk of a kernel's work: rows [r0, r1) of the payload kind
// says. Dispatch is a switch rather than a func field, because an indirect
// call makes the job escape to the heap.
type job struct {
	kind  jobKind
	wg    *sync.WaitGroup
	idx   int // chunk number
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

var (
	workerOnce sync.Once
	workerCh   chan job
	wgPool     = sync.Pool{New: func() any { return new(sync.WaitGroup) }}
)

func startWorkers() {
	n := max(runtime.GOMAXPROCS(0), 2)
	workerCh = make(chan job, 4*n)
	for i := 0; i < n; i++ {
		go func() {
			var j job
			for j = range workerCh {
				j.do()
				j.wg.Done()
			}
		}()
	}
}

// fanOut runs template over the chunk boundaries bounds[0..len-1]: chunk i
// covers [bounds[i], bounds[i+1]). The caller's goroutine runs chunk 0.
// bounds must have at most maxChunks+1 entries.
func fanOut(template *job, bounds []int) {
	workerOnce.Do(startWorkers)
	wg := wgPool.Get().(*sync.WaitGroup)
	chunks := len(bounds) - 1
	wg.Add(chunks - 1)
	for i := 1; i < chunks; i++ {
		j := *template
		j.wg, j.idx, j.r0, j.r1 = wg, i, bounds[i], bounds[i+1]
		workerCh <- j
	}
	j := *template
	j.r0, j.r1 = bounds[0], bounds[1]
	j.do()
	wg.Wait()
	wgPool.Put(wg)
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
