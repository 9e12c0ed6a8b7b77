// Package autodiff is reverse-mode automatic differentiation over a
// graph.Graph: a Program runs the forward pass keeping every value it
// needs (a Tape), then propagates output gradients back to the chosen
// parameters with one backward rule per op type. It is the engine under
// package train; it works in float32 for training and float64 for gradient
// checks.
package autodiff

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	_ "github.com/mtlrun/mtlrun/ops/all" // the op descriptors hold the declarative rules
	"github.com/mtlrun/mtlrun/tensor"
)

// Ctx is what a backward rule sees for one node.
type Ctx struct {
	Node    *graph.Node
	Attrs   graph.Attrs
	Opset   int
	In      []*tensor.Tensor // forward inputs (nil where omitted)
	Out     []*tensor.Tensor // forward outputs
	GradOut []*tensor.Tensor // gradient of the loss w.r.t. each output (nil: zero)
	Need    []bool           // which inputs need a gradient
	Saved   any              // what a custom forward kept
	Kernel  ops.Op           // the node's forward kernel (for custom forwards and rules that re-run it)
	// Unread marks (custom forwards only; nil: none) the outputs that
	// nothing reads: no node and no output of the program. A custom
	// forward may leave them nil rather than compute them.
	Unread []bool
}

// Rule returns the gradient for each input (nil where not needed or zero).
type Rule func(c *Ctx) ([]*tensor.Tensor, error)

// Forward is a custom forward pass that keeps state for its rule (e.g. the
// gate activations of an LSTM). It returns the node's outputs and the state.
type Forward func(c *Ctx) ([]*tensor.Tensor, any, error)

type entry struct {
	rule    Rule
	forward Forward
}

// register attaches the backward rule (and optional custom forward) of an
// ai.onnx op to its descriptor (see ops.Desc), for ops whose descriptor
// declares no rule of its own.
func register(opType string, r Rule, f Forward) { ops.AttachGrad("", opType, entry{r, f}) }

// ruleFor returns the backward rule of an op at an opset from its
// descriptor: a declared unary derivative or data-movement rule, or the
// rule attached by register. ok is false for ops with a waiver, or none.
func ruleFor(domain, opType string, opset int) (e entry, ok bool) {
	d := ops.Describe(domain, opType, opset)
	if d == nil {
		return entry{}, false
	}
	switch g := d.Grad; g.Kind {
	case ops.GradUnary:
		return entry{rule: typed(unary[float32](g.Derivative), unary[float64](g.Derivative))}, true
	case ops.GradMovement:
		return entry{rule: movement(g.DataInputs)}, true
	case ops.GradAttached:
		e, ok := g.Impl.(entry)
		return e, ok
	}
	return entry{}, false
}

// HasRule reports whether an ai.onnx op type (at its latest opset) can be
// differentiated.
func HasRule(opType string) bool { _, ok := ruleFor("", opType, 0); return ok }

// Program is a compiled forward+backward for a set of outputs and params.
// A Loop, Scan or If body is compiled into a Program of its own (sub), run
// once per iteration with its own Tape.
type Program struct {
	model   *graph.Model
	g       *graph.Graph
	main    bool
	nodes   []*graph.Node
	opsets  []int
	kernels []ops.Op
	entries []entry
	subs    []map[string]*Program // per node: its compiled subgraphs by attribute (control flow only)
	flow    *analysis
	// needGrad marks values that carry a gradient from a parameter, matter
	// those whose gradient reaches a loss; both are shared with the bodies.
	needGrad map[string]bool
	matter   map[string]bool
	depends  map[string]bool // values that depend on a parameter at all
	outputs  []string
	params   []string
	freeNeed []string // bodies: outer values read here whose gradient is needed
	unread   [][]bool // per node: its outputs nothing reads (markUnread)
}

// NotDifferentiableError lists nodes on a gradient path without a rule.
type NotDifferentiableError struct{ Nodes []string }

func (e *NotDifferentiableError) Error() string {
	return "autodiff: no backward rule for " + strings.Join(e.Nodes, ", ")
}

