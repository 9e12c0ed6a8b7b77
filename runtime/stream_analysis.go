package runtime

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/mtlrun/mtlrun/tensor"
)

// Streamability analysis: can the requested outputs be computed one new
// time step (or chunk of steps) at a time, carrying only the recurrent
// nodes' states between calls, with the same result as a full run over the
// whole prefix?
//
// The analysis gives every value on the path to the outputs one of four
// kinds, walking the graph in topological order:
//
//   - const: independent of the streamed data and of the chunk length
//     (initializers, Constant nodes, and shape arithmetic on dims other
//     than the time axis, such as the batch size feeding an initial state);
//   - timed: has the stream's time axis (tracked through Transpose,
//     Squeeze, Reshape, ...) and its slice at step t depends only on steps
//     <= t, through ops that act on each step on its own and through
//     forward recurrences (LSTM/GRU/RNN) whose state is carried over;
//   - summary: no time axis; a function of the whole prefix that the last
//     chunk computes exactly given the carried states (Y_h/Y_c, Y[-1] by
//     Slice or Gather, and anything computed from those and constants);
//   - timeshape: integers derived from the chunk length (Shape of a timed
//     value), allowed only where the length is used as such (a Reshape
//     that keeps the time axis) or dropped (Gather of the batch dim).
//
// Anything else that touches a timed value refuses with the node named:
// bidirectional or reverse recurrences, sequence_lens, reductions, softmax,
// pooling, convolution or normalisation over the time axis, slices of a
// window of steps, contraction over time, and ops the analysis does not
// know. The rules are deliberately conservative: when the analysis cannot
// tell (an unknown rank, a constant whose shape it cannot see), it refuses.

// StreamError says why a model's outputs cannot be computed step by step.
type StreamError struct {
	Node   string // label of the node that looks across time ("" if none)
	OpType string
	Reason string

	axis bool // refused because of the guessed time axis
}

func (e *StreamError) Error() string {
	if e.Node == "" {
		return "runtime: not streamable: " + e.Reason
	}
	return fmt.Sprintf("runtime: not streamable: node %q (%s) %s", e.Node, e.OpType, e.Reason)
}

// StreamPlan is what the analysis found for one model, output set and
// time axis.
type StreamPlan struct {
	// TimeAxis is the time axis of every fed input ([batch, time, ...] is 1).
	TimeAxis int
	Outputs  []StreamOutput
	// Recurrent lists the recurrent nodes whose state is carried between
	// steps, by label, in graph order.
	Recurrent []string

	carried []*Node
}

// StreamOutput describes one requested output of a stream.
type StreamOutput struct {
	Name string
	// PerStep is true for time-distributed outputs (one value per step,
	// TimeAxis says where): a stream step returns the new steps' values.
	// Otherwise the output summarises the prefix (e.g. a head on the last
	// hidden state) and a step returns its value after the last new step.
	PerStep  bool
	TimeAxis int
}

type streamKind uint8

const (
	kConst streamKind = iota
	kTimed
	kSummary
	kTimeShape
)

func (k streamKind) String() string {
	return [...]string{"constant", "per-step", "prefix summary", "sequence-length-derived"}[k]
}

// shapeElem is one element of an integer vector derived from Shape.
type shapeElem struct {
	time    bool   // equals the chunk length
	tainted bool   // depends on the chunk length some other way
	src     string // the value whose dim this is ("" for a constant)
	dim     int
	val     int64 // when known
	known   bool
}

type streamFact struct {
	kind  streamKind
	axis  int // time axis of a timed value
	rank  int // -1 unknown
	elems []shapeElem
}

type streamAnalysis struct {
	g        *Graph
	opset    int
	facts    map[string]*streamFact
	producer map[string]*Node
	carried  []*Node
}

