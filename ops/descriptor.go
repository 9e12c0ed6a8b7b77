package ops

import (
	"fmt"
	"github.com/mtlrun/mtlrun/graph"
	"sort"
	"sync"
)

// Desc is everything mtlrun knows about one op over a range of opsets: the
// kernel, the static shape/type rule, the gradient rule, the traits graph
// passes branch on, and notes for the exporter. It is the one registry of op
// names: package shapeinfer, package train/autodiff and the runtime's fusion
// pass all look ops up here, never in lists of their own.
//
// A family file (ops/math/unary.go, ops/shape/reshape.go, ...) defines its
// ops with Define next to their kernels. Simple ops say everything
// declaratively (Shape: ShapeSameAsInput, Grad: Derivative(...)); ops whose
// shape or gradient rule needs the machinery of shapeinfer or autodiff
// leave that field zero, and the rule is attached by that package
// (AttachShape, AttachGrad). The registry test (ops/all) checks that every
// op ends up with a kernel (or a reason it has none), a shape rule (or a
// reason) and a gradient rule or a waiver with a reason, and
// train/autodiff's tests check every gradient rule against finite
// differences.
type Desc struct {
	Domain string // "" (or "ai.onnx") for the default ONNX domain
	Type   string // the op type, e.g. "Relu"
	// Since is the first opset this descriptor covers; it covers every later
	// opset until a descriptor of the same op with a higher Since.
	Since int

	// Kernel builds the op's kernel. Nil only with NoKernel set.
	Kernel Factory
	// NoKernel says why an op has no kernel in the registry: ops whose
	// shapes inspect can describe but which no kernel runs yet, or control
	// flow, which the runtime executes itself.
	NoKernel string

	// Shape is the static dtype/shape rule (see ShapeRule). Zero means the
	// rule is attached by package shapeinfer.
	Shape ShapeRule
	// Grad is the backward rule or a waiver (see GradRule). Zero means the
	// rule is attached by package train/autodiff.
	Grad GradRule

	Traits Traits
	// Export holds notes for the exporter (e.g. a private op that must never
	// reach a file).
	Export string
}

// Traits are properties of an op that graph passes branch on.
type Traits uint32

const (
	// Elementwise: output element i depends only on element i of each
	// (broadcast) input.
	Elementwise Traits = 1 << iota
	// Activation: a unary element-wise op that the fused ai.mtlrun:Dense
	// kernel applies to its product; the runtime's fusion pass folds a
	// Gemm/MatMul → op chain into one Dense node.
	Activation
	// DataMovement: every output element is a copy of an input element or
	// a fill value (Reshape, Gather, Pad, ...).
	DataMovement
	// ShapeOnly: the op computes on shapes and indices (Shape, Size,
	// ConstantOfShape, Range, ...), not on float data.
	ShapeOnly
	// ControlFlow: the op's attributes hold subgraphs; the runtime runs it.
	ControlFlow
	// Private: an mtlrun-private op created by a session's rewrite; it never
	// appears in a model file.
	Private
)

// ShapeKind names a declarative shape rule.
type ShapeKind int

const (
	// ShapeAttached (the zero value): the rule is code in package
	// shapeinfer, attached with AttachShape.
	ShapeAttached ShapeKind = iota
	// ShapeSame: output 0 has input 0's dtype and shape.
	ShapeSame
	// ShapeSameBool: output 0 has input 0's shape and dtype bool.
	ShapeSameBool
	// ShapeBroadcast: output 0 has the multidirectional (NumPy) broadcast
	// of every present input's shape and the first input's dtype.
	ShapeBroadcast
	// ShapeBroadcastBool: as ShapeBroadcast over the first two inputs, with
	// dtype bool (comparisons, logic).
	ShapeBroadcastBool
	// ShapeWaived: no static rule; Reason says why.
	ShapeWaived
)

// ShapeRule is an op's static dtype/shape rule.
type ShapeRule struct {
	Kind   ShapeKind
	Reason string // for ShapeWaived
	// Impl is the rule attached by package shapeinfer (opaque here); set
	// in descriptors returned by Describe when Kind is ShapeAttached.
	Impl any
}

// The declarative shape rules.
var (
	ShapeSameAsInput     = ShapeRule{Kind: ShapeSame}
	ShapeSameAsInputBool = ShapeRule{Kind: ShapeSameBool}
	ShapeBroadcastInputs = ShapeRule{Kind: ShapeBroadcast}
	ShapeCompare         = ShapeRule{Kind: ShapeBroadcastBool}
)

// NoShapeRule waives the shape rule of an op, saying why.
func NoShapeRule(reason string) ShapeRule { return ShapeRule{Kind: ShapeWaived, Reason: reason} }

// GradKind names a declarative gradient rule or waiver.
type GradKind int

