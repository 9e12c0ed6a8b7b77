package runtime

import (
	"context"
	"fmt"
	rt "runtime"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// streamExec drives one of a stream's executors by position instead of by
// name: a step is a few microseconds, and the map traffic of Executor.Run
// (input checks by name, initializer lookups, the result map) was a third
// of it. The stream checks its own inputs (Stream.checkStep) and feeds its
// own state buffers, so the name checks are not needed.
type streamExec struct {
	e *Executor
	// per feed input of the executor's graph, in FeedInputs order: the
	// stream input (>= 0) or the state buffer (-1-j) that feeds it
	src []int
	// the initializers the plan reads, taken when the stream was made: a
	// stream runs the weights the model had then (its fingerprint too)
	inits []*tensor.Tensor
	// per output of the executor (Outputs order), its value slot
	outSlots []int
	// the feed shapes of the last run, for skipping the static values
	lastShapes [][]int
	lastDTypes []tensor.DType
	feedVals   []*tensor.Tensor
	// per step: the arena kernel it runs (nil: not an arena kernel, run
	// through Executor.runStep), bound to its weights after the first
	// successful run where the kernel can be (see binder)
	kern  []ops.ArenaOp
	bound bool
	// per step: nil, or the step may be skipped as a view (streamView)
	views []*streamView
}

// binder is a kernel that can specialise itself to the constant inputs of
// a run (ops/rnn's LSTM, GRU and RNN: weights checked and packed once).
// The op it returns runs any inputs, falling back to the general path for
// inputs other than those it was bound to; ok is false when the kernel
// cannot bind to in.
type binder interface {
	Bind(in []*tensor.Tensor) (op ops.ArenaOp, ok bool)
}

func newStreamExec(e *Executor, feedIndex map[string]int) *streamExec {
	x := &streamExec{e: e, outSlots: e.outSlots}
	for _, f := range e.c.feeds {
		x.src = append(x.src, feedIndex[f.Name])
	}
	for _, in := range e.inits {
		x.inits = append(x.inits, e.c.g.Initializers[in.name])
	}
	x.lastShapes = make([][]int, len(e.c.feeds))
	x.lastDTypes = make([]tensor.DType, len(e.c.feeds))
	x.feedVals = make([]*tensor.Tensor, len(e.c.feeds))
	x.kern = make([]ops.ArenaOp, len(e.steps))
	for i := range e.steps {
		if k, ok := e.steps[i].k.(ops.ArenaOp); ok {
			x.kern[i] = k
		}
	}
	x.views = viewCandidates(e)
	return x
}

// bind replaces the kernels that can be bound (binder) by their bound
// form, with the arguments of the run that just succeeded: the stream
// feeds the same weight tensors at every step (streamExec.inits).
func (x *streamExec) bind() {
	x.bound = true
	for i := range x.e.steps {
		st := &x.e.steps[i]
		if st.static || x.kern[i] == nil {
			continue
		}
		if b, ok := x.kern[i].(binder); ok {
			if k, ok := b.Bind(st.args); ok {
				x.kern[i] = k
			}
		}
	}
}

// run executes the plan with the feeds bound by position (from the stream's
// inputs and states); the outputs are read with out. It stops early, with
// an error wrapping ctx.Err(), when ctx is done: checked between nodes,
// by the recurrent kernels every few time steps (ops.Arena.Err) and by
// Loop and Scan once per iteration, as in Executor.RunContext.
func (x *streamExec) run(ctx context.Context, inputs []*tensor.Tensor, states []*streamState) error {
	e := x.e
	if err := ctx.Err(); err != nil {
		return err
	}
	c := e.c
	same := e.staticReady
	for i, s := range x.src {
		var t *tensor.Tensor
		if s >= 0 {
			t = inputs[s]
		} else {
			t = states[-1-s].buf
		}
		x.feedVals[i] = t
		e.vals[e.feedSlot[i]] = t
		if same && (t.DType != x.lastDTypes[i] || !tensor.SameShape(t.Shape, x.lastShapes[i])) {
			same = false
		}
	}
	for i, in := range e.inits {
		e.vals[in.slot] = x.inits[i]
	}
	skipStatic := same
	var capture map[string]*tensor.Tensor
	var key string
	if !same && c.static.any {
		// a new shape class: the general path (allocates, once per class)
		m := make(map[string]*tensor.Tensor, len(c.feeds))
		for i, f := range c.feeds {
			m[f.Name] = x.feedVals[i]
		}
		skipStatic, capture, key = e.prepareStatic(m, x.feedVals)
		for i, t := range x.feedVals {
			x.lastShapes[i] = append(x.lastShapes[i][:0], t.Shape...)
			x.lastDTypes[i] = t.DType
		}
	}
	done := ctx.Done()
	if done != nil {
		e.arena.SetContext(ctx)
		e.ctx = ctx
		defer func() {
			e.arena.ClearContext()
			e.ctx = nil
		}()
	}
	if err := x.runSteps(done, skipStatic, capture); err != nil {
		e.staticReady = false
		return err
	}
	if capture != nil {
		c.static.store(key, capture)
	}
	e.staticReady = c.static.any
	if !x.bound {
		x.bind()
	}
	return nil
}

// out returns the executor's i-th output of the last run.
func (x *streamExec) out(i int) *tensor.Tensor { return x.e.vals[x.outSlots[i]] }

// runSteps is the loop of Executor.Run with one panic guard for the whole
// plan instead of one per node (runGuarded's closure and deferred recover
// were a measurable part of a one-step run): arena kernels are called
// directly, anything else goes through runStep.
// done is the run's context's Done channel (nil: never cancelled).
func (x *streamExec) runSteps(done <-chan struct{}, skipStatic bool, capture map[string]*tensor.Tensor) (err error) {
	e := x.e
	cur := -1
	defer func() {
		if r := recover(); r != nil {
			st := &e.steps[cur]
			n := e.c.g.Nodes[st.node]
			buf := make([]byte, 2048)
			buf = buf[:rt.Stack(buf, false)]
			err = &NodeError{n.Label(), n.OpType, fmt.Errorf("kernel panicked: %v (inputs %s)\n%s", r, describe(st.args), buf)}
		}
	}()
	e.arena.Reset()
	for i := range e.steps {
		st := &e.steps[i]
		if st.static && skipStatic {
			continue
		}
		if done != nil {
			select {
			case <-done:
				return e.ctx.Err()
			default:
			}
		}
		cur = i
		v := x.views[i]
		if v != nil && v.take(e, st) {
			continue
		}
		k := x.kern[i]
		if st.static || k == nil {
			arena := &e.arena
			if st.static {
				arena = nil // static values outlive the run: not arena memory
			}
			if err := e.runStep(st, arena); err != nil {
				return err
			}
		} else {
			if err := x.runArena(st, k); err != nil {
				return err
			}
		}
		if v != nil {
			v.learn(e, st)
		}
		if capture != nil && st.static {
			for _, o := range st.out {
				if o >= 0 {
					capture[e.names[o]] = e.vals[o]
				}
			}
		}
	}
	return nil
}

// runArena runs one arena kernel with its inputs from the slot table, as
// runStep does, without the per-node panic guard.
func (x *streamExec) runArena(st *step, k ops.ArenaOp) error {
	e := x.e
	for j, s := range st.in {
		st.args[j] = nil
		if s < 0 {
			continue
		}
		t := e.vals[s]
		if t == nil {
			n := e.c.g.Nodes[st.node]
			return &NodeError{n.Label(), n.OpType, fmt.Errorf("input %d %q has no value", j, e.names[s])}
		}
		st.args[j] = t
	}
	outs, err := k.RunWith(&e.arena, st.args)
	if err != nil {
		n := e.c.g.Nodes[st.node]
		return &NodeError{n.Label(), n.OpType, fmt.Errorf("%w (inputs %s)", err, describe(st.args))}
	}
	for j, s := range st.out {
		if s < 0 {
			continue
		}
		if j >= len(outs) || outs[j] == nil {
			n := e.c.g.Nodes[st.node]
			return &NodeError{n.Label(), n.OpType, fmt.Errorf("kernel did not produce output %d %q", j, e.names[s])}
		}
		e.vals[s] = outs[j]
	}
	return nil
}