// AnalyzeStream decides whether the named outputs of m (all its outputs
// when none are named) can be computed step by step when every fed input
// has its time axis at timeAxis. The error is a *StreamError naming the
// node that looks across time.
func AnalyzeStream(m *Model, timeAxis int, outputs ...string) (*StreamPlan, error) {
	if m == nil || m.Graph == nil {
		return nil, errors.New("runtime: nil model")
	}
	g := m.Graph
	if len(outputs) == 0 {
		for _, o := range g.Outputs {
			outputs = append(outputs, o.Name)
		}
	}
	a := &streamAnalysis{g: g, opset: m.Opset(), facts: map[string]*streamFact{}, producer: g.Producers()}
	for name, t := range g.Initializers {
		a.facts[name] = &streamFact{kind: kConst, rank: t.Rank()}
	}
	feeds := g.FeedInputs()
	if len(feeds) == 0 {
		return nil, &StreamError{Reason: "the model has no inputs to stream"}
	}
	for _, v := range feeds {
		if v.Kind != "" && v.Kind != "tensor" {
			return nil, &StreamError{Reason: fmt.Sprintf("input %q is a %s, not a tensor", v.Name, v.Kind)}
		}
		if !v.HasShape {
			return nil, &StreamError{Reason: fmt.Sprintf("input %q has no declared shape, so its time axis is unknown", v.Name)}
		}
		if timeAxis < 0 || timeAxis >= len(v.Shape) || len(v.Shape) < 2 {
			return nil, &StreamError{Reason: fmt.Sprintf("input %q %s has no time axis %d (a streamed input is at least [batch, time])", v.Name, v.ShapeString(), timeAxis)}
		}
		a.facts[v.Name] = &streamFact{kind: kTimed, axis: timeAxis, rank: len(v.Shape)}
	}
	// only the nodes the outputs need
	need := map[*Node]bool{}
	for _, o := range outputs {
		if _, ok := a.producer[o]; !ok && a.facts[o] == nil {
			var names []string
			for _, v := range g.Outputs {
				names = append(names, v.Name)
			}
			return nil, fmt.Errorf("runtime: unknown output %q (the model's outputs are %s)", o, strings.Join(names, ", "))
		}
		for _, v := range Ancestors(g, a.producer, o) {
			if n := a.producer[v]; n != nil {
				need[n] = true
			}
		}
	}
	for _, n := range g.Nodes {
		if !need[n] {
			continue
		}
		if err := a.node(n); err != nil {
			return nil, err
		}
	}
	plan := &StreamPlan{TimeAxis: timeAxis, carried: a.carried}
	for _, n := range a.carried {
		plan.Recurrent = append(plan.Recurrent, n.Label())
	}
	for _, o := range outputs {
		f := a.facts[o]
		switch {
		case f == nil:
			return nil, &StreamError{Reason: fmt.Sprintf("output %q has no value", o)}
		case f.kind == kTimeShape:
			return nil, &StreamError{Reason: fmt.Sprintf("output %q depends on the sequence length", o)}
		}
		plan.Outputs = append(plan.Outputs, StreamOutput{Name: o, PerStep: f.kind == kTimed, TimeAxis: f.axis})
	}
	return plan, nil
}

// refuse builds the error for node n.
func refuse(n *Node, format string, args ...any) error {
	return &StreamError{Node: n.Label(), OpType: n.OpType, Reason: fmt.Sprintf(format, args...)}
}

func (a *streamAnalysis) fact(name string) *streamFact {
	if f := a.facts[name]; f != nil && name != "" {
		return f
	}
	// an outer-scope value of a subgraph or something the walk skipped:
	// treat as constant only when it is one
	return &streamFact{kind: kConst, rank: -1}
}

// rankOf returns the value's rank, or -1.
func (a *streamAnalysis) rankOf(name string) int {
	if f := a.facts[name]; f != nil && f.rank >= 0 {
		return f.rank
	}
	if t := a.constTensor(name); t != nil {
		return t.Rank()
	}
	if s := a.declaredShape(name); s != nil {
		return len(s)
	}
	return -1
}

// declaredShape returns the shape value_info or the graph outputs declare
// (unknown dims as -1), or nil.
func (a *streamAnalysis) declaredShape(name string) []int {
	for _, list := range [][]ValueInfo{a.g.ValueInfo, a.g.Outputs} {
		for _, v := range list {
			if v.Name == name && v.HasShape {
				s := make([]int, len(v.Shape))
				for i, d := range v.Shape {
					s[i] = -1
					if d.Known() {
						s[i] = int(d.Value)
					}
				}
				return s
			}
		}
	}
	return nil
}

// constTensor returns the value of an initializer or a Constant node's
// output, or nil.
func (a *streamAnalysis) constTensor(name string) *tensor.Tensor {
	if name == "" {
		return nil
	}
	if t := a.g.Initializers[name]; t != nil {
		return t
	}
	n := a.producer[name]
	if n == nil || n.OpType != "Constant" || !isDefaultDomain(n.Domain) {
		return nil
	}
	at := n.Attrs
	switch {
	case at.Tensor("value") != nil:
		return at.Tensor("value")
	case at.Has("value_int"):
		return tensor.Scalar(at.Int("value_int", 0))
	case at.Has("value_ints"):
		v := at.Ints("value_ints")
		return tensor.From([]int{len(v)}, append([]int64(nil), v...))
	case at.Has("value_float"):
		return tensor.Scalar(at.Float("value_float", 0))
	case at.Has("value_floats"):
		v := at.Floats("value_floats")
		return tensor.From([]int{len(v)}, append([]float32(nil), v...))
	}
	return nil
}

// constInts returns a constant integer input's values.
func (a *streamAnalysis) constInts(name string) ([]int64, bool) {
	t := a.constTensor(name)
	if t == nil || !t.DType.IsInteger() {
		return nil, false
	}
	v, err := tensor.AsInt64(t)
	return v, err == nil
}

// intsParam reads an integer list given as attribute (older opsets) or as
// input i (newer ones). present is false when neither is given.
func (a *streamAnalysis) intsParam(n *Node, attr string, i int) (v []int64, present, ok bool) {
	if n.Attrs.Has(attr) {
		return n.Attrs.Ints(attr), true, true
	}
	if i < len(n.Inputs) && n.Inputs[i] != "" {
		v, ok := a.constInts(n.Inputs[i])
		return v, true, ok
	}
	return nil, false, true
}

func normAxis(axis int64, rank int) (int, bool) {
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), axis >= 0 && axis < int64(rank)
}

var streamUnary = setOf("Relu", "Sigmoid", "Tanh", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil",
	"Round", "Sign", "Erf", "Softplus", "Softsign", "Elu", "Selu", "LeakyRelu", "HardSigmoid", "HardSwish", "Gelu",
	"Mish", "ThresholdedRelu", "Celu", "Cast", "CastLike", "Identity", "Dropout", "Not", "IsNaN", "IsInf", "Sin", "Cos",
	"Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Clip", "BitwiseNot")