// NewProgram prepares differentiation of the named outputs w.r.t. params
// (float initializers of the main graph). Only nodes through which a
// gradient really flows from a parameter to an output need a backward rule;
// every node that lacks one is named in a *NotDifferentiableError.
func NewProgram(m *graph.Model, outputs, params []string) (*Program, error) {
	g, err := graph.Prune(m.Graph, outputs)
	if err != nil {
		return nil, fmt.Errorf("autodiff: %w", err)
	}
	carry, matter, depends := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, name := range params {
		t := m.Graph.Initializers[name]
		if t == nil {
			return nil, fmt.Errorf("autodiff: parameter %q is not an initializer", name)
		}
		if !t.DType.IsFloat() {
			return nil, fmt.Errorf("autodiff: parameter %q is %v, not float", name, t.DType)
		}
		carry[name], depends[name] = true, true
	}
	a := &analysis{mode: gradMode}
	a.forward(g, carry)
	for _, o := range outputs {
		matter[o] = true
	}
	a.backward(g, matter)
	(&analysis{mode: dependMode}).forward(g, depends)
	var missing []string
	p, err := compile(m, g, true, a, carry, matter, depends, &missing)
	if err != nil {
		return nil, err
	}
	p.outputs, p.params = outputs, params
	p.markUnread()
	if len(missing) > 0 {
		return nil, &NotDifferentiableError{Nodes: missing}
	}
	return p, nil
}

func compile(m *graph.Model, g *graph.Graph, main bool, a *analysis, needGrad, matter, depends map[string]bool, missing *[]string) (*Program, error) {
	p := &Program{model: m, g: g, main: main, flow: a, needGrad: needGrad, matter: matter, depends: depends}
	for _, n := range g.Nodes {
		opset := int(m.Opsets[n.Domain])
		if n.Domain == "" {
			opset = m.Opset()
		}
		p.nodes = append(p.nodes, n)
		p.opsets = append(p.opsets, opset)
		i := len(p.nodes) - 1
		if sgs := n.Subgraphs(); len(sgs) > 0 {
			if !ops.HasTraits(n.Domain, n.OpType, ops.ControlFlow) {
				return nil, fmt.Errorf("autodiff: node %q (%s): training through its subgraphs is not supported", n.Label(), n.OpType)
			}
			subs := map[string]*Program{}
			for _, sg := range sgs {
				sub, err := compile(m, sg.Graph, false, a, needGrad, matter, depends, missing)
				if err != nil {
					return nil, err
				}
				for _, fv := range sg.Graph.FreeVariables() {
					if needGrad[fv] && matter[fv] {
						sub.freeNeed = append(sub.freeNeed, fv)
					}
				}
				subs[sg.Attr] = sub
			}
			p.kernels = append(p.kernels, nil)
			p.entries = append(p.entries, entry{})
			p.subs = append(p.subs, subs)
			if p.nodeNeedsBackward(i) {
				if err := checkControl(p, i); err != nil {
					return nil, err
				}
			}
			continue
		}
		k, err := ops.New(&ops.Config{Name: n.Label(), OpType: n.OpType, Domain: n.Domain, Opset: opset,
			Attrs: n.Attrs, NumInputs: len(n.Inputs), NumOutputs: len(n.Outputs)})
		if err != nil {
			return nil, fmt.Errorf("autodiff: node %q (%s): %w", n.Label(), n.OpType, err)
		}
		e, hasRule := ruleFor(n.Domain, n.OpType, opset)
		if p.nodeNeedsBackward(i) && !hasRule {
			*missing = append(*missing, fmt.Sprintf("node %q (%s)", n.Label(), n.OpType))
		}
		p.kernels = append(p.kernels, k)
		p.entries = append(p.entries, e)
		p.subs = append(p.subs, nil)
	}
	return p, nil
}

// markUnread fills p.unread: the outputs of each node that no node reads
// and that are not among the program's outputs. Only for a graph without
// subgraphs (a body may read any outer value by name), so every reader
// is in p.nodes.
func (p *Program) markUnread() {
	read := map[string]bool{}
	for _, o := range p.outputs {
		read[o] = true
	}
	for i, n := range p.nodes {
		if p.subs[i] != nil {
			return
		}
		for _, in := range n.Inputs {
			read[in] = true
		}
	}
	p.unread = make([][]bool, len(p.nodes))
	for i, n := range p.nodes {
		for j, o := range n.Outputs {
			if o != "" && !read[o] {
				if p.unread[i] == nil {
					p.unread[i] = make([]bool, len(n.Outputs))
				}
				p.unread[i][j] = true
			}
		}
	}
}

// Params returns the parameter names the program differentiates.
func (p *Program) Params() []string { return p.params }

