package nn

import (
	"sync"
	"unsafe"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
)

// packCache keeps the packed form of the last right-hand matrix a kernel
// saw. Weights are initializers, so the same tensor arrives on every run;
// the cache holds a reference to the slice it packed, so its address cannot
// be reused by another allocation while cached, and a different slice (new
// weights after training) simply repacks. Callers must not write into an
// input tensor in place (the runtime never does).
type packCache struct {
	mu     sync.Mutex
	data   []float32
	transB bool
	packed *linalg.PackedB
}

// getSlice packs op(B) (k×n; B is n×k when transB) stored densely in d.
func (p *packCache) getSlice(d []float32, transB bool, k, n int) *linalg.PackedB {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.packed != nil && p.transB == transB && len(d) == len(p.data) && len(d) > 0 &&
		unsafe.SliceData(d) == unsafe.SliceData(p.data) && p.packed.K == k && p.packed.N == n {
		return p.packed
	}
	ldb := n
	if transB {
		ldb = k
	}
	pk := linalg.PackB(transB, k, n, d, ldb)
	p.data, p.transB, p.packed = d, transB, pk
	return pk
}

// packB packs a right-hand matrix that is not a constant, on every run,
// into arena scratch (an arena buffer at the same address may hold other
// values next run, so nothing is cached).
func packB(ar *ops.Arena, transB bool, k, n int, d []float32) linalg.PackedB {
	ldb := n
	if transB {
		ldb = k
	}
	var p linalg.PackedB
	linalg.PackBInto(&p, ar.Float32s(linalg.PackedSize(k, n)), transB, k, n, d, ldb)
	return p
}

// f32Pool recycles float32 scratch buffers (im2col columns and the like).
var f32Pool sync.Pool

func getF32(n int) *[]float32 {
	if p, ok := f32Pool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

func putF32(p *[]float32) { f32Pool.Put(p) }
