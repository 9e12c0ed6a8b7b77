package runtime

import (
	"math"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// GELU fusion: the erf form of GELU as PyTorch and tf2onnx export it,
//
//	d = Div(x, √2) | Mul(x, 1/√2)
//	a = Add(Erf(d), 1)
//	y = Mul(Mul(x, a), ½) | Mul(x, Mul(a, ½)) | Mul(Mul(x, ½), a)
//
// (either operand order of each Add and Mul), becomes one
// ai.mtlrun:GeluErf node, which fuseDense then folds into a preceding
// Dense's activation. The scale, the association of the products and
// the Div/Mul choice are kept as attributes, so the fused kernel performs
// the same float32 operations and gives bit-identical results.

// geluScaleTol is how far the scale constant may be from √2 (or 1/√2) in
// relative terms: the float32 rounding of either, whichever way an
// exporter computed it.
const geluScaleTol = 1e-6

// fuseGelu rewrites GELU patterns in nodes in place (removed nodes become
// nil), keeping readers current, and returns how many nodes it removed.
func fuseGelu(g *graph.Graph, nodes []*graph.Node, readers map[string]int, producer map[string]int) int {
	if !ops.Supported(denseDomain, "GeluErf", 1) {
		return 0
	}
	m := &geluMatcher{g: g, nodes: nodes, readers: readers, producer: producer}
	op, other := m.op, m.other
	removed := 0
	for ei, e := range nodes {
		if e == nil || e.OpType != "Erf" || !isDefaultDomain(e.Domain) || len(e.Inputs) != 1 || len(e.Outputs) != 1 {
			continue
		}
		// the scaling of x
		var x string
		var scale float32
		form := 0
		di, d := op(e.Inputs[0], "Div")
		if d != nil {
			c, ok := scalarConst(g, nodes, producer, d.Inputs[1])
			if !ok || math.Abs(float64(c)-math.Sqrt2) > geluScaleTol*math.Sqrt2 {
				continue
			}
			x, scale = d.Inputs[0], c
		} else if di, d = op(e.Inputs[0], "Mul"); d != nil {
			var ok bool
			if x, scale, ok = other(d, 1/math.Sqrt2, geluScaleTol); !ok {
				continue
			}
			form |= 1
		} else {
			continue
		}
		// a = erf + 1, then the two products
		ai, last, inner, mi, order, ok := m.tail(e.Outputs[0], x)
		if !ok {
			continue
		}
		form |= order << 1
		repl := &graph.Node{
			Name: e.Label() + "+gelu", OpType: "GeluErf", Domain: denseDomain,
			Inputs: []string{x}, Outputs: nodes[last].Outputs,
			Attrs: graph.Attrs{
				"scale": {Type: graph.AttrFloat, Float: scale},
				"form":  {Type: graph.AttrInt, Int: int64(form)},
			},
		}
		// x was read by the scaling and by one product; now by GeluErf
		readers[x]--
		for _, i := range []int{di, ei, ai, inner, mi} {
			nodes[i] = nil
		}
		nodes[last] = repl
		removed += 4
	}
	return removed + m.fuseGeluTanh()
}

// readerOf returns the first node (default domain, two inputs, one output)
// of type opType reading v.
func readerOf(nodes []*graph.Node, v, opType string) (int, *graph.Node) {
	for i, n := range nodes {
		if n == nil || n.OpType != opType || !isDefaultDomain(n.Domain) || len(n.Inputs) != 2 || len(n.Outputs) != 1 {
			continue
		}
		if n.Inputs[0] == v || n.Inputs[1] == v {
			return i, n
		}
	}
	return -1, nil
}

// scalarConst returns the value of a float32 scalar constant (an
// initializer or a Constant node's value, of one element and rank ≤ 1).
func scalarConst(g *graph.Graph, nodes []*graph.Node, producer map[string]int, v string) (float32, bool) {
	t := g.Initializers[v]
	if t == nil {
		if i, ok := producer[v]; ok && nodes[i] != nil && nodes[i].OpType == "Constant" && isDefaultDomain(nodes[i].Domain) {
			n := nodes[i]
			if n.Attrs.Has("value_float") {
				return n.Attrs.Float("value_float", 0), true
			}
			t = n.Attrs.Tensor("value")
		}
	}
	if t == nil || t.DType != tensor.Float32 || t.Len() != 1 || t.Rank() > 1 {
		return 0, false
	}
	return t.Float32s()[0], true
}

// geluMatcher finds the parts of GELU patterns in a node list.
type geluMatcher struct {
	g        *graph.Graph
	nodes    []*graph.Node
	readers  map[string]int
	producer map[string]int
}

// op returns the node producing v if it is a default-domain opType with
// two inputs and one output and v has no other reader.
func (m *geluMatcher) op(v, opType string) (int, *graph.Node) {
	i, ok := m.producer[v]
	if !ok || m.readers[v] != 1 || m.nodes[i] == nil {
		return -1, nil
	}
	n := m.nodes[i]
	if n.OpType != opType || !isDefaultDomain(n.Domain) || len(n.Outputs) != 1 || len(n.Inputs) != 2 {
		return -1, nil
	}
	return i, n
}

// other returns the operand of a binary node that is not the scalar
// constant want (within tol relative), and the constant, or false.
func (m *geluMatcher) other(n *graph.Node, want float64, tol float64) (string, float32, bool) {
	for side := 0; side < 2; side++ {
		if c, ok := scalarConst(m.g, m.nodes, m.producer, n.Inputs[side]); ok && math.Abs(float64(c)-want) <= tol*want {
			return n.Inputs[1-side], c, true
		}
	}
	return "", 0, false
}

// tail matches a = Add(v, 1) and the products x·a·½ after it, v being
// erf(x/√2) or tanh(...) and read only by the Add. It returns the Add,
// the last product (where the fused node goes), the other two nodes to
// remove and the order (0: (x·a)·½, 1: x·(a·½), 2: (x·½)·a).
func (m *geluMatcher) tail(v, x string) (ai, last, inner, mi, order int, matched bool) {
	nodes, readers := m.nodes, m.readers
	if readers[v] != 1 {
		return
	}
	ai, a := readerOf(nodes, v, "Add")
	if a == nil || readers[a.Outputs[0]] != 1 {
		return
	}
	if _, _, found := m.other(a, 1, 0); !found {
		return
	}
	mi, mn := readerOf(nodes, a.Outputs[0], "Mul")
	if mn == nil {
		return
	}
	mOther := mn.Inputs[0]
	if mOther == a.Outputs[0] {
		mOther = mn.Inputs[1]
	}
	if mOther == x { // (x·a)·½
		if readers[mn.Outputs[0]] != 1 {
			return
		}
		li, l := readerOf(nodes, mn.Outputs[0], "Mul")
		if l == nil {
			return
		}
		if _, _, found := m.other(l, 0.5, 0); !found {
			return
		}
		return ai, li, mi, mi, 0, true
	}
	if c, isConst := scalarConst(m.g, nodes, m.producer, mOther); isConst && c == 0.5 { // x·(a·½)
		if readers[mn.Outputs[0]] != 1 {
			return
		}
		li, l := readerOf(nodes, mn.Outputs[0], "Mul")
		if l == nil || (l.Inputs[0] != x && l.Inputs[1] != x) {
			return
		}
		return ai, li, mi, mi, 1, true
	}
	// (x·½)·a: mOther = Mul(x, ½), read only here
	hi, h := m.op(mOther, "Mul")
	if h == nil {
		return
	}
	if hx, _, found := m.other(h, 0.5, 0); !found || hx != x {
		return
	}
	return ai, mi, hi, mi, 2, true
}

// GELU's tanh form as torch.onnx.export writes it (approximate="tanh"):
//
//	c = Mul(x, Mul(x, x)) | Pow(x, 3)
//	t = Tanh(Mul(√(2/π), Add(x, Mul(0.044715, c))))
//	y = products of x, Add(t, 1) and ½ as in the erf form
//
// with the constants equal to their float32 roundings (the kernel uses
// those), becomes one ai.mtlrun:GeluTanh node.
var (
	geluTanhBeta  = float32(math.Sqrt(2 / math.Pi))
	geluTanhKappa = float32(0.044715)
)

func (m *geluMatcher) fuseGeluTanh() int {
	if !ops.Supported(denseDomain, "GeluTanh", 1) {
		return 0
	}
	nodes, readers := m.nodes, m.readers
	exact := func(n *graph.Node, c float32) (string, bool) {
		v, got, ok := m.other(n, float64(c), 0)
		return v, ok && got == c
	}
	removed := 0
	for ti, t := range nodes {
		if t == nil || t.OpType != "Tanh" || !isDefaultDomain(t.Domain) || len(t.Inputs) != 1 || len(t.Outputs) != 1 {
			continue
		}
		bi, b := m.op(t.Inputs[0], "Mul")
		if b == nil {
			continue
		}
		sv, ok := exact(b, geluTanhBeta)
		if !ok {
			continue
		}
		si, s := m.op(sv, "Add")
		if s == nil {
			continue
		}
		// one operand of s is x, the other kappa·x³
		var x string
		ki := -1
		var k *graph.Node
		for side := 0; side < 2; side++ {
			if i, n := m.op(s.Inputs[side], "Mul"); n != nil {
				if _, ok := exact(n, geluTanhKappa); ok {
					x, ki, k = s.Inputs[1-side], i, n
					break
				}
			}
		}
		if k == nil || x == "" {
			continue
		}
		cv, _ := exact(k, geluTanhKappa)
		form, reads := 0, 0
		var cube []int
		if ci, c := m.op(cv, "Pow"); c != nil {
			if e, ok := scalarConst(m.g, nodes, m.producer, c.Inputs[1]); !ok || e != 3 || c.Inputs[0] != x {
				continue
			}
			form, reads, cube = 1, 1, []int{ci}
		} else if ci, c := m.op(cv, "Mul"); c != nil {
			xx := c.Inputs[1]
			if xx == x {
				xx = c.Inputs[0]
			}
			qi, q := m.op(xx, "Mul")
			if q == nil || q.Inputs[0] != x || q.Inputs[1] != x || (c.Inputs[0] != x && c.Inputs[1] != x) {
				continue
			}
			reads, cube = 3, []int{ci, qi}
		} else {
			continue
		}
		ai, last, inner, mi, order, ok := m.tail(t.Outputs[0], x)
		if !ok {
			continue
		}
		repl := &graph.Node{
			Name: t.Label() + "+gelu", OpType: "GeluTanh", Domain: denseDomain,
			Inputs: []string{x}, Outputs: nodes[last].Outputs,
			Attrs: graph.Attrs{"form": {Type: graph.AttrInt, Int: int64(form | order<<1)}},
		}
		// x was read by the cube, the Add and one product; now once
		readers[x] -= reads + 1
		for _, i := range append(cube, ki, si, bi, ti, ai, inner, mi) {
			nodes[i] = nil
		}
		nodes[last] = repl
		removed += len(cube) + 7 - 1
	}
	return removed
}
