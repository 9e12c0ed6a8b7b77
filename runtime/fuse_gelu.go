package runtime

import (
	"math"

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
func fuseGelu(g *Graph, nodes []*Node, readers map[string]int, producer map[string]int) int {
	if !ops.Supported(denseDomain, "GeluErf", 1) {
		return 0
	}
	// op returns the node producing v if it is a default-domain opType with
	// two inputs and one output and v has no other reader.
	op := func(v, opType string) (int, *Node) {
		i, ok := producer[v]
		if !ok || readers[v] != 1 || nodes[i] == nil {
			return -1, nil
		}
		n := nodes[i]
		if n.OpType != opType || !isDefaultDomain(n.Domain) || len(n.Outputs) != 1 || len(n.Inputs) != 2 {
			return -1, nil
		}
		return i, n
	}
	// other returns the operand of a binary node that is not the scalar
	// constant want (and which side it was on), or false.
	other := func(n *Node, want float64, tol float64) (string, float32, bool) {
		for side := 0; side < 2; side++ {
			if c, ok := scalarConst(g, nodes, producer, n.Inputs[side]); ok && math.Abs(float64(c)-want) <= tol*want {
				return n.Inputs[1-side], c, true
			}
		}
		return "", 0, false
	}
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
		// a = erf + 1
		if readers[e.Outputs[0]] != 1 {
			continue
		}
		ai, a := readerOf(nodes, e.Outputs[0], "Add")
		if a == nil || readers[a.Outputs[0]] != 1 {
			continue
		}
		if _, _, ok := other(a, 1, 0); !ok {
			continue
		}
		// the two products
		mi, m := readerOf(nodes, a.Outputs[0], "Mul")
		if m == nil {
			continue
		}
		mOther := m.Inputs[0]
		if mOther == a.Outputs[0] {
			mOther = m.Inputs[1]
		}
		var last int
		var inner int
		switch {
		case mOther == x: // (x·a)·½
			if readers[m.Outputs[0]] != 1 {
				continue
			}
			li, l := readerOf(nodes, m.Outputs[0], "Mul")
			if l == nil {
				continue
			}
			if _, _, ok := other(l, 0.5, 0); !ok {
				continue
			}
			last, inner = li, mi
		default:
			if c, ok := scalarConst(g, nodes, producer, mOther); ok && c == 0.5 { // x·(a·½)
				if readers[m.Outputs[0]] != 1 {
					continue
				}
				li, l := readerOf(nodes, m.Outputs[0], "Mul")
				if l == nil || (l.Inputs[0] != x && l.Inputs[1] != x) {
					continue
				}
				last, inner, form = li, mi, form|2
				break
			}
			// (x·½)·a: mOther = Mul(x, ½), read only here
			hi, h := op(mOther, "Mul")
			if h == nil {
				continue
			}
			if hx, _, ok := other(h, 0.5, 0); !ok || hx != x {
				continue
			}
			last, inner, form = mi, hi, form|4
		}
		out := nodes[last].Outputs
		nodes[last] = &Node{
			Name: e.Label() + "+gelu", OpType: "GeluErf", Domain: denseDomain,
			Inputs: []string{x}, Outputs: out,
			Attrs: ops.Attrs{
				"scale": {Type: ops.AttrFloat, Float: scale},
				"form":  {Type: ops.AttrInt, Int: int64(form)},
			},
		}
		// x was read by the scaling and by one product; now by GeluErf
		readers[x]--
		for _, i := range []int{di, ei, ai, inner} {
			nodes[i] = nil
		}
		if last != mi {
			nodes[mi] = nil
		}
		removed += 4
	}
	return removed
}

// readerOf returns the first node (default domain, two inputs, one output)
// of type opType reading v.
func readerOf(nodes []*Node, v, opType string) (int, *Node) {
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
func scalarConst(g *Graph, nodes []*Node, producer map[string]int, v string) (float32, bool) {
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