var streamBroadcast = setOf("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Equal", "Less", "Greater",
	"LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Where", "PRelu", "Mod", "BitShift", "BitwiseAnd",
	"BitwiseOr", "BitwiseXor")

var streamShapeArith = setOf("Add", "Sub", "Mul", "Div", "Max", "Min", "Mod")

var streamReduce = setOf("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
	"ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin")

var streamRecurrent = setOf("LSTM", "GRU", "RNN")

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// set records the facts of node n's outputs.
func (a *streamAnalysis) set(n *Node, f streamFact, outs ...int) {
	if len(outs) == 0 {
		for i := range n.Outputs {
			outs = append(outs, i)
		}
	}
	for _, i := range outs {
		if i < len(n.Outputs) && n.Outputs[i] != "" {
			c := f
			a.facts[n.Outputs[i]] = &c
		}
	}
}

// node derives the facts of n's outputs from its inputs' facts.
func (a *streamAnalysis) node(n *Node) error {
	reads := nodeReads(n)
	var timed, timeShape, summary bool
	for _, in := range reads {
		switch a.fact(in).kind {
		case kTimed:
			timed = true
		case kTimeShape:
			timeShape = true
		case kSummary:
			summary = true
		}
	}
	if !isDefaultDomain(n.Domain) && (timed || timeShape) {
		return refuse(n, "is a %s op the analysis does not know", n.Domain)
	}
	if len(n.Subgraphs()) > 0 && (timed || timeShape) {
		if n.OpType == "Loop" || n.OpType == "Scan" {
			return refuse(n, "iterates over the sequence with a subgraph (tf2onnx's unrolled-cell form); only the LSTM/GRU/RNN ops are streamed")
		}
		return refuse(n, "runs a subgraph on per-step values")
	}
	// integer shape arithmetic: tracked element by element
	if handled, err := a.shapeOp(n); handled || err != nil {
		return err
	}
	if timeShape && !timed {
		return refuse(n, "uses the sequence length (derived from a Shape of a per-step value)")
	}
	if !timed {
		k := kConst
		if summary {
			k = kSummary
		}
		rank := -1
		if len(n.Outputs) == 1 {
			rank = a.passRank(n)
		}
		a.set(n, streamFact{kind: k, rank: rank})
		return nil
	}
	return a.timedOp(n)
}

// passRank is the output rank of a node with only constant or summary
// inputs, where it is cheap to know; -1 otherwise.
func (a *streamAnalysis) passRank(n *Node) int {
	if s := a.declaredShape(n.Outputs[0]); s != nil {
		return len(s)
	}
	if len(n.Inputs) == 0 || n.Inputs[0] == "" {
		return -1
	}
	r := a.rankOf(n.Inputs[0])
	if r < 0 {
		return -1
	}
	switch {
	case streamUnary[n.OpType], n.OpType == "Softmax", n.OpType == "LogSoftmax", n.OpType == "Transpose":
		return r
	case n.OpType == "Gather":
		if ri := a.rankOf(n.Inputs[1]); ri >= 0 {
			return r - 1 + ri
		}
	case n.OpType == "Gemm":
		return 2
	case streamBroadcast[n.OpType]:
		for _, in := range n.Inputs[1:] {
			ri := a.rankOf(in)
			if ri < 0 {
				return -1
			}
			r = max(r, ri)
		}
		return r
	case n.OpType == "Squeeze":
		if axes, present, ok := a.intsParam(n, "axes", 1); present && ok {
			return r - len(axes)
		}
	case n.OpType == "Unsqueeze":
		if axes, present, ok := a.intsParam(n, "axes", 1); present && ok {
			return r + len(axes)
		}
	case n.OpType == "MatMul":
		rb := a.rankOf(n.Inputs[1])
		switch {
		case rb < 0:
		case rb == 1:
			return r - 1
		case r == 1:
			return rb - 1
		default:
			return max(r, rb)
		}
	}
	return -1
}

