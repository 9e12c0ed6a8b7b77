package runtime

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// A Stream evaluates a model one new time step (or chunk of steps) at a
// time, carrying the recurrent nodes' states between calls, so that each
// call costs the new steps only instead of a re-run over the whole window.
// AnalyzeStream decides which models and outputs allow it.
//
// The stream runs two rewritten copies of the model graph, compiled into
// sessions of their own (fused cells and Dense fusion as usual): the first
// chunk runs the model as it is, with each carried node's final states
// (Y_h, Y_c) added as outputs; later chunks run a copy whose carried nodes
// take their initial_h/initial_c from graph inputs fed with those states.
// Both run on Executors, so a steady-state Step at an unchanged chunk shape
// allocates nothing.
//
// A Stream serves one goroutine. The tensors a Step returns belong to the
// stream and are overwritten by its next Step: clone what you keep.
type Stream struct {
	plan        *StreamPlan
	first, next *streamExec
	feeds       []graph.ValueInfo
	states      []*streamState
	in          []*tensor.Tensor // a step's inputs, in feeds order
	out         map[string]*tensor.Tensor
	// executor output positions of the plan's outputs and of the states
	outIdx, stateIdx []int
	lastOut          []*tensor.Tensor // what out holds, per plan output
	// the compiled graphs, shared by forks
	sessFirst, sessNext *Session
	feedIndex           map[string]int
	started             bool
	steps               int64
	// per feed, its shape at the first step with the time dim as -1: later
	// steps must agree (a stream keeps one batch)
	rest        [][]int
	fingerprint [32]byte
}

// streamState is one carried state tensor (h, or c of an LSTM).
type streamState struct {
	node   string // the recurrent node's label
	what   string // "h" or "c"
	input  string // graph input of the next-step graph that takes it
	output string // graph output that returns it (Y_h or Y_c)
	buf    *tensor.Tensor
	batch  int // its batch axis: 1 ([directions, batch, hidden]), 0 with layout 1
}

// NewStream prepares a stream computing the named outputs (all graph
// outputs when none are named). The time axis of the inputs is found by
// the analysis: dim 1 ([batch, time, features]) is tried first, then dim
// 0 ([time, batch, features]). It refuses with a *StreamError when the
// outputs look across time or when no forward LSTM/GRU/RNN carries state
// along that axis.
func (s *Session) NewStream(outputs ...string) (*Stream, error) {
	// the refusal reported is the first one that is not about the guessed
	// axis (a recurrence over another dim, or no recurrence at all)
	var best *StreamError
	for _, axis := range []int{1, 0} {
		plan, err := AnalyzeStream(s.model, axis, outputs...)
		if err == nil && len(plan.carried) == 0 {
			err = &StreamError{axis: true, Reason: fmt.Sprintf("no forward LSTM/GRU/RNN carries a state along dim %d of the inputs: nothing to stream", axis)}
		}
		if err == nil {
			return s.newStream(plan)
		}
		var se *StreamError
		if !errors.As(err, &se) {
			return nil, err
		}
		if best == nil || (best.axis && !se.axis) {
			best = se
		}
	}
	return nil, best
}

// NewStreamAt is NewStream with the inputs' time axis given. It also
// accepts models without recurrence (every output per step).
func (s *Session) NewStreamAt(timeAxis int, outputs ...string) (*Stream, error) {
	plan, err := AnalyzeStream(s.model, timeAxis, outputs...)
	if err != nil {
		return nil, err
	}
	return s.newStream(plan)
}

// streamTimeParam names the relaxed time dim of the stream's graphs.
const streamTimeParam = "stream_time"

// FreeTimeAxis returns a shallow copy of m whose fed inputs have a
// symbolic time dim (named stream_time) at axis, so that a model exported
// with a fixed window can run a prefix of any length: the reference a
// stream is compared with. Nodes and weights are shared with m.
func FreeTimeAxis(m *graph.Model, axis int) *graph.Model {
	g := *m.Graph
	g.Inputs = append([]graph.ValueInfo(nil), g.Inputs...)
	for i, v := range g.Inputs {
		if _, init := g.Initializers[v.Name]; init || axis < 0 || axis >= len(v.Shape) {
			continue
		}
		v.Shape = append([]graph.Dim(nil), v.Shape...)
		v.Shape[axis] = graph.Dim{Param: streamTimeParam}
		g.Inputs[i] = v
	}
	out := *m
	out.Graph = &g
	return &out
}

