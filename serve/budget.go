package serve

import (
	"os"
	goruntime "runtime"
	"runtime/debug"
	"sync"
)

// budget is the server-wide memory budget shared by in-flight requests:
// request bodies while they are read and decompressed, then each admitted
// request's estimated working set until its computation stops.
type budget struct {
	mu          sync.Mutex
	limit, used sat
}

// tryAcquire reserves n bytes if they fit now.
func (b *budget) tryAcquire(n sat) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.limit || b.used > b.limit-n {
		return false
	}
	b.used += n
	return true
}

// release returns n bytes reserved before.
func (b *budget) release(n sat) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// inUse reports the bytes reserved.
func (b *budget) inUse() sat {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// reservation is what one request holds; release is idempotent.
type reservation struct {
	b *budget
	n sat
}

func (r *reservation) grow(n sat) bool {
	if !r.b.tryAcquire(n) {
		return false
	}
	r.n += n
	return true
}

func (r *reservation) release() {
	if r.n > 0 {
		r.b.release(r.n)
		r.n = 0
	}
}

// LimitHeap sets the Go runtime's soft memory limit to what the process
// holds now (the loaded models) plus the memory budget and a quarter more,
// unless GOMEMLIMIT is set or a lower limit already is. The budget bounds
// the memory in-flight requests hold; the limit makes the collector reclaim
// what finished and refused requests left behind before the heap grows far
// past it (by default it may grow to twice the live heap). Serve calls it;
// it returns the previous limit, for tests to restore.
func (s *Server) LimitHeap() (previous int64) {
	previous = debug.SetMemoryLimit(-1)
	if os.Getenv("GOMEMLIMIT") != "" {
		return previous
	}
	// what loading left behind goes back first (two collections: pooled
	// objects survive one), so that "held" is what the models really take
	goruntime.GC()
	debug.FreeOSMemory()
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	held := int64(m.Sys - m.HeapReleased)
	limit := held + s.opts.MemoryBudget + s.opts.MemoryBudget/4
	if limit > 0 && limit < previous {
		debug.SetMemoryLimit(limit)
		s.opts.Logger.Info("go memory limit", "bytes", limit, "held", held)
	}
	return previous
}
