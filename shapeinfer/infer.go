// Package shapeinfer infers, statically and without running a model, the
// dtype and shape of every value of a runtime.Graph, keeping symbolic dims
// by name ([batch time 64]) and arithmetic on them (batch*time, time+2).
//
// Small integer tensors computed from shapes (Shape → Gather → Unsqueeze →
// Concat → Reshape chains, as tf2onnx and PyTorch emit) are tracked element
// by element as symbolic values, so that a ConstantOfShape or Reshape fed by
// such a chain gets a symbolic shape. Constants and initializers are known
// values.
//
// Inconsistencies a rule finds (MatMul inner dims 64 vs 32, a Concat rank
// mismatch, a declared shape contradicting the inferred one) are reported as
// Problems, not errors: declared shapes in real files are sometimes wrong.
// A dim that cannot be known gets a fresh symbolic name such as
// "unk_Slice_12_0" (or Value -1 when nothing at all is known), never a
// wrong number.
package shapeinfer

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// Problem is an inconsistency found by a shape rule.
type Problem struct {
	Node   string // the node's label (name, or →first output)
	Op     string
	Reason string
}

func (p Problem) String() string { return fmt.Sprintf("node %q (%s): %s", p.Node, p.Op, p.Reason) }

// maxTracked bounds the element count of tensors whose values are tracked.
const maxTracked = 64

// val is the inferred type of one value.
type val struct {
	dtype  tensor.DType
	ranked bool
	shape  []Expr
	// data holds the tracked elements (row-major) when the shape is all
	// constants and small; single elements may be Unknown.
	data []Expr
}

func (v *val) rank() int { return len(v.shape) }

// numel returns the constant element count, if known.
func (v *val) numel() (int, bool) {
	if v == nil || !v.ranked {
		return 0, false
	}
	n := int64(1)
	for _, d := range v.shape {
		c, ok := d.IsConst()
		if !ok || c < 0 {
			return 0, false
		}
		n *= c
		if n > math.MaxInt32 {
			return 0, false
		}
	}
	return int(n), true
}

// constShape returns the shape as ints when all dims are constants.
func (v *val) constShape() ([]int, bool) {
	if v == nil || !v.ranked {
		return nil, false
	}
	out := make([]int, len(v.shape))
	for i, d := range v.shape {
		c, ok := d.IsConst()
		if !ok || c < 0 {
			return nil, false
		}
		out[i] = int(c)
	}
	return out, true
}

// ints returns tracked data that is all constants.
func (v *val) ints() ([]int64, bool) {
	if v == nil || v.data == nil {
		return nil, false
	}
	out := make([]int64, len(v.data))
	for i, e := range v.data {
		c, ok := e.IsConst()
		if !ok {
			return nil, false
		}
		out[i] = c
	}
	return out, true
}

func ranked(dt tensor.DType, shape ...Expr) *val {
	if shape == nil {
		shape = []Expr{}
	}
	return &val{dtype: dt, ranked: true, shape: shape}
}

func unranked(dt tensor.DType) *val { return &val{dtype: dt} }

// withData attaches tracked elements when they fit.
func (v *val) withData(data []Expr) *val {
	if n, ok := v.numel(); ok && n == len(data) && n <= maxTracked {
		v.data = data
	}
	return v
}

func vec(dt tensor.DType, data []Expr) *val {
	return ranked(dt, Const(int64(len(data)))).withData(data)
}

// inferer holds the state of one Infer call.
type inferer struct {
	opset    int
	problems []Problem
	out      map[string]runtime.ValueInfo
	vals     map[string]*val // the final inferred values, for tests
	used     map[string]bool
	fresh    map[string]bool // names made by freshName
	nodeSeq  int
}

type scope struct {
	vals   map[string]*val
	parent *scope
}

func (s *scope) get(name string) *val {
	for e := s; e != nil; e = e.parent {
		if v, ok := e.vals[name]; ok {
			return v
		}
	}
	return nil
}

// Infer computes the dtype and shape of every value of the model's graph
// (inputs, initializers, node outputs, and the values inside subgraphs),
// keyed by value name, with the problems found.
func Infer(m *runtime.Model) (map[string]runtime.ValueInfo, []Problem, error) {
	if m == nil || m.Graph == nil {
		return nil, nil, errors.New("shapeinfer: nil model")
	}
	opset := m.Opset()
	if opset == 0 {
		opset = 1
	}
	in := run(m, opset)
	return in.out, in.problems, nil
}

func run(m *runtime.Model, opset int) *inferer {
	in := &inferer{opset: opset, out: map[string]runtime.ValueInfo{}, vals: map[string]*val{}, used: map[string]bool{}, fresh: map[string]bool{}}
	collectParams(m.Graph, in.used)
	in.graph(m.Graph, nil, nil)
	return in
}

