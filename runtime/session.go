package runtime

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Options tune a Session. The zero value is the default.
type Options struct {
	// Threads is the intra-op parallelism budget given to kernels (the
	// recurrent kernels split batch rows and directions over goroutines).
	// 0 or 1 runs everything on the caller's goroutine, which is best for
	// latency and for servers running many requests at once.
	Threads int
	// NoFusion turns off the session's Dense fusion pass (see fuse.go), for
	// comparing fused and unfused results.
	NoFusion bool
}

// Session runs one Model. It is built once (kernels instantiated, subgraphs
// compiled) and is safe for concurrent Run calls: each call has its own
// value table and kernels hold no per-call state.
type Session struct {
	model *graph.Model
	opts  Options
	root  *compiled // the graph after fusion
	// base is the graph as the model has it, compiled on first need: for a
	// request of a value that fusion removed. It is root when nothing fused.
	base     *compiled
	baseOnce sync.Once
	baseErr  error
}

// kernel is what a node runs: an ops.Op, or a control-flow op that needs the
// calling scope to evaluate its subgraphs.
type kernel interface{}

type scopedOp interface {
	runScoped(env *scope, in []*tensor.Tensor) ([]*tensor.Tensor, error)
}

type compiled struct {
	g       *graph.Graph
	kernels []kernel

	// main graphs only (subgraphs run through runGraph)
	static      *staticInfo
	plans       sync.Map // outputs key → *plan
	execs       sync.Map // outputs key → *sync.Pool of *Executor
	feeds       []graph.ValueInfo
	inputInfo   map[string]graph.ValueInfo
	nodeOutputs map[string]bool
	symDims     [][]dimRef // per symbolic dim name shared by several feeds
	uniqueFeeds bool       // no two feeds share a name (gatherFeeds' fast path)
}

// dimRef is one dim of one feed input.
type dimRef struct{ feed, dim int }

// UnsupportedOp names one node the op set cannot run.
type UnsupportedOp struct {
	Node, OpType, Domain string
	Opset                int
}

// UnsupportedError lists every unsupported node of a model at once.
type UnsupportedError struct{ Ops []UnsupportedOp }

func (e *UnsupportedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "runtime: %d node(s) use ops mtlrun does not support:", len(e.Ops))
	for _, o := range e.Ops {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		fmt.Fprintf(&b, "\n  node %q: %s (domain %s, opset %d)", o.Node, o.OpType, d, o.Opset)
	}
	return b.String()
}

// NodeError wraps a failure inside one node with the node's identity.
type NodeError struct {
	Node   string
	OpType string
	Err    error
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("node %q (%s): %v", e.Node, e.OpType, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

// NewSession compiles the model's graph for execution.
func NewSession(m *graph.Model, opts Options) (*Session, error) {
	if m == nil || m.Graph == nil {
		return nil, errors.New("runtime: nil model")
	}
	for _, v := range m.Graph.FeedInputs() {
		if v.Kind != "" && v.Kind != "tensor" && v.Kind != "sequence" && v.Kind != "optional" {
			return nil, fmt.Errorf("runtime: graph input %q is a %s; mtlrun runs models whose inputs are tensors, sequences or optionals", v.Name, v.Kind)
		}
	}
	g := m.Graph
	if !opts.NoFusion && ops.Supported(denseDomain, "Dense", 1) {
		g, _ = fuseDense(g)
	}
	root, err := compileMain(m, g, opts)
	if err != nil {
		return nil, err
	}
	s := &Session{model: m, root: root, opts: opts}
	if g == m.Graph {
		s.base = root
	}
	return s, nil
}

// compileMain compiles a top-level graph with what executors need.
func compileMain(m *graph.Model, g *graph.Graph, opts Options) (*compiled, error) {
	static := findStatic(g)
	consts := map[string]bool{}
	for name := range g.Initializers {
		consts[name] = true
	}
	for i, n := range g.Nodes {
		if static.isStatic[i] {
			for _, o := range n.Outputs {
				consts[o] = true
			}
		}
	}
	var unsupported []UnsupportedOp
	root, err := compile(m, g, max(opts.Threads, 1), consts, &unsupported)
	if len(unsupported) > 0 {
		return nil, &UnsupportedError{Ops: unsupported}
	}
	if err != nil {
		return nil, err
	}
	root.static = static
	root.feeds = g.FeedInputs()
	root.inputInfo = map[string]graph.ValueInfo{}
	for _, v := range g.Inputs {
		root.inputInfo[v.Name] = v
	}
	root.uniqueFeeds = true
	for i, v := range root.feeds {
		for _, w := range root.feeds[:i] {
			root.uniqueFeeds = root.uniqueFeeds && w.Name != v.Name
		}
	}
	root.nodeOutputs = map[string]bool{}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			root.nodeOutputs[o] = o != ""
		}
	}
	byParam := map[string][]dimRef{}
	var params []string
	for fi, v := range root.feeds {
		for di, d := range v.Shape {
			if d.Param != "" {
				if byParam[d.Param] == nil {
					params = append(params, d.Param)
				}
				byParam[d.Param] = append(byParam[d.Param], dimRef{fi, di})
			}
		}
	}
	for _, p := range params {
		if len(byParam[p]) > 1 {
			root.symDims = append(root.symDims, byParam[p])
		}
	}
	return root, nil
}