// shapeOp handles integer vectors derived from Shape. It reports whether it
// took the node.
func (a *streamAnalysis) shapeOp(n *Node) (bool, error) {
	in0 := ""
	if len(n.Inputs) > 0 {
		in0 = n.Inputs[0]
	}
	f0 := a.fact(in0)
	switch n.OpType {
	case "Shape":
		r := a.rankOf(in0)
		if r < 0 {
			if f0.kind == kTimed {
				a.set(n, streamFact{kind: kTimeShape, rank: 1})
				return true, nil
			}
			return false, nil
		}
		lo, hi := 0, r
		if n.Attrs.Has("start") || n.Attrs.Has("end") {
			lo = clampDim(n.Attrs.Int("start", 0), r)
			hi = clampDim(n.Attrs.Int("end", int64(r)), r)
		}
		var el []shapeElem
		for d := lo; d < hi; d++ {
			el = append(el, shapeElem{time: f0.kind == kTimed && d == f0.axis, src: in0, dim: d})
		}
		a.setElems(n, el, 1)
		return true, nil
	case "Size":
		if f0.kind == kTimed {
			a.set(n, streamFact{kind: kTimeShape, rank: 0, elems: []shapeElem{{tainted: true}}})
			return true, nil
		}
		return false, nil
	}
	// the other rules apply only when an input carries element facts
	if f0.elems == nil && !(n.OpType == "Concat" || streamShapeArith[n.OpType]) {
		return false, nil
	}
	elemsOf := func(name string) []shapeElem {
		if f := a.facts[name]; f != nil && f.elems != nil {
			return f.elems
		}
		if v, ok := a.constInts(name); ok {
			el := make([]shapeElem, len(v))
			for i, x := range v {
				el[i] = shapeElem{val: x, known: true}
			}
			return el
		}
		return nil
	}
	switch n.OpType {
	case "Cast", "Identity":
		a.setElems(n, f0.elems, f0.rank)
		return true, nil
	case "Squeeze", "Unsqueeze", "Reshape", "Flatten":
		if len(f0.elems) != 1 {
			return false, nil
		}
		rank := 1
		if n.OpType == "Squeeze" {
			rank = 0
		}
		a.setElems(n, f0.elems, rank)
		return true, nil
	case "Gather":
		idx, ok := a.constInts(n.Inputs[1])
		if !ok || n.Attrs.Int("axis", 0) != 0 || f0.rank > 1 {
			return false, nil
		}
		var el []shapeElem
		for _, i := range idx {
			j, ok := normAxis(i, len(f0.elems))
			if !ok {
				return false, nil
			}
			el = append(el, f0.elems[j])
		}
		rank := a.rankOf(n.Inputs[1])
		a.setElems(n, el, rank)
		return true, nil
	case "Slice":
		starts, _, ok1 := a.intsParam(n, "starts", 1)
		ends, _, ok2 := a.intsParam(n, "ends", 2)
		axes, _, ok3 := a.intsParam(n, "axes", 3)
		steps, _, ok4 := a.intsParam(n, "steps", 4)
		if !ok1 || !ok2 || !ok3 || !ok4 || len(starts) != 1 || len(ends) != 1 || (len(axes) == 1 && axes[0] != 0 && axes[0] != -1) || (len(steps) == 1 && steps[0] != 1) || len(axes) > 1 || len(steps) > 1 {
			return false, nil
		}
		l := len(f0.elems)
		lo, hi := clampDim(starts[0], l), clampDim(ends[0], l)
		if hi < lo {
			hi = lo
		}
		a.setElems(n, append([]shapeElem(nil), f0.elems[lo:hi]...), 1)
		return true, nil
	case "Concat":
		var el []shapeElem
		for _, in := range n.Inputs {
			e := elemsOf(in)
			if e == nil {
				return false, nil
			}
			el = append(el, e...)
		}
		if !anyShapeDerived(el) {
			return false, nil
		}
		a.setElems(n, el, 1)
		return true, nil
	}
	if streamShapeArith[n.OpType] && len(n.Inputs) == 2 {
		x, y := elemsOf(n.Inputs[0]), elemsOf(n.Inputs[1])
		if x == nil || y == nil || !anyShapeDerived(append(append([]shapeElem(nil), x...), y...)) {
			return false, nil
		}
		l := max(len(x), len(y))
		if (len(x) != l && len(x) != 1) || (len(y) != l && len(y) != 1) {
			return false, nil
		}
		el := make([]shapeElem, l)
		for i := range el {
			p, q := x[min(i, len(x)-1)], y[min(i, len(y)-1)]
			el[i] = shapeElem{tainted: p.time || p.tainted || q.time || q.tainted}
		}
		a.setElems(n, el, max(a.rankOf(n.Inputs[0]), a.rankOf(n.Inputs[1])))
		return true, nil
	}
	return false, nil
}

// anyShapeDerived reports whether some element came from a Shape (else the
// vector is an ordinary constant the generic rule handles).
func anyShapeDerived(el []shapeElem) bool {
	for _, e := range el {
		if !e.known {
			return true
		}
	}
	return false
}

func (a *streamAnalysis) setElems(n *Node, el []shapeElem, rank int) {
	k := kConst
	for _, e := range el {
		if e.time || e.tainted {
			k = kTimeShape
		}
	}
	a.set(n, streamFact{kind: k, rank: rank, elems: el}, 0)
}

func clampDim(v int64, n int) int {
	if v < 0 {
		v += int64(n)
	}
	return int(max(0, min(v, int64(n))))
}