// collectParams records every symbolic name the file uses so fresh names
// never collide with them.
func collectParams(g *runtime.Graph, used map[string]bool) {
	add := func(vs []runtime.ValueInfo) {
		for _, v := range vs {
			for _, d := range v.Shape {
				if d.Param != "" {
					used[d.Param] = true
				}
			}
		}
	}
	add(g.Inputs)
	add(g.Outputs)
	add(g.ValueInfo)
	for _, n := range g.Nodes {
		for _, sg := range n.Subgraphs() {
			collectParams(sg.Graph, used)
		}
	}
}

// fromInfo converts a declared ValueInfo.
func (in *inferer) fromInfo(v runtime.ValueInfo, fresh func() Expr) *val {
	if v.Kind != "" && v.Kind != "tensor" {
		return unranked(tensor.Undefined)
	}
	if !v.HasShape {
		return unranked(v.DType)
	}
	shape := make([]Expr, len(v.Shape))
	for i, d := range v.Shape {
		switch {
		case d.Param != "":
			shape[i] = Sym(d.Param)
		case d.Value >= 0:
			shape[i] = Const(d.Value)
		default:
			shape[i] = fresh()
		}
	}
	return ranked(v.DType, shape...)
}

// fromTensor gives an initializer's exact type and, when small, its values.
func fromTensor(t *tensor.Tensor) *val {
	if t == nil {
		return unranked(tensor.Undefined)
	}
	shape := make([]Expr, len(t.Shape))
	for i, d := range t.Shape {
		shape[i] = Const(int64(d))
	}
	v := ranked(t.DType, shape...)
	if t.Len() <= maxTracked && (t.DType.IsInteger() || t.DType == tensor.Bool) {
		if xs, err := tensor.AsInt64(t); err == nil && len(xs) == t.Len() {
			data := make([]Expr, len(xs))
			for i, x := range xs {
				data[i] = Const(x)
			}
			v.withData(data)
		}
	} else if t.Len() <= maxTracked && t.DType.IsFloat() {
		if xs, err := tensor.AsFloat64(t); err == nil && len(xs) == t.Len() {
			data := make([]Expr, len(xs))
			for i, x := range xs {
				if x == math.Trunc(x) && math.Abs(x) < 1<<62 {
					data[i] = Const(int64(x))
				} else {
					data[i] = Unknown()
				}
			}
			v.withData(data)
		}
	}
	return v
}

// toInfo converts an inferred val for the result map.
func toInfo(name string, v *val) runtime.ValueInfo {
	vi := runtime.ValueInfo{Name: name, Kind: "tensor"}
	if v == nil {
		return vi
	}
	vi.DType = v.dtype
	if v.ranked {
		vi.HasShape = true
		vi.Shape = make([]runtime.Dim, len(v.shape))
		for i, d := range v.shape {
			vi.Shape[i] = toDim(d)
		}
	}
	return vi
}

func toDim(d Expr) runtime.Dim {
	if c, ok := d.IsConst(); ok && c >= 0 {
		return runtime.Dim{Value: c}
	}
	if d.IsUnknown() {
		return runtime.Dim{Value: -1}
	}
	if _, ok := d.IsConst(); ok { // negative: impossible as a dim
		return runtime.Dim{Value: -1}
	}
	return runtime.Dim{Value: -1, Param: d.String()}
}

// graph infers g in a scope nested in parent. inputs, when given, overrides
// the types of g's inputs by position (subgraph bodies).
func (in *inferer) graph(g *runtime.Graph, parent *scope, inputs []*val) []*val {
	sc := &scope{vals: map[string]*val{}, parent: parent}
	gseq := in.nodeSeq
	in.nodeSeq++
	k := 0
	fresh := func() Expr {
		k++
		return in.freshName(fmt.Sprintf("unk_in_%d_%d", gseq, k))
	}
	declared := map[string]runtime.ValueInfo{}
	for _, v := range g.ValueInfo {
		declared[v.Name] = v
	}
	for _, v := range g.Outputs {
		declared[v.Name] = v
	}
	for name, t := range g.Initializers {
		sc.vals[name] = fromTensor(t)
	}
	for i, v := range g.Inputs {
		if _, ok := g.Initializers[v.Name]; ok {
			continue
		}
		var x *val
		if i < len(inputs) && inputs[i] != nil {
			x = inputs[i]
			if x.dtype == tensor.Undefined {
				x.dtype = v.DType
			}
		} else {
			x = in.fromInfo(v, fresh)
		}
		sc.vals[v.Name] = x
	}
	// record inputs and initializers
	names := make([]string, 0, len(sc.vals))
	for name := range sc.vals {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		in.out[name] = toInfo(name, sc.vals[name])
		in.vals[name] = sc.vals[name]
	}
	for _, n := range g.Nodes {
		in.node(n, sc, declared)
	}
	outs := make([]*val, len(g.Outputs))
	for i, o := range g.Outputs {
		v := sc.get(o.Name)
		if v == nil {
			v = in.fromInfo(o, fresh)
		}
		outs[i] = v
	}
	return outs
}