// compiledFor picks the compiled graph that produces every named output:
// the fused one unless fusion removed one of them.
func (s *Session) compiledFor(outputs []string) (*compiled, error) {
	if s.base == s.root || s.root.produces(outputs) {
		return s.root, nil
	}
	s.baseOnce.Do(func() {
		s.base, s.baseErr = compileMain(s.model, s.model.Graph, s.opts)
	})
	return s.base, s.baseErr
}

// produces reports whether every name is a value of c's graph.
func (c *compiled) produces(names []string) bool {
	for _, name := range names {
		if _, ok := c.g.Initializers[name]; ok {
			continue
		}
		if _, ok := c.inputInfo[name]; ok {
			continue
		}
		if !c.nodeOutputs[name] {
			return false
		}
	}
	return true
}

// Model returns the model the session runs.
func (s *Session) Model() *graph.Model { return s.model }

// ExecutedGraph is the graph the session runs: the model's graph after the
// session's own rewrites (Dense fusion). Read it, do not change it.
func (s *Session) ExecutedGraph() *graph.Graph { return s.root.g }

// compile instantiates the kernels of g. consts names the values that are
// never written while the session lives (ops.Config.ConstInputs).
func compile(m *graph.Model, g *graph.Graph, threads int, consts map[string]bool, unsupported *[]UnsupportedOp) (*compiled, error) {
	c := &compiled{g: g, kernels: make([]kernel, len(g.Nodes))}
	var firstErr error
	for i, n := range g.Nodes {
		opset := int(m.Opsets[n.Domain])
		if n.Domain == "ai.onnx" {
			opset = m.Opset()
		}
		k, err := newKernel(m, n, opset, threads, consts, unsupported)
		if err != nil {
			if errors.Is(err, ops.ErrUnsupported) {
				*unsupported = append(*unsupported, UnsupportedOp{n.Label(), n.OpType, n.Domain, opset})
				continue
			}
			if firstErr == nil {
				firstErr = &NodeError{Node: n.Label(), OpType: n.OpType, Err: err}
			}
			continue
		}
		c.kernels[i] = k
	}
	return c, firstErr
}

func newKernel(m *graph.Model, n *graph.Node, opset, threads int, consts map[string]bool, unsupported *[]UnsupportedOp) (kernel, error) {
	if n.Domain == "" || n.Domain == "ai.onnx" {
		switch n.OpType {
		case "If", "Loop", "Scan", "SequenceMap":
			subs := map[string]*compiled{}
			for _, sg := range n.Subgraphs() {
				sub := map[string]bool{}
				for name := range consts {
					sub[name] = true
				}
				for name := range sg.Graph.Initializers {
					sub[name] = true
				}
				c, err := compile(m, sg.Graph, threads, sub, unsupported)
				if err != nil {
					return nil, fmt.Errorf("subgraph %q: %w", sg.Attr, err)
				}
				subs[sg.Attr] = c
			}
			return newControlFlow(n, opset, subs)
		}
	}
	constIn := make([]bool, len(n.Inputs))
	for i, in := range n.Inputs {
		constIn[i] = in != "" && consts[in]
	}
	return ops.New(&ops.Config{
		Name: n.Label(), OpType: n.OpType, Domain: n.Domain, Opset: opset,
		Attrs: n.Attrs, NumInputs: len(n.Inputs), NumOutputs: len(n.Outputs), Threads: threads,
		ConstInputs: constIn,
	})
}