// Tape holds one forward pass (of the main graph, or of one iteration of a
// body, whose outer values come from the parent tape).
type Tape struct {
	p      *Program
	parent *Tape
	values map[string]*tensor.Tensor
	ins    [][]*tensor.Tensor
	outs   [][]*tensor.Tensor
	saved  []any
}

// Value returns a value computed (or fed) in the forward pass. An output
// of a recurrent node that nothing reads (no node, no output of the
// program) may not be computed: then it is nil.
func (t *Tape) Value(name string) *tensor.Tensor { v, _ := t.get(name); return v }

func (t *Tape) get(name string) (*tensor.Tensor, bool) {
	if v, ok := t.values[name]; ok {
		return v, true
	}
	inits := t.p.g.Initializers
	if t.p.main {
		inits = t.p.model.Graph.Initializers
	}
	if v := inits[name]; v != nil {
		return v, true
	}
	if t.parent != nil {
		return t.parent.get(name)
	}
	return nil, false
}

// Forward runs the model on inputs with the parameters' current values.
func (p *Program) Forward(inputs map[string]*tensor.Tensor) (*Tape, error) {
	for _, v := range p.g.FeedInputs() {
		if _, ok := inputs[v.Name]; !ok {
			return nil, fmt.Errorf("autodiff: missing input %q", v.Name)
		}
	}
	return p.run(inputs, nil)
}

func (p *Program) run(inputs map[string]*tensor.Tensor, parent *Tape) (*Tape, error) {
	t := &Tape{p: p, parent: parent, values: make(map[string]*tensor.Tensor, len(inputs)+len(p.nodes)),
		ins: make([][]*tensor.Tensor, len(p.nodes)), outs: make([][]*tensor.Tensor, len(p.nodes)), saved: make([]any, len(p.nodes))}
	for k, v := range inputs {
		t.values[k] = v
	}
	for i, n := range p.nodes {
		in := make([]*tensor.Tensor, len(n.Inputs))
		for j, name := range n.Inputs {
			if name == "" {
				continue
			}
			v, ok := t.get(name)
			if !ok {
				return nil, fmt.Errorf("autodiff: node %q (%s): input %q has no value", n.Label(), n.OpType, name)
			}
			in[j] = v
		}
		var outs []*tensor.Tensor
		var err error
		switch {
		case p.subs[i] != nil:
			outs, t.saved[i], err = p.runControl(i, in, t)
		case p.entries[i].forward != nil && p.nodeNeedsBackward(i):
			var unread []bool
			if i < len(p.unread) {
				unread = p.unread[i]
			}
			outs, t.saved[i], err = p.entries[i].forward(&Ctx{Node: n, Attrs: n.Attrs, Opset: p.opsets[i], In: in, Kernel: p.kernels[i], Unread: unread})
		default:
			outs, err = p.kernels[i].Run(in)
		}
		if err != nil {
			return nil, fmt.Errorf("autodiff: node %q (%s): %w", n.Label(), n.OpType, err)
		}
		t.ins[i], t.outs[i] = in, outs
		for j, o := range n.Outputs {
			if o != "" && j < len(outs) {
				t.values[o] = outs[j]
			}
		}
	}
	return t, nil
}

// nodeNeedsBackward reports whether a gradient from a parameter reaches a
// loss through one of the node's outputs.
func (p *Program) nodeNeedsBackward(i int) bool {
	for _, o := range p.nodes[i].Outputs {
		if o != "" && p.needGrad[o] && p.matter[o] {
			return true
		}
	}
	return false
}

// Release hands the state the forward pass kept for backward (the LSTM,
// GRU and RNN tapes' step buffers) back for reuse by later forward passes.
// Values stay readable; a later Backward through such a node fails.
func (t *Tape) Release() {
	for i, s := range t.saved {
		if r, ok := s.(interface{ release() }); ok {
			r.release()
		}
		t.saved[i] = nil
	}
}

// Backward propagates the given output gradients (missing outputs count as
// zero) and returns the gradient of every parameter, zero-filled where no
// path reaches it. The tape may be reused for several Backward calls (e.g.
// one per task).
func (t *Tape) Backward(gradOutputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	p := t.p
	for name, gt := range gradOutputs {
		v := t.values[name]
		if v == nil {
			return nil, fmt.Errorf("autodiff: gradient given for unknown output %q", name)
		}
		if !tensor.SameShape(v.Shape, gt.Shape) || v.DType != gt.DType {
			return nil, fmt.Errorf("autodiff: gradient for %q is %v, the output is %v", name, gt, v)
		}
	}
	grads, err := t.backprop(gradOutputs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*tensor.Tensor, len(p.params))
	for _, name := range p.params {
		if g := grads[name]; g != nil {
			out[name] = g
			continue
		}
		w := p.model.Graph.Initializers[name]
		z, err := tensor.New(w.DType, w.Shape)
		if err != nil {
			return nil, err
		}
		out[name] = z
	}
	return out, nil
}