// freshName returns a symbol not used by the file or earlier fresh names.
func (in *inferer) freshName(base string) Expr {
	name := base
	for in.used[name] {
		name += "_"
	}
	in.used[name] = true
	in.fresh[name] = true
	return Sym(name)
}

// node infers one node's outputs and stores them in sc.
func (in *inferer) node(n *runtime.Node, sc *scope, declared map[string]runtime.ValueInfo) {
	c := &ctx{in: in, n: n, sc: sc, seq: in.nodeSeq, opset: in.opset}
	in.nodeSeq++
	c.ins = make([]*val, len(n.Inputs))
	for i, name := range n.Inputs {
		if name != "" {
			c.ins[i] = sc.get(name)
			if c.ins[i] == nil {
				c.ins[i] = unranked(tensor.Undefined)
			}
		}
	}
	outs := c.run()
	for i, name := range n.Outputs {
		if name == "" {
			continue
		}
		var v *val
		if i < len(outs) {
			v = outs[i]
		}
		v = c.reconcile(name, v, declared)
		for j, d := range v.shape {
			v.shape[j] = c.known(d)
		}
		sc.vals[name] = v
		in.out[name] = toInfo(name, v)
		in.vals[name] = v
	}
}

// run applies the op's rule, turning a panic into a problem.
func (c *ctx) run() (outs []*val) {
	defer func() {
		if r := recover(); r != nil {
			c.problem("internal error in shape rule: %v", r)
			outs = nil
		}
	}()
	d := ops.Describe(c.n.Domain, c.n.OpType, c.opset)
	if d == nil { // a rule holds below the opset the kernel starts at
		d = ops.Describe(c.n.Domain, c.n.OpType, 0)
	}
	if d == nil {
		return nil
	}
	switch d.Shape.Kind {
	case ops.ShapeSame:
		return ruleUnary(c)
	case ops.ShapeSameBool:
		return ruleBool(c)
	case ops.ShapeBroadcast:
		return ruleBinary(c)
	case ops.ShapeBroadcastBool:
		return ruleCompare(c)
	case ops.ShapeAttached:
		if r, ok := d.Shape.Impl.(rule); ok {
			return r(c)
		}
	}
	return nil
}

// reconcile fills what a rule left unknown from the declared type and
// reports declared shapes that contradict the inferred ones.
func (c *ctx) reconcile(name string, v *val, declared map[string]runtime.ValueInfo) *val {
	d, hasDecl := declared[name]
	if hasDecl && d.Kind != "" && d.Kind != "tensor" {
		hasDecl = false
	}
	if v == nil {
		if hasDecl {
			return c.in.fromInfo(d, c.fresh)
		}
		return unranked(tensor.Undefined)
	}
	if !hasDecl {
		return v
	}
	if v.dtype == tensor.Undefined {
		v.dtype = d.DType
	} else if d.DType != tensor.Undefined && d.DType != v.dtype {
		c.problem("output %q: declared dtype %v, inferred %v", name, d.DType, v.dtype)
	}
	if !d.HasShape {
		return v
	}
	if !v.ranked {
		dv := c.in.fromInfo(d, c.fresh)
		v.ranked, v.shape = true, dv.shape
		return v
	}
	if len(d.Shape) != len(v.shape) {
		c.problem("output %q: declared shape %s has rank %d, inferred %s has rank %d", name, d.ShapeString(), len(d.Shape), shapeString(v.shape), len(v.shape))
		return v
	}
	for i, dd := range d.Shape {
		got := v.shape[i]
		if dd.Known() {
			if gc, ok := got.IsConst(); ok && gc != dd.Value {
				c.problem("output %q: declared shape %s, inferred %s (dim %d)", name, d.ShapeString(), shapeString(v.shape), i)
				break
			}
			if got.IsUnknown() {
				v.shape[i] = Const(dd.Value)
			}
		} else if dd.Param != "" && got.IsUnknown() {
			v.shape[i] = Sym(dd.Param)
		}
	}
	return v
}

func shapeString(s []Expr) string {
	b := []byte{'['}
	for i, d := range s {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, d.String()...)
	}
	return string(append(b, ']'))
}