func (s *Session) newStream(plan *StreamPlan) (*Stream, error) {
	g := s.model.Graph
	st := &Stream{plan: plan, feeds: g.FeedInputs()}
	taken := map[string]bool{}
	for _, v := range g.Inputs {
		taken[v.Name] = true
	}
	for name := range g.Initializers {
		taken[name] = true
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			taken[o] = true
		}
	}
	fresh := func(base string) string {
		name := base
		for i := 2; taken[name]; i++ {
			name = fmt.Sprintf("%s_%d", base, i)
		}
		taken[name] = true
		return name
	}
	// the inputs, with the time dim free
	inputs := FreeTimeAxis(s.model, plan.TimeAxis).Graph.Inputs
	var outs []graph.ValueInfo
	for _, o := range plan.Outputs {
		v, ok := g.Output(o.Name)
		if !ok {
			v = graph.ValueInfo{Name: o.Name}
		}
		outs = append(outs, v)
	}
	first := &graph.Graph{Name: g.Name, Inputs: inputs, Initializers: g.Initializers, InitOrder: g.InitOrder}
	next := &graph.Graph{Name: g.Name, Initializers: g.Initializers, InitOrder: g.InitOrder, Inputs: append([]graph.ValueInfo(nil), inputs...)}
	carried := map[*graph.Node]bool{}
	for _, n := range plan.carried {
		carried[n] = true
	}
	var stateOuts []graph.ValueInfo
	for _, n := range g.Nodes {
		if !carried[n] {
			first.Nodes = append(first.Nodes, n)
			next.Nodes = append(next.Nodes, n)
			continue
		}
		dt := tensor.Float32
		if w := g.Initializers[n.Inputs[1]]; w != nil {
			dt = w.DType
		}
		nStates := 1
		if n.OpType == "LSTM" {
			nStates = 2
		}
		fn := *n
		fn.Outputs = append([]string(nil), n.Outputs...)
		for len(fn.Outputs) < 1+nStates {
			fn.Outputs = append(fn.Outputs, "")
		}
		nn := fn
		nn.Inputs = append([]string(nil), n.Inputs...)
		for len(nn.Inputs) < 5+nStates {
			nn.Inputs = append(nn.Inputs, "")
		}
		nn.Outputs = append([]string(nil), fn.Outputs...)
		for k := 0; k < nStates; k++ {
			what := [...]string{"h", "c"}[k]
			if fn.Outputs[1+k] == "" {
				fn.Outputs[1+k] = fresh(n.Label() + "/stream_Y_" + what)
			}
			nn.Outputs[1+k] = fn.Outputs[1+k]
			ss := &streamState{node: n.Label(), what: what, output: fn.Outputs[1+k], input: fresh(n.Label() + "/stream_initial_" + what), batch: 1}
			if n.Attrs.Int("layout", 0) == 1 {
				ss.batch = 0
			}
			nn.Inputs[5+k] = ss.input
			st.states = append(st.states, ss)
			stateOuts = append(stateOuts, graph.ValueInfo{Name: ss.output, DType: dt, Kind: "tensor"})
			next.Inputs = append(next.Inputs, graph.ValueInfo{Name: ss.input, DType: dt, Kind: "tensor", HasShape: true,
				Shape: []graph.Dim{{Value: -1}, {Value: -1}, {Value: -1}}})
		}
		first.Nodes = append(first.Nodes, &fn)
		next.Nodes = append(next.Nodes, &nn)
	}
	// a state output may also be a requested output
	first.Outputs = appendMissing(outs, stateOuts)
	next.Outputs = first.Outputs
	names := func(vs []graph.ValueInfo) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = v.Name
		}
		return out
	}
	feedIndex := map[string]int{}
	for i, v := range st.feeds {
		feedIndex[v.Name] = i
	}
	for j, ss := range st.states {
		feedIndex[ss.input] = -1 - j
	}
	for _, gr := range []*graph.Graph{first, next} {
		m := *s.model
		m.Graph = gr
		sess, err := NewSession(&m, s.opts)
		if err != nil {
			return nil, fmt.Errorf("runtime: stream graph: %w", err)
		}
		e, err := sess.NewExecutor(names(gr.Outputs)...)
		if err != nil {
			return nil, fmt.Errorf("runtime: stream graph: %w", err)
		}
		if gr == first {
			st.first = newStreamExec(e, feedIndex)
			st.sessFirst = sess
		} else {
			st.next = newStreamExec(e, feedIndex)
			st.sessNext = sess
		}
	}
	st.feedIndex = feedIndex
	outPos := map[string]int{}
	for i, v := range first.Outputs {
		outPos[v.Name] = i
	}
	for _, o := range plan.Outputs {
		st.outIdx = append(st.outIdx, outPos[o.Name])
	}
	for _, ss := range st.states {
		st.stateIdx = append(st.stateIdx, outPos[ss.output])
	}
	st.alloc()
	st.fingerprint = streamFingerprint(g, plan)
	return st, nil
}

// alloc makes the per-stream buffers.
func (st *Stream) alloc() {
	st.in = make([]*tensor.Tensor, len(st.feeds))
	st.lastOut = make([]*tensor.Tensor, len(st.plan.Outputs))
	st.out = make(map[string]*tensor.Tensor, len(st.plan.Outputs))
}