// timedOp handles a node with at least one per-step input.
func (a *streamAnalysis) timedOp(n *Node) error {
	x := a.fact(n.Inputs[0])
	op := n.OpType
	switch {
	case streamRecurrent[op]:
		return a.recurrent(n)
	case streamUnary[op]:
		if x.kind != kTimed {
			return refuse(n, "applies a per-step value as a parameter")
		}
		for _, in := range n.Inputs[1:] {
			if in != "" && a.fact(in).kind != kConst {
				return refuse(n, "takes a non-constant parameter %q", in)
			}
		}
		a.set(n, streamFact{kind: kTimed, axis: x.axis, rank: x.rank})
		return nil
	case streamBroadcast[op]:
		return a.broadcast(n)
	}
	if x.kind != kTimed {
		return a.timedParam(n)
	}
	if op == "Concat" {
		return a.concat(n, x)
	}
	for i, in := range n.Inputs[1:] {
		f := a.fact(in)
		if in == "" || f.kind == kConst || (op == "Reshape" && i == 0 && f.kind == kTimeShape) {
			continue
		}
		return refuse(n, "combines the per-step value %q with the %s value %q", n.Inputs[0], f.kind, in)
	}
	r, ax := x.rank, x.axis
	if r < 0 {
		return refuse(n, "reads %q whose rank the analysis cannot tell", n.Inputs[0])
	}
	out := func(axis, rank int) error {
		a.set(n, streamFact{kind: kTimed, axis: axis, rank: rank})
		return nil
	}
	switch op {
	case "Transpose":
		perm := n.Attrs.Ints("perm")
		if len(perm) == 0 {
			return out(r-1-ax, r)
		}
		for j, p := range perm {
			if int(p) == ax {
				return out(j, r)
			}
		}
		return refuse(n, "has a perm %v without the time axis %d", perm, ax)
	case "Squeeze":
		axes, present, ok := a.intsParam(n, "axes", 1)
		if !present {
			return refuse(n, "squeezes without axes, which would drop the time axis of a one-step chunk")
		}
		if !ok {
			return refuse(n, "has axes the analysis cannot see")
		}
		na := ax
		for _, v := range axes {
			d, ok := normAxis(v, r)
			if !ok {
				return refuse(n, "has axis %d out of range for rank %d", v, r)
			}
			if d == ax {
				return refuse(n, "squeezes the time axis (dim %d)", ax)
			}
			if d < ax {
				na--
			}
		}
		return out(na, r-len(axes))
	case "Unsqueeze":
		axes, present, ok := a.intsParam(n, "axes", 1)
		if !present || !ok {
			return refuse(n, "has axes the analysis cannot see")
		}
		or := r + len(axes)
		ins := make([]bool, or)
		for _, v := range axes {
			d, ok := normAxis(v, or)
			if !ok {
				return refuse(n, "has axis %d out of range", v)
			}
			ins[d] = true
		}
		src := 0
		for j := range ins {
			if ins[j] {
				continue
			}
			if src == ax {
				return out(j, or)
			}
			src++
		}
		return refuse(n, "loses track of the time axis")
	case "Slice":
		return a.slice(n, x)
	case "Gather":
		return a.gather(n, x)
	case "MatMul":
		rb := a.rankOf(n.Inputs[1])
		if rb < 0 {
			return refuse(n, "multiplies by %q whose rank the analysis cannot tell", n.Inputs[1])
		}
		if r < 2 || ax == r-1 {
			return refuse(n, "sums over the time axis (it is the contracted dim)")
		}
		if rb == 1 {
			return out(ax, r-1)
		}
		or := max(r, rb)
		na := ax + or - r
		if ax < r-2 && rb > 2 {
			if !a.constDimIs1(n.Inputs[1], na-(or-rb)) {
				return refuse(n, "broadcasts the per-step value against %q along the time axis", n.Inputs[1])
			}
		}
		return out(na, or)
	case "Gemm":
		if n.Attrs.Int("transA", 0) != 0 {
			if ax != 1 {
				return refuse(n, "sums over the time axis (it is the contracted dim)")
			}
		} else if ax != 0 {
			return refuse(n, "sums over the time axis (it is the contracted dim)")
		}
		if len(n.Inputs) > 2 && n.Inputs[2] != "" {
			if rc := a.rankOf(n.Inputs[2]); rc == 2 && !a.constDimIs1(n.Inputs[2], 0) {
				return refuse(n, "adds a bias %q that varies along the time axis", n.Inputs[2])
			}
		}
		return out(0, 2)
	case "Softmax", "LogSoftmax", "Hardmax":
		def := int64(-1)
		if a.opset < 13 {
			def = 1
		}
		d, ok := normAxis(n.Attrs.Int("axis", def), r)
		if !ok {
			return refuse(n, "has an axis out of range")
		}
		if (a.opset >= 13 && d == ax) || (a.opset < 13 && ax >= d) {
			return refuse(n, "normalises over the time axis (attention or pooling over time)")
		}
		return out(ax, r)
	case "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
		"ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin":
		var axes []int64
		if op == "ArgMax" || op == "ArgMin" {
			axes = []int64{n.Attrs.Int("axis", 0)}
		} else {
			v, present, ok := a.intsParam(n, "axes", 1)
			switch {
			case !ok:
				return refuse(n, "has axes the analysis cannot see")
			case !present || len(v) == 0:
				if n.Attrs.Int("noop_with_empty_axes", 0) != 0 {
					return out(ax, r)
				}
				return refuse(n, "reduces over every axis, the time axis too")
			}
			axes = v
		}
		keep := n.Attrs.Int("keepdims", 1) != 0
		na := ax
		for _, v := range axes {
			d, ok := normAxis(v, r)
			if !ok {
				return refuse(n, "has axis %d out of range", v)
			}
			if d == ax {
				return refuse(n, "reduces over the time axis (pooling over time)")
			}
			if d < ax && !keep {
				na--
			}
		}
		if keep {
			return out(ax, r)
		}
		return out(na, r-len(axes))
	case "CumSum":
		v, ok := a.constInts(n.Inputs[1])
		if !ok || len(v) != 1 {
			return refuse(n, "has an axis the analysis cannot see")
		}
		if d, _ := normAxis(v[0], r); d == ax {
			return refuse(n, "accumulates over the time axis")
		}
		return out(ax, r)
	case "Split":
		d, ok := normAxis(n.Attrs.Int("axis", 0), r)
		if !ok {
			return refuse(n, "has an axis out of range")
		}
		if d == ax {
			return refuse(n, "joins or splits along the time axis")
		}
		if op == "Split" {
			for _, in := range n.Inputs[1:] {
				if in != "" && a.constTensor(in) == nil {
					return refuse(n, "has split sizes the analysis cannot see")
				}
			}
		}
		return out(ax, r)
	case "Reshape":
		return a.reshape(n, x)
	case "Flatten":
		d, ok := normAxis(n.Attrs.Int("axis", 1), r+1)
		if !ok {
			return refuse(n, "has an axis out of range")
		}
		switch {
		case ax == 0 && d == 1:
			return out(0, 2)
		case ax == r-1 && d == r-1:
			return out(1, 2)
		}
		return refuse(n, "merges the time axis with other dims")
	case "LayerNormalization":
		d, ok := normAxis(n.Attrs.Int("axis", -1), r)
		if !ok || ax >= d {
			return refuse(n, "normalises over the time axis")
		}
		return out(ax, r)
	case "BatchNormalization":
		if n.Attrs.Int("training_mode", 0) != 0 {
			return refuse(n, "normalises with batch statistics (training mode)")
		}
		if ax == 1 {
			return refuse(n, "has the time axis as its channel axis")
		}
		return out(ax, r)
	case "InstanceNormalization", "GroupNormalization", "LRN":
		if ax != 0 {
			return refuse(n, "normalises over the time axis")
		}
		return out(ax, r)
	case "LpNormalization":
		d, _ := normAxis(n.Attrs.Int("axis", -1), r)
		if d == ax {
			return refuse(n, "normalises over the time axis")
		}
		return out(ax, r)
	case "Conv", "MaxPool", "AveragePool", "LpPool":
		return a.window(n, x)
	case "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool":
		if ax >= 2 {
			return refuse(n, "pools over the time axis")
		}
		if ax == 1 {
			return refuse(n, "has the time axis as its channel axis")
		}
		return out(ax, r)
	case "Expand":
		shp, ok := a.constInts(n.Inputs[1])
		if !ok {
			return refuse(n, "expands to a shape the analysis cannot see")
		}
		or := max(r, len(shp))
		na := ax + or - r
		if j := na - (or - len(shp)); j >= 0 && shp[j] != 1 {
			return refuse(n, "expands the time axis to %d", shp[j])
		}
		return out(na, or)
	case "Tile":
		rep, ok := a.constInts(n.Inputs[1])
		if !ok || len(rep) != r {
			return refuse(n, "has repeats the analysis cannot see")
		}
		if rep[ax] != 1 {
			return refuse(n, "repeats along the time axis")
		}
		return out(ax, r)
	case "Pad":
		pads, present, ok := a.intsParam(n, "pads", 1)
		if !present || !ok || len(pads) != 2*r || (len(n.Inputs) > 3 && n.Inputs[3] != "") {
			return refuse(n, "has pads the analysis cannot see")
		}
		if pads[ax] != 0 || pads[ax+r] != 0 {
			return refuse(n, "pads the time axis")
		}
		return out(ax, r)
	case "ReverseSequence":
		return refuse(n, "reverses the sequence")
	case "Einsum":
		return refuse(n, "is an Einsum, which the analysis does not follow")
	case "TopK", "Sort", "Unique", "NonZero", "Compress", "Range", "OneHot", "Trilu", "Attention", "MultiHeadAttention":
		return refuse(n, "is not a per-step op")
	}
	return refuse(n, "is an op the analysis does not know to act on each time step separately")
}

