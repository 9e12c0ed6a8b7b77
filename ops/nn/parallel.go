package nn

import (
	"sync"

	"github.com/mtlrun/mtlrun/ops/parallel"
)

// Intra-op parallelism. Kernels with a Threads budget above one split their
// rows (or batch entries) into chunks and hand them to ops/parallel, whose
// caller runs the first chunk and whose shared workers run the others.
// When to split stays here (parallelWork, in linear.go).

// job is one kernel call split into chunks: chunk i covers rows
// [bounds[i], bounds[i+1]) of the payload kind says. Dispatch is a switch
// on kind so that one pooled type serves every kernel; jobs come from a
// pool because parallel.Run keeps the *job where workers see it, which
// would move a stack job to the heap on every call.
type job struct {
	kind   jobKind
	bounds [maxChunks + 1]int
	dense  denseJob
	conv   convJob
}

type jobKind uint8

const (
	jobDense jobKind = iota
	jobConv
)

// Do runs chunk i (parallel.Task).
func (j *job) Do(i int) {
	r0, r1 := j.bounds[i], j.bounds[i+1]
	switch j.kind {
	case jobDense:
		j.dense.rows(r0, r1)
	case jobConv:
		j.conv.batches(i, r0, r1)
	}
}

var jobs = sync.Pool{New: func() any { return new(job) }}

// fanOut runs template over the chunk boundaries: chunk i covers
// [bounds[i], bounds[i+1]), one chunk per thread. The caller's goroutine
// runs chunk 0.
func fanOut(template *job, bounds []int) {
	j := jobs.Get().(*job)
	*j = *template
	copy(j.bounds[:], bounds)
	chunks := len(bounds) - 1
	parallel.Run(j, chunks, chunks)
	*j = job{} // drop the call's slices before pooling
	jobs.Put(j)
}

// maxChunks bounds the number of chunks one kernel call fans out to.
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