// Fork returns a new, empty stream of the same model and outputs that
// shares this one's compiled graphs and packed weights: cheap (no
// analysis, compilation or fingerprinting), for a server holding one
// stream per sequence. The two streams may be used from different
// goroutines; states move between them with State and Restore.
func (st *Stream) Fork() (*Stream, error) {
	f := &Stream{plan: st.plan, feeds: st.feeds, outIdx: st.outIdx, stateIdx: st.stateIdx,
		feedIndex: st.feedIndex, sessFirst: st.sessFirst, sessNext: st.sessNext, fingerprint: st.fingerprint}
	for _, s := range st.states {
		c := *s
		c.buf = nil
		f.states = append(f.states, &c)
	}
	for i, sess := range []*Session{st.sessFirst, st.sessNext} {
		e, err := sess.NewExecutor(st.first.e.outputs...)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			f.first = newStreamExec(e, st.feedIndex)
		} else {
			f.next = newStreamExec(e, st.feedIndex)
		}
	}
	f.alloc()
	return f, nil
}

func appendMissing(a, b []graph.ValueInfo) []graph.ValueInfo {
	out := append([]graph.ValueInfo(nil), a...)
	have := map[string]bool{}
	for _, v := range a {
		have[v.Name] = true
	}
	for _, v := range b {
		if !have[v.Name] {
			out = append(out, v)
			have[v.Name] = true
		}
	}
	return out
}

// Plan returns what the analysis found: time axis, outputs and the
// recurrent nodes carried.
func (st *Stream) Plan() *StreamPlan { return st.plan }

// Inputs lists the inputs a Step takes, with the time dim named stream_time.
func (st *Stream) Inputs() []graph.ValueInfo {
	out := make([]graph.ValueInfo, len(st.feeds))
	for i, v := range st.feeds {
		v.Shape = append([]graph.Dim(nil), v.Shape...)
		v.Shape[st.plan.TimeAxis] = graph.Dim{Param: streamTimeParam}
		out[i] = v
	}
	return out
}

// Steps is how many time steps the stream has consumed since its start
// (or the start of the stream its state was restored from).
func (st *Stream) Steps() int64 { return st.steps }

// Started reports whether the stream has consumed a step since its start
// or Reset (or holds a restored state).
func (st *Stream) Started() bool { return st.started }

// Reset forgets the carried state: the next Step starts a new sequence
// (with any batch size).
func (st *Stream) Reset() {
	st.started = false
	st.steps = 0
	st.rest = nil
	for _, s := range st.states {
		s.buf = nil
	}
}

// Step consumes one or more new time steps: every input holds k >= 1 steps
// along the time axis (e.g. [batch, k, features]). It returns the requested
// outputs after the last of them: prefix-summary outputs as the full model
// would compute them over every step so far, per-step outputs for the k new
// steps (time axis of length k). The result belongs to the stream and is
// overwritten by the next Step.
func (st *Stream) Step(inputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	return st.StepContext(context.Background(), inputs)
}

// StepContext is Step that stops early, with an error wrapping ctx.Err(),
// when ctx is done (checked where Executor.RunContext checks). A step
// that fails, cancelled or not, leaves the carried state as it was before
// it: the same chunk can be sent again.
func (st *Stream) StepContext(ctx context.Context, inputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	k, err := st.checkStep(inputs)
	if err != nil {
		return nil, err
	}
	x := st.next
	if !st.started {
		x = st.first
	}
	if err := x.run(ctx, st.in, st.states); err != nil {
		return nil, err
	}
	for j, s := range st.states {
		t := x.out(st.stateIdx[j])
		if s.buf == nil || !tensor.SameShape(s.buf.Shape, t.Shape) || s.buf.DType != t.DType {
			s.buf = t.Clone()
			continue
		}
		if err := copyData(s.buf, t); err != nil {
			return nil, err
		}
	}
	if !st.started {
		st.rest = make([][]int, len(st.feeds))
		for i, v := range st.feeds {
			sh := append([]int(nil), inputs[v.Name].Shape...)
			sh[st.plan.TimeAxis] = -1
			st.rest[i] = sh
		}
		st.started = true
	}
	st.steps += int64(k)
	for i, o := range st.plan.Outputs {
		// the arena hands out the same tensors step after step: the map
		// is written only when one changes
		if t := x.out(st.outIdx[i]); t != st.lastOut[i] {
			st.out[o.Name] = t
			st.lastOut[i] = t
		}
	}
	return st.out, nil
}

// stepError reports a Step input the stream cannot take: an
// *ops.InputError naming the caller's feed, as Session.Run reports one.
func stepError(input, reason string) error {
	return fmt.Errorf("runtime: stream step: %w", ops.BadFeed(input, reason))
}