// timedParam handles a node whose first input is not per-step but another is.
func (a *streamAnalysis) timedParam(n *Node) error {
	switch n.OpType {
	case "Gather":
		idx := a.fact(n.Inputs[1])
		data := a.fact(n.Inputs[0])
		if idx.kind != kTimed || data.kind != kConst {
			break
		}
		rd := a.rankOf(n.Inputs[0])
		if rd < 0 || idx.rank < 0 {
			return refuse(n, "gathers with ranks the analysis cannot tell")
		}
		d, ok := normAxis(n.Attrs.Int("axis", 0), rd)
		if !ok {
			return refuse(n, "has an axis out of range")
		}
		a.set(n, streamFact{kind: kTimed, axis: d + idx.axis, rank: rd - 1 + idx.rank})
		return nil
	case "MatMul":
		b := a.fact(n.Inputs[1])
		ra := a.rankOf(n.Inputs[0])
		if a.fact(n.Inputs[0]).kind != kConst || ra < 2 || b.rank < 2 || b.axis != b.rank-1 {
			break
		}
		or := max(ra, b.rank)
		a.set(n, streamFact{kind: kTimed, axis: or - 1, rank: or})
		return nil
	}
	return refuse(n, "uses a per-step value as a parameter")
}

// constDimIs1 reports whether a constant's dim d (counted from the left of
// its own shape) is 1 or absent.
func (a *streamAnalysis) constDimIs1(name string, d int) bool {
	if a.fact(name).kind != kConst {
		return false
	}
	var shape []int
	if t := a.constTensor(name); t != nil {
		shape = t.Shape
	} else {
		shape = a.declaredShape(name)
	}
	if shape == nil {
		return false
	}
	return d < 0 || (d < len(shape) && shape[d] == 1)
}

