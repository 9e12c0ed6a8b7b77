package runtime

import (
	"errors"
	"fmt"
	rt "runtime"
	"sort"
	"strings"
	"sync"

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
}

// Session runs one Model. It is built once (kernels instantiated, subgraphs
// compiled) and is safe for concurrent Run calls: each call has its own
// value table and kernels hold no per-call state.
type Session struct {
	model  *Model
	root   *compiled
	opts   Options
	plans  sync.Map // plan key → *plan
	static *staticInfo
}

// kernel is what a node runs: an ops.Op, or a control-flow op that needs the
// calling scope to evaluate its subgraphs.
type kernel interface{}

type scopedOp interface {
	runScoped(env *scope, in []*tensor.Tensor) ([]*tensor.Tensor, error)
}

type compiled struct {
	g       *Graph
	kernels []kernel
}

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
func NewSession(m *Model, opts Options) (*Session, error) {
	if m == nil || m.Graph == nil {
		return nil, errors.New("runtime: nil model")
	}
	for _, v := range m.Graph.FeedInputs() {
		if v.Kind != "" && v.Kind != "tensor" {
			return nil, fmt.Errorf("runtime: graph input %q is a %s; mtlrun runs models whose inputs are tensors", v.Name, v.Kind)
		}
	}
	var unsupported []UnsupportedOp
	root, err := compile(m, m.Graph, max(opts.Threads, 1), &unsupported)
	if len(unsupported) > 0 {
		return nil, &UnsupportedError{Ops: unsupported}
	}
	if err != nil {
		return nil, err
	}
	return &Session{model: m, root: root, opts: opts, static: findStatic(m.Graph)}, nil
}

// Model returns the model the session runs.
func (s *Session) Model() *Model { return s.model }

