package math

import (
	"sync"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/parallel"
	"github.com/mtlrun/mtlrun/tensor"
)

// Intra-op parallelism for large float32 element-wise ops (the session's
// ops.Config.Threads budget). Below parallelMin elements, or at Threads <= 1,
// a kernel runs on the calling goroutine and allocates nothing; above, the
// output is cut into contiguous chunks handed to ops/parallel: the caller
// runs the first and the shared workers the others.

// parallelMin is the element count from which an op computed through
// float64 math (Exp, Erf, Log, ...) splits its work: below it the hand-off
// costs more than the loop. Memory-bound loops (arithmetic, Relu, the
// vector Sigmoid/Tanh) gain little from a second core while the data
// streams from memory, so they wait for parallelMinCheap.
const (
	parallelMin      = 1 << 16
	parallelMinCheap = 1 << 18
)

// chunkAlign keeps chunk boundaries on multiples of 64 elements so that the
// vector kernels (linalg.Sigmoid, linalg.Tanh) see the same vector/tail
// split as one unchunked call: results are bitwise independent of Threads.
const chunkAlign = 64

// maxChunks bounds the number of chunks of one call.
const maxChunks = 16

// ewJob is a float32 element-wise op over elements [0, n) cut into parts
// aligned chunks: unary (un != nil) o = un(x), or binary through k: mode 1
// both operands advance, 2 y is a scalar, 3 x is a scalar.
type ewJob struct {
	un       *unaryDef
	k        *kern[float32, float32, float32]
	mode     int
	o, x, y  []float32
	n, parts int
}

// bound is where chunk i starts (i == parts: the end).
func (j *ewJob) bound(i int) int {
	if i == j.parts {
		return j.n
	}
	units := (j.n + chunkAlign - 1) / chunkAlign
	return min(j.n, units*i/j.parts*chunkAlign)
}

// Do computes chunk i (parallel.Task).
func (j *ewJob) Do(i int) {
	lo, hi := j.bound(i), j.bound(i+1)
	o := j.o[lo:hi]
	switch {
	case j.un != nil:
		unaryF32(j.un, o, j.x[lo:hi])
	case j.mode == 1:
		j.k.vv(o, j.x[lo:hi], j.y[lo:hi])
	case j.mode == 2:
		j.k.vs(o, j.x[lo:hi], j.y[0])
	default:
		j.k.sv(o, j.x[0], j.y[lo:hi])
	}
}

// ewJobs pools the jobs handed to parallel.Run, which keeps the *ewJob
// where workers see it (a stack job would move to the heap every call).
var ewJobs = sync.Pool{New: func() any { return new(ewJob) }}

// splits reports whether an op over n elements fans out at threads.
func splits(threads, n int, cheap bool) bool {
	if cheap {
		return threads > 1 && n >= parallelMinCheap
	}
	return threads > 1 && n >= parallelMin
}

// fanOut runs t over elements [0, n) in up to threads aligned chunks.
func fanOut(t ewJob, n, threads int) {
	units := (n + chunkAlign - 1) / chunkAlign
	t.n = n
	t.parts = max(1, min(threads, maxChunks, units, n/(parallelMin/2)))
	if t.parts == 1 {
		t.Do(0)
		return
	}
	j := ewJobs.Get().(*ewJob)
	*j = t
	parallel.Run(j, j.parts, j.parts)
	*j = ewJob{} // drop the call's slices before pooling
	ewJobs.Put(j)
}

// parallelArith is arith for float32 operands of the same shape or with one
// scalar side, split over threads. ok is false when the op does not qualify
// (too small, a general broadcast, bad data): the caller then runs the
// ordinary path, which also reports any error.
func parallelArith(ar *ops.Arena, k *kern[float32, float32, float32], dst, a, b *tensor.Tensor, threads int) (r *tensor.Tensor, ok bool, err error) {
	ad, okA := a.Data.([]float32)
	bd, okB := b.Data.([]float32)
	if !okA || !okB || lenMatches(0, a, len(ad)) != nil || lenMatches(1, b, len(bd)) != nil {
		return nil, false, nil
	}
	var shape []int
	mode := 0
	switch {
	case tensor.SameShape(a.Shape, b.Shape):
		shape, mode = a.Shape, 1
	case len(bd) == 1 && len(b.Shape) <= len(a.Shape):
		shape, mode = a.Shape, 2
	case len(ad) == 1 && len(a.Shape) <= len(b.Shape):
		shape, mode = b.Shape, 3
	}
	n := max(len(ad), len(bd))
	if mode == 0 || !splits(threads, n, true) {
		return nil, false, nil
	}
	if dst == nil || dst.DType != tensor.Float32 || !tensor.SameShape(dst.Shape, shape) {
		if dst, err = ar.Empty(tensor.Float32, shape); err != nil {
			return nil, true, err
		}
	}
	fanOut(ewJob{k: k, mode: mode, o: dst.Data.([]float32), x: ad, y: bd}, n, threads)
	return dst, true, nil
}