// broadcast handles element-wise ops with numpy broadcasting.
func (a *streamAnalysis) broadcast(n *Node) error {
	or := 0
	ranks := make([]int, len(n.Inputs))
	for i, in := range n.Inputs {
		if in == "" {
			continue
		}
		ranks[i] = a.rankOf(in)
		if ranks[i] < 0 {
			return refuse(n, "reads %q whose rank the analysis cannot tell", in)
		}
		or = max(or, ranks[i])
	}
	na := -1
	for i, in := range n.Inputs {
		if f := a.fact(in); in != "" && f.kind == kTimed {
			p := f.axis + or - ranks[i]
			if na >= 0 && p != na {
				return refuse(n, "combines per-step values whose time axes differ (dims %d and %d)", na, p)
			}
			na = p
		}
	}
	for i, in := range n.Inputs {
		if in == "" {
			continue
		}
		switch f := a.fact(in); f.kind {
		case kTimed:
		case kConst:
			if j := na - (or - ranks[i]); j >= 0 && !a.constDimIs1(in, j) {
				return refuse(n, "combines a per-step value with %q, which may vary along the time axis", in)
			}
		default:
			return refuse(n, "combines a per-step value with the %s value %q", f.kind, in)
		}
	}
	a.set(n, streamFact{kind: kTimed, axis: na, rank: or})
	return nil
}

// bigEnd reports whether a Slice end means "to the end".
func bigEnd(v int64) bool { return v >= math.MaxInt32 }

func (a *streamAnalysis) slice(n *Node, x *streamFact) error {
	starts, _, ok1 := a.intsParam(n, "starts", 1)
	ends, _, ok2 := a.intsParam(n, "ends", 2)
	axes, hasAxes, ok3 := a.intsParam(n, "axes", 3)
	steps, hasSteps, ok4 := a.intsParam(n, "steps", 4)
	if !ok1 || !ok2 || !ok3 || !ok4 || len(starts) != len(ends) {
		return refuse(n, "has bounds the analysis cannot see")
	}
	if !hasAxes {
		axes = make([]int64, len(starts))
		for i := range axes {
			axes[i] = int64(i)
		}
	}
	kind := kTimed
	for i, v := range axes {
		d, ok := normAxis(v, x.rank)
		if !ok || i >= len(starts) {
			return refuse(n, "has an axis out of range")
		}
		if d != x.axis {
			continue
		}
		step := int64(1)
		if hasSteps && i < len(steps) {
			step = steps[i]
		}
		switch {
		case step == 1 && starts[i] == -1 && bigEnd(ends[i]):
			kind = kSummary // the last step, axis kept
		case step == 1 && (starts[i] == 0 || starts[i] <= math.MinInt32) && bigEnd(ends[i]):
			// every step
		default:
			return refuse(n, "slices a window of the time axis [%d:%d:%d]; only the last step ([-1:]) or all steps stream", starts[i], ends[i], step)
		}
	}
	a.set(n, streamFact{kind: kind, axis: x.axis, rank: x.rank})
	return nil
}

func (a *streamAnalysis) gather(n *Node, x *streamFact) error {
	d, ok := normAxis(n.Attrs.Int("axis", 0), x.rank)
	if !ok {
		return refuse(n, "has an axis out of range")
	}
	ri := a.rankOf(n.Inputs[1])
	if a.fact(n.Inputs[1]).kind != kConst || ri < 0 {
		return refuse(n, "gathers with indices that are not constant")
	}
	or := x.rank - 1 + ri
	if d != x.axis {
		na := x.axis
		if d < x.axis {
			na = x.axis - 1 + ri
		}
		a.set(n, streamFact{kind: kTimed, axis: na, rank: or})
		return nil
	}
	idx, ok := a.constInts(n.Inputs[1])
	if !ok {
		return refuse(n, "gathers time steps with indices the analysis cannot see")
	}
	for _, i := range idx {
		if i != -1 {
			return refuse(n, "gathers time step %d; only the last step (-1) streams", i)
		}
	}
	a.set(n, streamFact{kind: kSummary, rank: or})
	return nil
}

// reshape accepts a Reshape that keeps the time axis where it is: the
// target has the time length at the same position, and before it only
// copies (0) or the same dims of the data.
func (a *streamAnalysis) reshape(n *Node, x *streamFact) error {
	f := a.fact(n.Inputs[1])
	var el []shapeElem
	if f.elems != nil {
		el = f.elems
	} else if v, ok := a.constInts(n.Inputs[1]); ok {
		for _, x := range v {
			el = append(el, shapeElem{val: x, known: true})
		}
	} else {
		return refuse(n, "reshapes to a shape the analysis cannot see")
	}
	allowZero := n.Attrs.Int("allowzero", 0) != 0
	j := -1
	for i, e := range el {
		if e.tainted {
			return refuse(n, "reshapes with a dim computed from the sequence length")
		}
		if e.time {
			if j >= 0 {
				return refuse(n, "reshapes with the sequence length twice")
			}
			j = i
		}
	}
	if j < 0 {
		// a copy (0) of the time dim keeps it too
		if x.axis < len(el) && el[x.axis].known && el[x.axis].val == 0 && !allowZero {
			j = x.axis
		} else {
			return refuse(n, "reshapes the time axis into other dims")
		}
	}
	if j != x.axis {
		return refuse(n, "moves the time axis from dim %d to dim %d", x.axis, j)
	}
	for i := 0; i < j; i++ {
		e := el[i]
		copyDim := e.known && e.val == 0 && !allowZero
		sameDim := !e.known && e.src == n.Inputs[0] && e.dim == i
		if !copyDim && !sameDim {
			return refuse(n, "reshapes the dims before the time axis")
		}
	}
	a.set(n, streamFact{kind: kTimed, axis: j, rank: len(el)})
	return nil
}

