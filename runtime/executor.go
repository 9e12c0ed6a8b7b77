package runtime

import (
	"context"
	"errors"
	"fmt"
	rt "runtime"
	"strings"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Executor runs a Session for one fixed set of requested outputs with a
// memory plan: values live in a slot table resolved at construction (no
// name lookups while running), and kernels take their outputs and scratch
// from the executor's ops.Arena. Once it has run at a given set of input
// shapes, running again at those shapes allocates nothing, provided every
// kernel on the path takes arena buffers (the float32 kernels of mtlrun's
// op set do; control-flow ops and a few rare kernels still allocate).
//
// The map and tensors Run returns belong to the executor and are
// overwritten by its next Run: clone what you keep (Session.Run does that
// for you). An Executor is not safe for concurrent use; make one per
// goroutine. Executors of one Session share its kernels, packed weights
// and cached static values.
type Executor struct {
	c       *compiled
	outputs []string
	arena   ops.Arena

	names    []string         // slot → value name
	vals     []*tensor.Tensor // slot → current value
	feedSlot []int            // per feed input of the graph: its slot, or -1 if unread
	feedVals []*tensor.Tensor // per feed input: this run's tensor, nil if not fed
	reqFeeds []int            // required as indices into the feeds (nil: check by name)
	inits    []slotName       // initializers read by the plan, re-read every run
	steps    []step
	outSlots []int
	result   map[string]*tensor.Tensor

	// the input shapes of the last run, so that a run at the same shapes
	// can keep the static values already in the slot table
	sig, lastSig []int
	staticReady  bool
	staticKey    string // outputs part of the static cache key
	required     []string
	ctx          context.Context // of the current run, for control-flow ops
}

type slotName struct {
	slot int
	name string
	// declared as a graph input too (before IR 4): a caller's value wins
	overridable bool
}

type step struct {
	node   int
	n      *graph.Node
	k      kernel
	ak     ops.ArenaOp // k as an ArenaOp (resolved once), or nil
	in     []int       // slot per input, -1 for an omitted one
	out    []int       // slot per output, -1 for an unused one
	args   []*tensor.Tensor
	static bool
}

// NewExecutor prepares an executor computing the named outputs (all graph
// outputs when none are named).
func (s *Session) NewExecutor(outputs ...string) (*Executor, error) {
	c, err := s.compiledFor(outputs)
	if err != nil {
		return nil, err
	}
	if len(outputs) == 0 {
		for _, o := range c.g.Outputs {
			outputs = append(outputs, o.Name)
		}
	}
	p, err := c.plan(outputs)
	if err != nil {
		return nil, err
	}
	e := &Executor{c: c, outputs: append([]string(nil), outputs...), result: make(map[string]*tensor.Tensor, len(outputs))}
	e.staticKey = "|" + strings.Join(outputs, "\x00")
	e.required = p.required
	slots := map[string]int{}
	slotOf := func(name string) int {
		if i, ok := slots[name]; ok {
			return i
		}
		slots[name] = len(e.names)
		e.names = append(e.names, name)
		if _, ok := c.g.Initializers[name]; ok {
			_, declared := c.inputInfo[name]
			e.inits = append(e.inits, slotName{len(e.names) - 1, name, declared})
		}
		return len(e.names) - 1
	}
	feeds := c.feeds
	e.feedSlot = make([]int, len(feeds))
	for i, f := range feeds {
		e.feedSlot[i] = slotOf(f.Name)
	}
	for _, i := range p.steps {
		n := c.g.Nodes[i]
		st := step{node: i, n: n, k: c.kernels[i], in: make([]int, len(n.Inputs)), out: make([]int, len(n.Outputs)), args: make([]*tensor.Tensor, len(n.Inputs))}
		for j, in := range n.Inputs {
			st.in[j] = -1
			if in != "" {
				st.in[j] = slotOf(in)
			}
		}
		for j, o := range n.Outputs {
			st.out[j] = -1
			if o != "" {
				st.out[j] = slotOf(o)
			}
		}
		st.static = c.static.isStatic[i]
		st.ak, _ = st.k.(ops.ArenaOp)
		e.steps = append(e.steps, st)
	}
	for _, o := range outputs {
		e.outSlots = append(e.outSlots, slotOf(o))
	}
	e.vals = make([]*tensor.Tensor, len(e.names))
	e.feedVals = make([]*tensor.Tensor, len(feeds))
	e.reqFeeds = c.requiredFeeds(p.required)
	e.internInitNames(slots)
	e.sig = make([]int, 0, 4*len(feeds))
	return e, nil
}

// Outputs lists the values Run computes.
func (e *Executor) Outputs() []string { return e.outputs }

// Run computes the executor's outputs from the inputs. The result is valid
// until the next Run.
func (e *Executor) Run(inputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	return e.RunContext(context.Background(), inputs)
}

// RunContext is Run that stops early when ctx is done: the executor checks
// ctx between nodes, recurrent kernels every few time steps (through the
// arena, see ops.Arena.Err) and Loop and Scan once per iteration. A
// cancelled run returns an error wrapping ctx.Err() (errors.Is works).
func (e *Executor) RunContext(ctx context.Context, inputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	c := e.c
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.gatherFeeds(inputs, e.required, e.reqFeeds, e.feedVals); err != nil {
		return nil, err
	}
	for i, t := range e.feedVals {
		e.vals[e.feedSlot[i]] = t
	}
	for _, in := range e.inits {
		e.vals[in.slot] = c.g.Initializers[in.name]
		if in.overridable {
			if t, ok := inputs[in.name]; ok {
				e.vals[in.slot] = t
			}
		}
	}
	skipStatic, capture, key := e.prepareStatic(inputs, e.feedVals)
	e.arena.Reset()
	e.arena.SetContext(ctx)
	defer e.arena.ClearContext()
	e.ctx = ctx
	defer func() { e.ctx = nil }()
	done := ctx.Done()
	for i := range e.steps {
		st := &e.steps[i]
		if st.static && skipStatic {
			continue
		}
		if done != nil {
			select {
			case <-done:
				e.staticReady = false
				return nil, ctx.Err()
			default:
			}
		}
		arena := &e.arena
		if st.static {
			arena = nil // static values outlive the run: not arena memory
		}
		if err := e.runStep(st, arena); err != nil {
			e.staticReady = false
			return nil, err
		}
		if capture != nil && st.static {
			for _, o := range st.out {
				if o >= 0 {
					capture[e.names[o]] = e.vals[o]
				}
			}
		}
	}
	if capture != nil {
		c.static.store(key, capture)
	}
	e.staticReady = c.static.any
	for i, o := range e.outputs {
		t := e.vals[e.outSlots[i]]
		if t == nil {
			return nil, fmt.Errorf("runtime: output %q was not produced", o)
		}
		e.result[o] = t
	}
	return e.result, nil
}

// internInitNames makes each entry of e.inits name its initializer with
// the key string stored in the graph's map, so that the lookup of every
// run compares equal strings by pointer instead of by bytes. (An entry
// replaced later may bring a new key string; the lookup stays right, only
// that fast path is lost.)
func (e *Executor) internInitNames(slots map[string]int) {
	if len(e.inits) == 0 {
		return
	}
	at := make(map[int]int, len(e.inits)) // slot → index in e.inits
	for i, in := range e.inits {
		at[in.slot] = i
	}
	for k := range e.c.g.Initializers {
		if s, ok := slots[k]; ok {
			if i, ok := at[s]; ok {
				e.inits[i].name = k
			}
		}
	}
}

// prepareStatic decides how this run gets the static values: kept in the
// slot table from the last run (same input shapes), copied from the
// session's cache, or computed (skip false) and captured for the cache.
// feedVals holds the inputs per feed (nil when absent), as gatherFeeds
// gives them.
func (e *Executor) prepareStatic(inputs map[string]*tensor.Tensor, feedVals []*tensor.Tensor) (skip bool, capture map[string]*tensor.Tensor, key string) {
	st := e.c.static
	if !st.any {
		return false, nil, ""
	}
	e.sig = e.sig[:0]
	for _, t := range feedVals {
		if t == nil {
			e.sig = append(e.sig, -1)
			continue
		}
		e.sig = append(e.sig, int(t.DType), len(t.Shape))
		e.sig = append(e.sig, t.Shape...)
	}
	same := e.staticReady && len(e.sig) == len(e.lastSig)
	for i := 0; same && i < len(e.sig); i++ {
		same = e.sig[i] == e.lastSig[i]
	}
	e.lastSig = append(e.lastSig[:0], e.sig...)
	if same {
		return true, nil, ""
	}
	e.staticReady = false
	key = shapeKey(inputs, e.c.feeds) + e.staticKey
	if vals, ok := st.lookup(key); ok {
		for i := range e.steps {
			if s := &e.steps[i]; s.static {
				for _, o := range s.out {
					if o >= 0 {
						e.vals[o] = vals[e.names[o]]
					}
				}
			}
		}
		return true, nil, ""
	}
	return false, map[string]*tensor.Tensor{}, key
}

// runStep runs one node with its inputs from the slot table and stores its
// outputs there.
func (e *Executor) runStep(st *step, arena *ops.Arena) (err error) {
	n := st.n
	for j, s := range st.in {
		st.args[j] = nil
		if s < 0 {
			continue
		}
		t := e.vals[s]
		if t == nil {
			return &NodeError{n.Label(), n.OpType, fmt.Errorf("input %d %q has no value", j, e.names[s])}
		}
		st.args[j] = t
	}
	var outs []*tensor.Tensor
	if st.ak != nil {
		outs, err = runArena(n, st.ak, arena, st.args)
	} else {
		outs, err = e.runOther(st, n, arena)
	}
	if err != nil {
		return err
	}
	for j, s := range st.out {
		if s < 0 {
			continue
		}
		if j >= len(outs) || outs[j] == nil {
			return &NodeError{n.Label(), n.OpType, fmt.Errorf("kernel did not produce output %d %q", j, e.names[s])}
		}
		e.vals[s] = outs[j]
	}
	return nil
}

// runOther runs a node whose kernel is not an ops.ArenaOp.
func (e *Executor) runOther(st *step, n *graph.Node, arena *ops.Arena) (outs []*tensor.Tensor, err error) {
	switch k := st.k.(type) {
	case ops.ArenaOp:
		outs, err = runGuarded(n, st.args, func() ([]*tensor.Tensor, error) { return k.RunWith(arena, st.args) })
	case scopedOp:
		env := &scope{vals: make(map[string]*tensor.Tensor, len(e.names)), consts: e.c.g.Initializers, ctx: e.ctx}
		for i, v := range e.vals {
			if v != nil {
				env.vals[e.names[i]] = v
			}
		}
		outs, err = runGuarded(n, st.args, func() ([]*tensor.Tensor, error) { return k.runScoped(env, st.args) })
	case ops.Op:
		outs, err = runGuarded(n, st.args, func() ([]*tensor.Tensor, error) { return k.Run(st.args) })
	default:
		err = &NodeError{n.Label(), n.OpType, errors.New("node was not compiled")}
	}
	return outs, err
}

// runGuarded runs a kernel, turning an error or a panic into a *NodeError
// that names the node and describes its inputs.
func runGuarded(n *graph.Node, in []*tensor.Tensor, run func() ([]*tensor.Tensor, error)) (outs []*tensor.Tensor, err error) {
	defer guardNode(n, in, &err)
	outs, err = run()
	return nodeResult(n, in, outs, err)
}

// runArena is runGuarded for an ops.ArenaOp, without the closure: the
// executor's path for nearly every node.
func runArena(n *graph.Node, k ops.ArenaOp, arena *ops.Arena, in []*tensor.Tensor) (outs []*tensor.Tensor, err error) {
	defer guardNode(n, in, &err)
	outs, err = k.RunWith(arena, in)
	return nodeResult(n, in, outs, err)
}

// guardNode, deferred, turns a kernel's panic into a *NodeError in *err.
func guardNode(n *graph.Node, in []*tensor.Tensor, err *error) {
	if r := recover(); r != nil {
		buf := make([]byte, 2048)
		buf = buf[:rt.Stack(buf, false)]
		if e, ok := r.(error); ok { // e.g. a worker chunk's *parallel.PanicError
			*err = &NodeError{n.Label(), n.OpType, fmt.Errorf("kernel panicked: %w (inputs %s)\n%s", e, describe(in), buf)}
		} else {
			*err = &NodeError{n.Label(), n.OpType, fmt.Errorf("kernel panicked: %v (inputs %s)\n%s", r, describe(in), buf)}
		}
	}
}

// nodeResult wraps a kernel's error in a *NodeError naming the node.
func nodeResult(n *graph.Node, in []*tensor.Tensor, outs []*tensor.Tensor, err error) ([]*tensor.Tensor, error) {
	if err != nil {
		var ne *NodeError
		if errors.As(err, &ne) && ne.Node == n.Label() {
			return nil, err
		}
		return nil, &NodeError{n.Label(), n.OpType, fmt.Errorf("%w (inputs %s)", err, describe(in))}
	}
	return outs, nil
}