// scope is a value table with a link to the enclosing graph's table.
type scope struct {
	vals   map[string]*tensor.Tensor
	consts map[string]*tensor.Tensor
	parent *scope
	ctx    context.Context // the run's, set on the outermost scope
}

// err reports whether the run this scope belongs to was cancelled.
func (s *scope) err() error {
	for e := s; e != nil; e = e.parent {
		if e.ctx != nil {
			return e.ctx.Err()
		}
	}
	return nil
}

func (s *scope) get(name string) (*tensor.Tensor, bool) {
	for e := s; e != nil; e = e.parent {
		if t, ok := e.vals[name]; ok {
			return t, true
		}
		if t, ok := e.consts[name]; ok {
			return t, true
		}
	}
	return nil, false
}

// plan is the pruned node list for one set of requested outputs.
type plan struct {
	steps    []int
	required []string // feed inputs the plan needs
}

// Run computes the requested outputs (all graph outputs when none are named)
// from the given inputs, evaluating only the nodes they need. The caller owns
// the results. It is safe for concurrent use: each call borrows an Executor
// from a pool, so steady-state calls allocate little beyond the results.
func (s *Session) Run(inputs map[string]*tensor.Tensor, outputs ...string) (map[string]*tensor.Tensor, error) {
	return s.RunContext(context.Background(), inputs, outputs...)
}

// RunContext is Run that stops early, with an error wrapping ctx.Err(), when
// ctx is done (see Executor.RunContext for where it checks).
func (s *Session) RunContext(ctx context.Context, inputs map[string]*tensor.Tensor, outputs ...string) (map[string]*tensor.Tensor, error) {
	c, err := s.compiledFor(outputs)
	if err != nil {
		return nil, err
	}
	key := strings.Join(outputs, "\x00")
	pv, ok := c.execs.Load(key)
	if !ok {
		pv, _ = c.execs.LoadOrStore(key, &sync.Pool{})
	}
	pool := pv.(*sync.Pool)
	e, _ := pool.Get().(*Executor)
	if e == nil {
		if e, err = s.NewExecutor(outputs...); err != nil {
			return nil, err
		}
	}
	res, err := e.RunContext(ctx, inputs)
	if err != nil {
		pool.Put(e)
		return nil, err
	}
	out := make(map[string]*tensor.Tensor, len(res))
	for name, t := range res {
		out[name] = t.Clone()
	}
	pool.Put(e)
	return out, nil
}

func (c *compiled) plan(outputs []string) (*plan, error) {
	key := strings.Join(outputs, "\x00")
	if p, ok := c.plans.Load(key); ok {
		return p.(*plan), nil
	}
	g := c.g
	producers := map[string]int{}
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				producers[o] = i
			}
		}
	}
	feeds := map[string]bool{}
	for _, v := range g.FeedInputs() {
		feeds[v.Name] = true
	}
	need := make([]bool, len(g.Nodes))
	var required []string
	seen := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		if i, ok := producers[name]; ok {
			if need[i] {
				return nil
			}
			need[i] = true
			for _, in := range g.Nodes[i].Reads() {
				if err := visit(in); err != nil {
					return err
				}
			}
			return nil
		}
		if feeds[name] {
			required = append(required, name)
			return nil
		}
		if _, ok := g.Initializers[name]; ok {
			return nil
		}
		return fmt.Errorf("runtime: value %q is neither an input, an initializer nor produced by any node", name)
	}
	for _, o := range outputs {
		if _, ok := producers[o]; !ok && !feeds[o] && g.Initializers[o] == nil {
			var names []string
			for _, v := range g.Outputs {
				names = append(names, v.Name)
			}
			return nil, fmt.Errorf("runtime: unknown output %q (the model's outputs are %s)", o, strings.Join(names, ", "))
		}
		if err := visit(o); err != nil {
			return nil, err
		}
	}
	p := &plan{required: required}
	for i := range g.Nodes {
		if need[i] {
			p.steps = append(p.steps, i)
		}
	}
	sort.Strings(p.required)
	c.plans.Store(key, p)
	return p, nil
}