// window handles Conv and pooling: along the time axis the window must be
// one step (kernel 1, stride 1, no padding).
func (a *streamAnalysis) window(n *Node, x *streamFact) error {
	ax, r := x.axis, x.rank
	if n.OpType == "Conv" && len(n.Inputs) > 1 && a.fact(n.Inputs[1]).kind != kConst {
		return refuse(n, "has weights that are not constant")
	}
	switch {
	case ax == 0:
		a.set(n, streamFact{kind: kTimed, axis: 0, rank: r})
		return nil
	case ax == 1:
		return refuse(n, "has the time axis as its channel axis")
	}
	s := ax - 2
	kernel := n.Attrs.Ints("kernel_shape")
	if len(kernel) == 0 && n.OpType == "Conv" {
		if w := a.constTensor(n.Inputs[1]); w != nil && w.Rank() == r {
			for _, d := range w.Shape[2:] {
				kernel = append(kernel, int64(d))
			}
		}
	}
	at := func(name string, i int, def int64) int64 {
		v := n.Attrs.Ints(name)
		if i < len(v) {
			return v[i]
		}
		return def
	}
	if s >= len(kernel) {
		return refuse(n, "has a kernel shape the analysis cannot see")
	}
	if kernel[s] != 1 || at("strides", s, 1) != 1 {
		return refuse(n, "looks across %d time steps (kernel %d, stride %d)", kernel[s], kernel[s], at("strides", s, 1))
	}
	if at("pads", s, 0) != 0 || at("pads", s+len(kernel), 0) != 0 {
		return refuse(n, "pads the time axis")
	}
	if ap := n.Attrs.String("auto_pad", "NOTSET"); ap != "NOTSET" && ap != "VALID" && ap != "SAME_UPPER" && ap != "SAME_LOWER" {
		return refuse(n, "has auto_pad %q", ap)
	}
	a.set(n, streamFact{kind: kTimed, axis: ax, rank: r})
	return nil
}

// recurrent handles LSTM, GRU and RNN nodes with a per-step input.
func (a *streamAnalysis) recurrent(n *Node) error {
	x := a.fact(n.Inputs[0])
	if x.kind != kTimed {
		return refuse(n, "takes a per-step value as a weight or state")
	}
	seqAxis := 0
	if n.Attrs.Int("layout", 0) == 1 {
		seqAxis = 1
	}
	if x.axis != seqAxis {
		return &StreamError{Node: n.Label(), OpType: n.OpType, axis: true,
			Reason: fmt.Sprintf("recurs over dim %d of its input but the time axis is dim %d", seqAxis, x.axis)}
	}
	switch d := n.Attrs.String("direction", "forward"); d {
	case "forward":
	case "bidirectional":
		return refuse(n, "is bidirectional: its backward direction reads the future")
	default:
		return refuse(n, "runs in %s direction: its state at step t depends on later steps", d)
	}
	if len(n.Inputs) > 4 && n.Inputs[4] != "" {
		return refuse(n, "has sequence_lens: rows of different lengths end at different steps")
	}
	for i, in := range n.Inputs[1:] {
		if in == "" {
			continue
		}
		if f := a.fact(in); f.kind != kConst {
			what := [...]string{"W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"}[min(i, 6)]
			return refuse(n, "has a %s input %s that is a %s value", what, in, f.kind)
		}
	}
	a.carried = append(a.carried, n)
	a.set(n, streamFact{kind: kTimed, axis: seqAxis, rank: 4}, 0)
	a.set(n, streamFact{kind: kSummary, rank: 3}, 1, 2)
	return nil
}

// concat joins per-step values along another axis than time.
func (a *streamAnalysis) concat(n *Node, x *streamFact) error {
	if x.rank < 0 {
		return refuse(n, "reads %q whose rank the analysis cannot tell", n.Inputs[0])
	}
	d, ok := normAxis(n.Attrs.Int("axis", 0), x.rank)
	if !ok {
		return refuse(n, "has an axis out of range")
	}
	if d == x.axis {
		return refuse(n, "joins or splits along the time axis")
	}
	for _, in := range n.Inputs[1:] {
		f := a.fact(in)
		if f.kind != kTimed {
			return refuse(n, "joins the per-step value %q with the %s value %q, which has no time axis", n.Inputs[0], f.kind, in)
		}
		if f.axis != x.axis || f.rank != x.rank {
			return refuse(n, "joins per-step values whose time axes differ")
		}
	}
	a.set(n, streamFact{kind: kTimed, axis: x.axis, rank: x.rank})
	return nil
}