const (
	// GradAttached (the zero value): the rule is code in package
	// train/autodiff, attached with AttachGrad; with a Reason and nothing
	// attached, a waiver (NotDifferentiableYet).
	GradAttached GradKind = iota
	// GradUnary: a unary element-wise op, dx = dy · Derivative(x, y, attrs).
	GradUnary
	// GradMovement: a data-movement op; the gradient is scattered back
	// through the positions the op's own kernel moves (autodiff's movement
	// rule). DataInputs lists the inputs that carry data (nil: all).
	GradMovement
	// GradZero: the op's outputs do not depend smoothly on its float inputs
	// (integer, bool or shape outputs, piecewise-constant functions): the
	// gradient is zero wherever it exists. Reason says why.
	GradZero
	// GradNone: not differentiable (or no rule yet); Reason says why.
	GradNone
)

// GradRule is an op's backward rule or a waiver.
type GradRule struct {
	Kind GradKind
	// Derivative gives dy/dx of a unary element-wise op from the input x,
	// the output y and the node's attributes (GradUnary).
	Derivative func(x, y float64, a graph.Attrs) float64
	DataInputs []int  // GradMovement: inputs carrying data; nil means all
	Reason     string // GradZero, GradNone, NotDifferentiableYet
	// PositiveInputs asks finite-difference checks to draw inputs from
	// (0.5, 1.5) rather than N(0, 1) (Log, Sqrt, Reciprocal, ...).
	PositiveInputs bool
	// InputLo < InputHi asks finite-difference checks to draw inputs
	// uniformly from (InputLo, InputHi) (Asin, Acosh, ...: ops defined
	// or smooth only there).
	InputLo, InputHi float64
	// NoFDCheck says why a finite-difference check of the rule is not
	// meaningful; empty for every rule that has one.
	NoFDCheck string
	// Impl is the rule attached by package train/autodiff (opaque here);
	// set in descriptors returned by Describe when Kind is GradAttached.
	Impl any
}

// Derivative is the gradient rule of a unary element-wise op: dx = dy ·
// d(x, y, attrs), with x the input and y the output element.
func Derivative(d func(x, y float64, a graph.Attrs) float64) GradRule {
	return GradRule{Kind: GradUnary, Derivative: d}
}

// Positive returns g with finite-difference checks drawing inputs from
// (0.5, 1.5): for ops defined or smooth only there.
func (g GradRule) Positive() GradRule { g.PositiveInputs = true; return g }

// Within returns g with finite-difference checks drawing inputs from
// (lo, hi).
func (g GradRule) Within(lo, hi float64) GradRule { g.InputLo, g.InputHi = lo, hi; return g }

// Movement is the gradient rule of a data-movement op whose data inputs are
// the ones listed (none listed: every input).
func Movement(dataInputs ...int) GradRule {
	return GradRule{Kind: GradMovement, DataInputs: dataInputs}
}

// ZeroGradient waives the gradient of an op whose outputs do not depend
// smoothly on its inputs, saying why.
func ZeroGradient(reason string) GradRule { return GradRule{Kind: GradZero, Reason: reason} }

// NotDifferentiable waives the gradient of an op, saying why.
func NotDifferentiable(reason string) GradRule { return GradRule{Kind: GradNone, Reason: reason} }

// NotDifferentiableYet waives the gradient of an op that could have a rule
// but has none yet, saying why: a rule train/autodiff attaches later takes
// over without an edit here (the waiver is the zero GradRule plus a reason).
func NotDifferentiableYet(reason string) GradRule {
	return GradRule{Kind: GradAttached, Reason: reason}
}

// Differentiable reports whether g is a backward rule (not a waiver). An
// attached rule counts only when Impl is set.
func (g GradRule) Differentiable() bool {
	switch g.Kind {
	case GradUnary, GradMovement:
		return true
	case GradAttached:
		return g.Impl != nil
	}
	return false
}

type key struct{ domain, opType string }

var (
	mu       sync.RWMutex
	registry = map[key][]*Desc{} // by Since, ascending
	shapes   = map[key]any{}
	grads    = map[key]any{}
	// problems are registration mistakes found while registering (a
	// duplicate, a second attachment); Check reports them.
	problems []string
)

// Define registers a descriptor. Family packages call it from init. A
// second descriptor for the same (domain, op, since) is a mistake that
// Check reports; the later one wins.
func Define(d Desc) {
	mu.Lock()
	defer mu.Unlock()
	d.Domain = normDomain(d.Domain)
	k := key{d.Domain, d.Type}
	es := registry[k]
	for i, e := range es {
		if e.Since == d.Since {
			problems = append(problems, fmt.Sprintf("%s: defined twice for opset %d", qualified(d.Domain, d.Type), d.Since))
			es[i] = &d
			return
		}
	}
	es = append(es, &d)
	sort.Slice(es, func(i, j int) bool { return es[i].Since < es[j].Since })
	registry[k] = es
}

// AttachShape attaches package shapeinfer's rule for an op whose
// descriptors leave Shape zero. The op may be defined later (init order).
func AttachShape(domain, opType string, rule any) {
	attach(shapes, "shape", domain, opType, rule)
}

// AttachGrad attaches package train/autodiff's backward rule for an op whose
// descriptors leave Grad zero. The op may be defined later (init order).
func AttachGrad(domain, opType string, rule any) {
	attach(grads, "gradient", domain, opType, rule)
}