// checkInputs validates a run's inputs against the graph's declarations. It
// allocates nothing unless an input is wrong.
func (c *compiled) checkInputs(inputs map[string]*tensor.Tensor, required []string) error {
	for name, t := range inputs {
		v, ok := c.inputInfo[name]
		if !ok {
			var names []string
			for _, f := range c.feeds {
				names = append(names, f.Name)
			}
			return ops.BadFeed(name, fmt.Sprintf("the model has no such input (its inputs are %s)", strings.Join(names, ", ")))
		}
		if err := checkFeed(name, t, v); err != nil {
			return err
		}
	}
	// a symbolic dim shared by several inputs must agree
	if err := c.checkSymDims(func(feed int) *tensor.Tensor { return inputs[c.feeds[feed].Name] }); err != nil {
		return err
	}
	for _, name := range required {
		if _, ok := inputs[name]; !ok {
			v := c.inputInfo[name]
			return ops.BadFeed(name, fmt.Sprintf("missing: the requested outputs need it (%v%s)", v.DType, v.ShapeString()))
		}
	}
	return nil
}

// gatherFeeds is checkInputs that also stores each feed's tensor (nil when
// absent) in vals, one per c.feeds. When every input names a distinct feed
// it checks them in feed order without iterating the map (the common case,
// a few map lookups per run); otherwise it runs the full check, which
// reports an unknown name. The errors are those checkInputs can return.
func (c *compiled) gatherFeeds(inputs map[string]*tensor.Tensor, required []string, reqFeeds []int, vals []*tensor.Tensor) error {
	n := 0
	for i, f := range c.feeds {
		t, ok := inputs[f.Name]
		vals[i] = t
		if ok {
			n++
		}
	}
	if n != len(inputs) || !c.uniqueFeeds || reqFeeds == nil && len(required) > 0 {
		return c.checkInputs(inputs, required)
	}
	for i, f := range c.feeds {
		if t := vals[i]; t != nil {
			if err := checkFeed(f.Name, t, f); err != nil {
				return err
			}
		} else if _, ok := inputs[f.Name]; ok {
			return ops.BadFeed(f.Name, "nil tensor")
		}
	}
	if err := c.checkSymDims(func(feed int) *tensor.Tensor { return vals[feed] }); err != nil {
		return err
	}
	for _, i := range reqFeeds {
		if vals[i] == nil {
			v := c.feeds[i]
			return ops.BadFeed(v.Name, fmt.Sprintf("missing: the requested outputs need it (%v%s)", v.DType, v.ShapeString()))
		}
	}
	return nil
}

// requiredFeeds maps required feed names to their indices in c.feeds, or
// returns nil when one is not a feed (then gatherFeeds checks by name).
func (c *compiled) requiredFeeds(required []string) []int {
	out := make([]int, 0, len(required))
	for _, name := range required {
		j := -1
		for i, f := range c.feeds {
			if f.Name == name {
				j = i
				break
			}
		}
		if j < 0 {
			return nil
		}
		out = append(out, j)
	}
	return out
}

// checkFeed checks one fed tensor against the input's declared type.
func checkFeed(name string, t *tensor.Tensor, v graph.ValueInfo) error {
	if t == nil {
		return ops.BadFeed(name, "nil tensor")
	}
	if err := t.Validate(); err != nil {
		return ops.BadFeed(name, err.Error())
	}
	if v.DType != tensor.Undefined && t.DType != v.DType {
		return ops.BadFeed(name, fmt.Sprintf("dtype %v, the model expects %v", t.DType, v.DType))
	}
	if v.HasShape {
		if len(t.Shape) != len(v.Shape) {
			return ops.BadFeed(name, fmt.Sprintf("rank %d (shape %v), the model expects rank %d %s", len(t.Shape), t.Shape, len(v.Shape), v.ShapeString()))
		}
		for i, d := range v.Shape {
			if d.Known() && int64(t.Shape[i]) != d.Value {
				return ops.BadFeed(name, fmt.Sprintf("shape %v, the model expects %s (dim %d must be %d)", t.Shape, v.ShapeString(), i, d.Value))
			}
		}
	}
	return nil
}