// checkStep validates a Step's inputs against the stream (names, time axis,
// agreement with the shapes the stream started with, declared fixed dims)
// and returns the number of new steps. It allocates nothing unless an input
// is wrong.
func (st *Stream) checkStep(inputs map[string]*tensor.Tensor) (int, error) {
	ax := st.plan.TimeAxis
	k := -1
	if len(inputs) != len(st.feeds) {
		for name := range inputs {
			if !st.isFeed(name) {
				return 0, stepError(name, fmt.Sprintf("the model has no such input (its inputs are %s)", strings.Join(st.feedNames(), ", ")))
			}
		}
	}
	for i, v := range st.feeds {
		t, ok := inputs[v.Name]
		st.in[i] = t
		if !ok || t == nil {
			for name := range inputs {
				if !st.isFeed(name) {
					return 0, stepError(name, fmt.Sprintf("the model has no such input (its inputs are %s)", strings.Join(st.feedNames(), ", ")))
				}
			}
			return 0, stepError(v.Name, "missing")
		}
		if v.DType != tensor.Undefined && t.DType != v.DType {
			return 0, stepError(v.Name, fmt.Sprintf("dtype %v, the model takes %v", t.DType, v.DType))
		}
		if n, ok := elements(t.Shape); !ok || tensor.DataLen(t.Data) != n {
			// the full check, for its message
			if err := t.Validate(); err != nil {
				return 0, stepError(v.Name, err.Error())
			}
			return 0, stepError(v.Name, fmt.Sprintf("shape %v does not match its %d elements", t.Shape, tensor.DataLen(t.Data)))
		}
		if len(t.Shape) != len(v.Shape) {
			return 0, stepError(v.Name, fmt.Sprintf("shape %v has rank %d, the stream takes rank %d %s (time axis %d)", t.Shape, len(t.Shape), len(v.Shape), st.Inputs()[i].ShapeString(), ax))
		}
		n := t.Shape[ax]
		if n < 1 {
			return 0, stepError(v.Name, fmt.Sprintf("shape %v has no time step (dim %d is the time axis)", t.Shape, ax))
		}
		if k >= 0 && n != k {
			return 0, stepError(v.Name, fmt.Sprintf("has %d steps but another input has %d", n, k))
		}
		k = n
		for d, dim := range v.Shape {
			if d != ax && dim.Known() && int64(t.Shape[d]) != dim.Value {
				return 0, stepError(v.Name, fmt.Sprintf("shape %v, the stream takes %s (dim %d must be %d)", t.Shape, st.Inputs()[i].ShapeString(), d, dim.Value))
			}
		}
		if st.started && st.rest != nil {
			for d, want := range st.rest[i] {
				if d != ax && t.Shape[d] != want {
					return 0, stepError(v.Name, fmt.Sprintf("shape %v differs from the stream's %v outside the time axis (dim %d): a stream keeps one batch; Reset it to start another", t.Shape, st.rest[i], d))
				}
			}
		}
	}
	return k, nil
}

func (st *Stream) isFeed(name string) bool {
	for _, v := range st.feeds {
		if v.Name == name {
			return true
		}
	}
	return false
}

func (st *Stream) feedNames() []string {
	out := make([]string, len(st.feeds))
	for i, v := range st.feeds {
		out[i] = v.Name
	}
	return out
}

// copyData copies src's elements into dst of the same dtype and length.
func copyData(dst, src *tensor.Tensor) error {
	switch d := dst.Data.(type) {
	case []float32:
		copy(d, src.Data.([]float32))
	case []float64:
		copy(d, src.Data.([]float64))
	default:
		return fmt.Errorf("runtime: stream state of dtype %v", dst.DType)
	}
	return nil
}

// streamFingerprint identifies the model and the carried nodes: a state
// taken from one stream restores only into a stream with the same one.
func streamFingerprint(g *graph.Graph, plan *StreamPlan) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "mtlrun stream v1\x00axis %d\x00", plan.TimeAxis)
	for _, r := range plan.Recurrent {
		fmt.Fprintf(h, "carry %s\x00", r)
	}
	for _, n := range g.Nodes {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%q\x00%q\x00", n.Domain, n.OpType, n.Name, n.Inputs, n.Outputs)
	}
	names := make([]string, 0, len(g.Initializers))
	for name := range g.Initializers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := g.Initializers[name]
		fmt.Fprintf(h, "%s\x00%v%v\x00", name, t.DType, t.Shape)
		if raw, err := tensor.EncodeRaw(t); err == nil {
			h.Write(raw)
		}
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// elements is the product of a shape's dims, false when one is negative
// or the product overflows (Tensor.Validate, without its map lookups).
func elements(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 || (d > 0 && n > math.MaxInt/d) {
			return 0, false
		}
		n *= d
	}
	return n, true
}