func compile(m *Model, g *Graph, threads int, unsupported *[]UnsupportedOp) (*compiled, error) {
	c := &compiled{g: g, kernels: make([]kernel, len(g.Nodes))}
	var firstErr error
	for i, n := range g.Nodes {
		opset := int(m.Opsets[n.Domain])
		if n.Domain == "ai.onnx" {
			opset = m.Opset()
		}
		k, err := newKernel(m, n, opset, threads, unsupported)
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

func newKernel(m *Model, n *Node, opset, threads int, unsupported *[]UnsupportedOp) (kernel, error) {
	if n.Domain == "" || n.Domain == "ai.onnx" {
		switch n.OpType {
		case "If", "Loop", "Scan":
			subs := map[string]*compiled{}
			for _, sg := range n.Subgraphs() {
				c, err := compile(m, sg.Graph, threads, unsupported)
				if err != nil {
					return nil, fmt.Errorf("subgraph %q: %w", sg.Attr, err)
				}
				subs[sg.Attr] = c
			}
			return newControlFlow(n, opset, subs)
		}
	}
	return ops.New(&ops.Config{
		Name: n.Label(), OpType: n.OpType, Domain: n.Domain, Opset: opset,
		Attrs: n.Attrs, NumInputs: len(n.Inputs), NumOutputs: len(n.Outputs), Threads: threads,
	})
}

// scope is a value table with a link to the enclosing graph's table.
type scope struct {
	vals   map[string]*tensor.Tensor
	consts map[string]*tensor.Tensor
	parent *scope
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

// plan is the pruned node list for one set of requested outputs, with the
// last step that reads each value, so intermediates are dropped early.
type plan struct {
	steps    []int
	lastUse  map[string]int // value → index into steps of its last reader
	required []string       // feed inputs the plan needs
}

// InputError reports a problem with a caller's input tensor.
type InputError struct {
	Input  string
	Reason string
}

func (e *InputError) Error() string { return fmt.Sprintf("runtime: input %q: %s", e.Input, e.Reason) }

// Run computes the requested outputs (all graph outputs when none are named)
// from the given inputs, evaluating only the nodes they need.
func (s *Session) Run(inputs map[string]*tensor.Tensor, outputs ...string) (map[string]*tensor.Tensor, error) {
	g := s.root.g
	if len(outputs) == 0 {
		for _, o := range g.Outputs {
			outputs = append(outputs, o.Name)
		}
	}
	p, err := s.plan(outputs)
	if err != nil {
		return nil, err
	}
	if err := s.checkInputs(inputs, p); err != nil {
		return nil, err
	}
	env := &scope{vals: make(map[string]*tensor.Tensor, len(p.steps)+len(inputs)), consts: g.Initializers}
	for k, v := range inputs {
		env.vals[k] = v
	}
	keep := map[string]bool{}
	for _, o := range outputs {
		keep[o] = true
	}
	var skip []bool
	var capture map[string]*tensor.Tensor
	var key string
	if s.static.any {
		// the plan is part of the key: a run for other outputs needs other
		// static values
		key = shapeKey(inputs, g.FeedInputs()) + "|" + strings.Join(outputs, "\x00")
		if vals, ok := s.static.lookup(key); ok {
			for k, v := range vals {
				env.vals[k] = v
			}
			skip = s.static.isStatic
		} else {
			capture = map[string]*tensor.Tensor{}
		}
	}
	if err := s.root.execute(env, p, keep, skip, capture, s.static.isStatic); err != nil {
		return nil, err
	}
	if capture != nil {
		s.static.store(key, capture)
	}
	res := make(map[string]*tensor.Tensor, len(outputs))
	for _, o := range outputs {
		t, ok := env.get(o)
		if !ok {
			return nil, fmt.Errorf("runtime: output %q was not produced", o)
		}
		res[o] = t
	}
	return res, nil
}

func (s *Session) plan(outputs []string) (*plan, error) {
	key := strings.Join(outputs, "\x00")
	if p, ok := s.plans.Load(key); ok {
		return p.(*plan), nil
	}
	g := s.root.g
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
			for _, in := range nodeReads(g.Nodes[i]) {
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
	p := &plan{lastUse: map[string]int{}, required: required}
	for i := range g.Nodes {
		if need[i] {
			for _, in := range nodeReads(g.Nodes[i]) {
				p.lastUse[in] = len(p.steps)
			}
			p.steps = append(p.steps, i)
		}
	}
	sort.Strings(p.required)
	s.plans.Store(key, p)
	return p, nil
}

func (s *Session) checkInputs(inputs map[string]*tensor.Tensor, p *plan) error {
	g := s.root.g
	feeds := g.FeedInputs()
	byName := map[string]ValueInfo{}
	for _, v := range g.Inputs {
		byName[v.Name] = v
	}
	for name, t := range inputs {
		v, ok := byName[name]
		if !ok {
			var names []string
			for _, f := range feeds {
				names = append(names, f.Name)
			}
			return &InputError{name, fmt.Sprintf("the model has no such input (its inputs are %s)", strings.Join(names, ", "))}
		}
		if t == nil {
			return &InputError{name, "nil tensor"}
		}
		if err := t.Validate(); err != nil {
			return &InputError{name, err.Error()}
		}
		if v.DType != tensor.Undefined && t.DType != v.DType {
			return &InputError{name, fmt.Sprintf("dtype %v, the model expects %v", t.DType, v.DType)}
		}
		if v.HasShape {
			if len(t.Shape) != len(v.Shape) {
				return &InputError{name, fmt.Sprintf("rank %d (shape %v), the model expects rank %d %s", len(t.Shape), t.Shape, len(v.Shape), v.ShapeString())}
			}
			for i, d := range v.Shape {
				if d.Known() && int64(t.Shape[i]) != d.Value {
					return &InputError{name, fmt.Sprintf("shape %v, the model expects %s (dim %d must be %d)", t.Shape, v.ShapeString(), i, d.Value)}
				}
			}
		}
	}
	// a symbolic dim shared by several inputs must agree
	sym := map[string]struct {
		val   int
		input string
	}{}
	for _, v := range feeds {
		t, ok := inputs[v.Name]
		if !ok || !v.HasShape {
			continue
		}
		for i, d := range v.Shape {
			if d.Param == "" {
				continue
			}
			if prev, ok := sym[d.Param]; ok && prev.val != t.Shape[i] {
				return &InputError{v.Name, fmt.Sprintf("dim %d (%s) is %d but input %q has %s = %d", i, d.Param, t.Shape[i], prev.input, d.Param, prev.val)}
			}
			sym[d.Param] = struct {
				val   int
				input string
			}{t.Shape[i], v.Name}
		}
	}
	for _, name := range p.required {
		if _, ok := inputs[name]; !ok {
			v := byName[name]
			return &InputError{name, fmt.Sprintf("missing: the requested outputs need it (%v%s)", v.DType, v.ShapeString())}
		}
	}
	return nil
}

// execute runs the plan's steps in env. keep names values that must survive
// (requested outputs); other intermediates are dropped after their last use.
// skip marks nodes whose outputs are already in env (cached static
// values); capture, when non-nil, collects the outputs of the nodes marked
// in isStatic.
func (c *compiled) execute(env *scope, p *plan, keep map[string]bool, skip []bool, capture map[string]*tensor.Tensor, isStatic []bool) error {
	for si, i := range p.steps {
		n := c.g.Nodes[i]
		if skip != nil && skip[i] {
			continue
		}
		outs, err := c.runNode(env, i)
		if err != nil {
			return err
		}
		for j, o := range n.Outputs {
			if o != "" && j < len(outs) && outs[j] != nil {
				env.vals[o] = outs[j]
				if capture != nil && isStatic[i] {
					capture[o] = outs[j]
				}
			}
		}
		if p.lastUse != nil {
			for _, in := range n.Inputs {
				if in != "" && p.lastUse[in] == si && !keep[in] {
					delete(env.vals, in)
				}
			}
		}
	}
	return nil
}

func (c *compiled) runNode(env *scope, i int) (outs []*tensor.Tensor, err error) {
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
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 2048)
			buf = buf[:rt.Stack(buf, false)]
			err = &NodeError{n.Label(), n.OpType, fmt.Errorf("kernel panicked: %v (inputs %s)\n%s", r, describe(in), buf)}
		}
	}()
	switch k := c.kernels[i].(type) {
	case scopedOp:
		outs, err = k.runScoped(env, in)
	case ops.Op:
		outs, err = k.Run(in)
	default:
		err = errors.New("node was not compiled")
	}
	if err != nil {
		var ne *NodeError
		if errors.As(err, &ne) && ne.Node == n.Label() {
			return nil, err
		}
		return nil, &NodeError{n.Label(), n.OpType, fmt.Errorf("%w (inputs %s)", err, describe(in))}
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
	steps := make([]int, len(g.Nodes))
	for i := range steps {
		steps[i] = i
	}
	if err := c.execute(env, &plan{steps: steps}, nil, nil, nil, nil); err != nil {
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