// checkSymDims checks that a symbolic dim shared by several feeds has one
// value; feed gives a feed's tensor or nil when it is absent.
func (c *compiled) checkSymDims(feed func(int) *tensor.Tensor) error {
	for _, refs := range c.symDims {
		var first *dimRef
		want := 0
		for k, r := range refs {
			t := feed(r.feed)
			if t == nil || r.dim >= len(t.Shape) {
				continue
			}
			if first == nil {
				first, want = &refs[k], t.Shape[r.dim]
				continue
			}
			if got := t.Shape[r.dim]; got != want {
				v, f := c.feeds[r.feed], c.feeds[first.feed]
				param := v.Shape[r.dim].Param
				return ops.BadFeed(v.Name, fmt.Sprintf("dim %d (%s) is %d but input %q has %s = %d", r.dim, param, got, f.Name, param, want))
			}
		}
	}
	return nil
}

// execute runs a subgraph's nodes in order in env. (Top-level graphs run
// through an Executor.)
func (c *compiled) execute(env *scope) error {
	for i, n := range c.g.Nodes {
		if err := env.err(); err != nil {
			return err
		}
		outs, err := c.runNode(env, i)
		if err != nil {
			return err
		}
		for j, o := range n.Outputs {
			if o != "" && j < len(outs) && outs[j] != nil {
				env.vals[o] = outs[j]
			}
		}
	}
	return nil
}

func (c *compiled) runNode(env *scope, i int) ([]*tensor.Tensor, error) {
	n := c.g.Nodes[i]
	in := make([]*tensor.Tensor, len(n.Inputs))
	for j, name := range n.Inputs {
		if name == "" {
			continue
		}
		t, ok := env.get(name)
		if !ok {
			return nil, &NodeError{n.Label(), n.OpType, fmt.Errorf("input %d %q has no value", j, name)}
		}
		in[j] = t
	}
	var outs []*tensor.Tensor
	var err error
	switch k := c.kernels[i].(type) {
	case scopedOp:
		outs, err = runGuarded(n, in, func() ([]*tensor.Tensor, error) { return k.runScoped(env, in) })
	case ops.Op:
		outs, err = runGuarded(n, in, func() ([]*tensor.Tensor, error) { return k.Run(in) })
	default:
		err = &NodeError{n.Label(), n.OpType, errors.New("node was not compiled")}
	}
	if err != nil {
		return nil, err
	}
	for j, o := range n.Outputs {
		if o != "" && (j >= len(outs) || outs[j] == nil) {
			return nil, &NodeError{n.Label(), n.OpType, fmt.Errorf("kernel did not produce output %d %q", j, o)}
		}
	}
	return outs, nil
}

func describe(in []*tensor.Tensor) string {
	parts := make([]string, len(in))
	for i, t := range in {
		if t == nil {
			parts[i] = "-"
		} else {
			parts[i] = t.String()
		}
	}
	return strings.Join(parts, ", ")
}

// runGraph evaluates a whole subgraph with its inputs bound by position, in
// a scope nested in parent, and returns its outputs in order.
func (c *compiled) runGraph(parent *scope, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	g := c.g
	if len(inputs) > len(g.Inputs) {
		return nil, fmt.Errorf("subgraph %q takes %d inputs, got %d", g.Name, len(g.Inputs), len(inputs))
	}
	env := &scope{vals: make(map[string]*tensor.Tensor, len(g.Nodes)+len(inputs)), consts: g.Initializers, parent: parent}
	for i, t := range inputs {
		if t != nil {
			env.vals[g.Inputs[i].Name] = t
		}
	}
	if err := c.execute(env); err != nil {
		return nil, err
	}
	outs := make([]*tensor.Tensor, len(g.Outputs))
	for i, o := range g.Outputs {
		t, ok := env.get(o.Name)
		if !ok {
			return nil, fmt.Errorf("subgraph %q did not produce output %q", g.Name, o.Name)
		}
		outs[i] = t
	}
	return outs, nil
}