// accumulate adds g to grads[name].
func accumulate(grads map[string]*tensor.Tensor, name string, g *tensor.Tensor) error {
	prev := grads[name]
	if prev == nil {
		grads[name] = g
		return nil
	}
	sum, err := addTensors(prev, g)
	if err != nil {
		return fmt.Errorf("autodiff: gradient of %q: %w", name, err)
	}
	grads[name] = sum
	return nil
}

// backprop runs the backward pass from seed gradients and returns the
// gradient of every value reached (outer values read by a body included).
func (t *Tape) backprop(seed map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	p := t.p
	grads := make(map[string]*tensor.Tensor, len(seed))
	for name, g := range seed {
		grads[name] = g
	}
	for i := len(p.nodes) - 1; i >= 0; i-- {
		n := p.nodes[i]
		if !p.nodeNeedsBackward(i) {
			continue
		}
		gout := make([]*tensor.Tensor, len(n.Outputs))
		any := false
		for j, o := range n.Outputs {
			if o != "" && grads[o] != nil {
				gout[j] = grads[o]
				any = true
			}
		}
		if !any {
			continue
		}
		need := make([]bool, len(n.Inputs))
		anyNeed := false
		for j, in := range n.Inputs {
			need[j] = in != "" && p.needGrad[in] && p.matter[in] && p.flow.inputFlows(p.g, n, j)
			anyNeed = anyNeed || need[j]
		}
		c := &Ctx{Node: n, Attrs: n.Attrs, Opset: p.opsets[i], In: t.ins[i], Out: t.outs[i], GradOut: gout, Need: need, Saved: t.saved[i], Kernel: p.kernels[i]}
		var gin []*tensor.Tensor
		var err error
		if p.subs[i] != nil {
			var free map[string]*tensor.Tensor
			gin, free, err = p.backControl(i, c)
			for name, g := range free {
				if err == nil {
					err = accumulate(grads, name, g)
				}
			}
		} else if anyNeed {
			gin, err = p.entries[i].rule(c)
		}
		if err != nil {
			return nil, fmt.Errorf("autodiff: backward of node %q (%s): %w", n.Label(), n.OpType, err)
		}
		for j, gi := range gin {
			if gi == nil || j >= len(n.Inputs) || !need[j] {
				continue
			}
			if in := t.ins[i][j]; !tensor.SameShape(gi.Shape, in.Shape) {
				return nil, fmt.Errorf("autodiff: backward of node %q (%s): gradient of input %d is %v, input is %v", n.Label(), n.OpType, j, gi, in)
			}
			if err := accumulate(grads, n.Inputs[j], gi); err != nil {
				return nil, err
			}
		}
	}
	return grads, nil
}

// addTensors returns a+b (same shape and float dtype) in a new tensor.
func addTensors(a, b *tensor.Tensor) (*tensor.Tensor, error) {
	if a.DType != b.DType || !tensor.SameShape(a.Shape, b.Shape) {
		return nil, fmt.Errorf("autodiff: cannot accumulate %v and %v", a, b)
	}
	switch a.DType {
	case tensor.Float32:
		return tensor.From(a.Shape, addSlices(tensor.Data[float32](a), tensor.Data[float32](b))), nil
	case tensor.Float64:
		return tensor.From(a.Shape, addSlices(tensor.Data[float64](a), tensor.Data[float64](b))), nil
	}
	return nil, fmt.Errorf("autodiff: gradients must be float32 or float64, got %v", a.DType)
}

func addSlices[T tensor.Float](a, b []T) []T {
	out := make([]T, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

// Supported lists the ai.onnx op types with backward rules, sorted.
func Supported() []string {
	var out []string
	for _, d := range ops.Descriptors() {
		if d.Domain == "" && d.Grad.Differentiable() && (len(out) == 0 || out[len(out)-1] != d.Type) {
			out = append(out, d.Type)
		}
	}
	return out
}

var errDType = errors.New("autodiff: only float32 and float64 are differentiable")
