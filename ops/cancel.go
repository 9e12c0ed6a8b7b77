package ops

import "context"

// SetContext attaches the run's context to the arena, so that long kernels
// (the recurrent ones, every few time steps) can stop early when the caller
// gives up. The runtime sets it before every run and detaches it with
// ClearContext after.
func (a *Arena) SetContext(ctx context.Context) {
	if a == nil {
		return
	}
	a.ctx = ctx
}

// ClearContext detaches the run's context: the arena is never cancelled
// until the next SetContext.
func (a *Arena) ClearContext() {
	if a == nil {
		return
	}
	a.ctx = nil
}

// Err reports why the run this arena serves was cancelled (the context's
// error), or nil while it may go on. A nil arena, or one without a
// context, is never cancelled. Safe to call from a kernel's helper
// goroutines (the context is only read).
func (a *Arena) Err() error {
	if a == nil || a.ctx == nil {
		return nil
	}
	select {
	case <-a.ctx.Done():
		return a.ctx.Err()
	default:
		return nil
	}
}
