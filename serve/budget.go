package serve

import "sync"

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