func attach(m map[key]any, what, domain, opType string, rule any) {
	mu.Lock()
	defer mu.Unlock()
	k := key{normDomain(domain), opType}
	if _, dup := m[k]; dup {
		problems = append(problems, fmt.Sprintf("%s: %s rule attached twice", qualified(domain, opType), what))
	}
	m[k] = rule
}

// find returns the descriptor covering opset (opset ≤ 0: the latest).
func find(domain, opType string, opset int) (*Desc, []*Desc) {
	es := registry[key{normDomain(domain), opType}]
	var d *Desc
	for _, e := range es {
		if e.Since <= opset || opset <= 0 {
			d = e
		}
	}
	return d, es
}

// resolved returns a copy of d with attached rules filled in.
func resolved(d *Desc) *Desc {
	c := *d
	k := key{d.Domain, d.Type}
	if c.Shape.Kind == ShapeAttached {
		c.Shape.Impl = shapes[k]
	}
	if c.Grad.Kind == GradAttached {
		c.Grad.Impl = grads[k]
	}
	return &c
}

// Describe returns the descriptor of opType at the given opset (opset ≤ 0:
// the latest), with attached shape and gradient rules filled in, or nil
// when the op is not defined at that opset. The result is a copy.
func Describe(domain, opType string, opset int) *Desc {
	mu.RLock()
	defer mu.RUnlock()
	d, _ := find(domain, opType, opset)
	if d == nil {
		return nil
	}
	return resolved(d)
}

// Descriptors returns every descriptor, resolved, sorted by domain, op and
// Since.
func Descriptors() []*Desc {
	mu.RLock()
	defer mu.RUnlock()
	var out []*Desc
	for _, es := range registry {
		for _, e := range es {
			out = append(out, resolved(e))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Domain != b.Domain {
			return a.Domain < b.Domain
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.Since < b.Since
	})
	return out
}

// HasTraits reports whether the latest descriptor of an op has every one of
// the traits t.
func HasTraits(domain, opType string, t Traits) bool {
	mu.RLock()
	defer mu.RUnlock()
	d, _ := find(domain, opType, 0)
	return d != nil && d.Traits&t == t
}

// Check reports what the registry lacks or contradicts: an op without a
// kernel and without a reason, a kernel and a reason for none, no shape
// rule and no waiver, no gradient rule and no waiver, a declarative form and
// an attached rule for the same part, rules attached to ops never defined,
// and duplicate definitions. Call it once every package that defines or
// attaches has been initialised (the registry test imports them all).
func Check() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := append([]string{}, problems...)
	for k, es := range registry {
		q := qualified(k.domain, k.opType)
		for _, d := range es {
			at := fmt.Sprintf("%s (opset %d+)", q, d.Since)
			switch {
			case d.Kernel == nil && d.NoKernel == "":
				out = append(out, at+": no kernel and no NoKernel reason")
			case d.Kernel != nil && d.NoKernel != "":
				out = append(out, at+": has a kernel and a NoKernel reason "+fmt.Sprintf("%q", d.NoKernel))
			}
			_, hasShape := shapes[k]
			switch {
			case d.Shape.Kind == ShapeAttached && !hasShape:
				out = append(out, at+": no shape rule (declare one, attach one in shapeinfer, or NoShapeRule(reason))")
			case d.Shape.Kind == ShapeWaived && d.Shape.Reason == "":
				out = append(out, at+": shape rule waived without a reason")
			}
			_, hasGrad := grads[k]
			switch {
			case d.Grad.Kind == GradAttached && !hasGrad && d.Grad.Reason == "":
				out = append(out, at+": no gradient rule (declare one, attach one in train/autodiff, or waive it with ZeroGradient/NotDifferentiable(reason))")
			case (d.Grad.Kind == GradZero || d.Grad.Kind == GradNone) && d.Grad.Reason == "":
				out = append(out, at+": gradient waived without a reason")
			case d.Grad.Kind == GradUnary && d.Grad.Derivative == nil:
				out = append(out, at+": Derivative rule with a nil function")
			}
		}
		shapeDeclared, gradDeclared := true, true
		for _, d := range es {
			shapeDeclared = shapeDeclared && d.Shape.Kind != ShapeAttached
			gradDeclared = gradDeclared && d.Grad.Kind != GradAttached
		}
		if _, ok := shapes[k]; ok && shapeDeclared {
			out = append(out, q+": shape rule attached in shapeinfer but every descriptor declares its own (remove one)")
		}
		if _, ok := grads[k]; ok && gradDeclared {
			out = append(out, q+": gradient rule attached in autodiff but every descriptor declares a rule or waiver (remove one)")
		}
	}
	for _, m := range []struct {
		what string
		m    map[key]any
	}{{"shape", shapes}, {"gradient", grads}} {
		for k := range m.m {
			if len(registry[k]) == 0 {
				out = append(out, fmt.Sprintf("%s: %s rule attached to an op that is not defined", qualified(k.domain, k.opType), m.what))
			}
		}
	}
	sort.Strings(out)
	return out
}
