package runtime

import (
	"strings"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Dense fusion: a Session runs
//
//	Gemm → activation (GELU patterns first collapsed, see fuse_gelu.go)
//	MatMul(x, W) → Add(·, b) [→ activation]
//	MatMul(x, W) → activation
//
// as one ai.mtlrun:Dense node, which applies bias and activation to each
// block of the product while it is still in cache, and skips the
// intermediate tensors. Then sibling products of the same input (the task
// heads of a multi-task model, each a few columns wide) become one
// ai.mtlrun:DenseGroup node: the trunk output is packed once and
// multiplied by all heads' weights side by side. Only float32 weights held as initializers are
// fused (what the kernel is specialised for), and only intermediates that
// nothing else reads and that are not graph outputs disappear. The rewrite
// is private to the session: the model, its export and its value names stay
// as they were (a request for a fused-away value falls back to an unfused
// copy of the graph).

// denseDomain is mtlrun's private op domain; it never appears in a file.
const denseDomain = "ai.mtlrun"

// fusableActivation reports whether the Dense kernel applies op's
// activation itself (the ops.Activation trait of its descriptor).
func fusableActivation(n *graph.Node) bool {
	return isDefaultDomain(n.Domain) && ops.HasTraits("", n.OpType, ops.Activation)
}

// fuseDense returns g itself when nothing fuses, else a shallow copy with
// the fused node list (initializers and untouched nodes are shared).
func fuseDense(g *graph.Graph) (*graph.Graph, int) {
	readers := map[string]int{}
	for _, n := range g.Nodes {
		for _, in := range n.Reads() {
			readers[in]++
		}
	}
	for _, o := range g.Outputs {
		readers[o.Name]++ // a graph output must stay a value
	}
	producer := map[string]int{}
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				producer[o] = i
			}
		}
	}
	nodes := append([]*graph.Node(nil), g.Nodes...)
	fused := fuseGelu(g, nodes, readers, producer) + fuseLayerNorm(g, nodes, readers, producer)
	// the product node feeding value v, when v is read by one node only
	soleProduct := func(v string, types ...string) (int, bool) {
		if readers[v] != 1 {
			return 0, false
		}
		i, ok := producer[v]
		if !ok || nodes[i] == nil {
			return 0, false
		}
		n := nodes[i]
		for _, t := range types {
			inDomain := isDefaultDomain(n.Domain)
			if t == "Dense" {
				inDomain = n.Domain == denseDomain
			}
			if n.OpType == t && inDomain {
				return i, true
			}
		}
		return 0, false
	}
	// MatMul + Add
	for i, n := range nodes {
		if n == nil || n.OpType != "Add" || !isDefaultDomain(n.Domain) || len(n.Inputs) != 2 || len(n.Outputs) != 1 {
			continue
		}
		for side := 0; side < 2; side++ {
			mmVal, biasVal := n.Inputs[side], n.Inputs[1-side]
			j, ok := soleProduct(mmVal, "MatMul")
			if !ok || !denseWeight(g, nodes[j]) {
				continue
			}
			w := g.Initializers[nodes[j].Inputs[1]]
			bias := g.Initializers[biasVal]
			if bias == nil || bias.DType != tensor.Float32 || !bias.IsRowVector(w.Shape[1]) {
				continue
			}
			nodes[i] = &graph.Node{
				Name: nodes[j].Label() + "+" + n.Label(), OpType: "Dense", Domain: denseDomain,
				Inputs:  []string{nodes[j].Inputs[0], nodes[j].Inputs[1], biasVal},
				Outputs: n.Outputs, Attrs: graph.Attrs{},
			}
			nodes[j] = nil
			fused++
			break
		}
	}
	// product → activation
	for i, n := range nodes {
		if n == nil || len(n.Inputs) != 1 || len(n.Outputs) != 1 {
			continue
		}
		gelu := n.Domain == denseDomain && (n.OpType == "GeluErf" || n.OpType == "GeluTanh")
		if !gelu && !fusableActivation(n) {
			continue
		}
		j, ok := soleProduct(n.Inputs[0], "Gemm", "MatMul", "Dense")
		if !ok {
			continue
		}
		p := nodes[j]
		var d *graph.Node
		switch {
		case p.Domain == denseDomain:
			if p.Attrs.Has("activation") {
				continue
			}
			d = &graph.Node{Name: p.Name, OpType: "Dense", Domain: denseDomain, Inputs: p.Inputs, Attrs: graph.Attrs{}}
		case !denseWeight(g, p):
			continue
		case p.OpType == "Gemm":
			d = &graph.Node{Name: p.Label(), OpType: "Dense", Domain: denseDomain, Inputs: p.Inputs, Attrs: graph.Attrs{}}
			for k, v := range p.Attrs {
				d.Attrs[k] = v
			}
		default: // MatMul
			d = &graph.Node{Name: p.Label(), OpType: "Dense", Domain: denseDomain, Inputs: p.Inputs[:2], Attrs: graph.Attrs{}}
		}
		d.Name += "+" + n.Label()
		d.Outputs = n.Outputs
		d.Attrs["activation"] = graph.Attr{Type: graph.AttrString, String: n.OpType}
		if gelu && n.OpType == "GeluTanh" {
			d.Attrs["gelu_form"] = n.Attrs["form"]
		}
		if n.OpType == "LeakyRelu" {
			d.Attrs["activation_alpha"] = graph.Attr{Type: graph.AttrFloat, Float: n.Attrs.Float("alpha", 0.01)}
		}
		if gelu && n.OpType == "GeluErf" {
			d.Attrs["activation_alpha"] = n.Attrs["scale"]
			d.Attrs["gelu_form"] = n.Attrs["form"]
		}
		nodes[i], nodes[j] = d, nil
		fused++
	}
	if ops.Supported(denseDomain, "DenseGroup", 1) {
		fused += groupHeads(g, nodes)
	}
	if fused == 0 {
		return g, 0
	}
	// Constant nodes that fed only fused-away nodes (PyTorch writes the
	// GELU scalars as Constant nodes) go too.
	used := map[string]bool{}
	for _, n := range nodes {
		if n != nil {
			for _, in := range n.Reads() {
				used[in] = true
			}
		}
	}
	for _, o := range g.Outputs {
		used[o.Name] = true
	}
	out := *g
	out.Nodes = make([]*graph.Node, 0, len(nodes))
	for _, n := range nodes {
		if n == nil || n.OpType == "Constant" && isDefaultDomain(n.Domain) && len(n.Outputs) == 1 && !used[n.Outputs[0]] {
			continue
		}
		out.Nodes = append(out.Nodes, n)
	}
	return &out, fused
}

// groupHeads merges Gemm and Dense nodes that multiply the same input by
// float32 weight initializers into DenseGroup nodes, in place in nodes
// (merged nodes become nil), and returns how many nodes it removed.
func groupHeads(g *graph.Graph, nodes []*graph.Node) int {
	type groupKey struct {
		input  string
		transB bool
	}
	groups := map[groupKey][]int{}
	var order []groupKey
	for i, n := range nodes {
		if n == nil || !groupable(g, n) {
			continue
		}
		k := groupKey{n.Inputs[0], n.Attrs.Int("transB", 0) != 0}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	removed := 0
	for _, k := range order {
		members := groups[k]
		if len(members) < 2 {
			continue
		}
		grp := &graph.Node{OpType: "DenseGroup", Domain: denseDomain, Inputs: []string{k.input}, Attrs: graph.Attrs{}}
		var labels, acts []string
		var alphas []float32
		for _, i := range members {
			n := nodes[i]
			c := ""
			if len(n.Inputs) > 2 {
				c = n.Inputs[2]
			}
			grp.Inputs = append(grp.Inputs, n.Inputs[1], c)
			grp.Outputs = append(grp.Outputs, n.Outputs[0])
			labels = append(labels, n.Label())
			acts = append(acts, n.Attrs.String("activation", ""))
			alphas = append(alphas, n.Attrs.Float("activation_alpha", 0.01))
		}
		grp.Name = strings.Join(labels, "+")
		transB := int64(0)
		if k.transB {
			transB = 1
		}
		grp.Attrs["transB"] = graph.Attr{Type: graph.AttrInt, Int: transB}
		grp.Attrs["activations"] = graph.Attr{Type: graph.AttrStrings, Strings: acts}
		grp.Attrs["activation_alphas"] = graph.Attr{Type: graph.AttrFloats, Floats: alphas}
		// at the first member's place: its inputs are ready there, and every
		// reader of any member's output comes after that member
		nodes[members[0]] = grp
		for _, i := range members[1:] {
			nodes[i] = nil
		}
		removed += len(members) - 1
	}
	return removed
}

// groupable reports whether n is a plain product DenseGroup can take over:
// a Gemm or Dense without transA, alpha or beta, by a 2-D float32 weight
// initializer, with no bias or a float32 row-vector bias initializer.
func groupable(g *graph.Graph, n *graph.Node) bool {
	switch {
	case n.Domain == denseDomain && n.OpType == "Dense":
	case isDefaultDomain(n.Domain) && n.OpType == "Gemm":
	default:
		return false
	}
	if !denseWeight(g, n) || len(n.Inputs) > 3 || strings.HasPrefix(n.Attrs.String("activation", ""), "Gelu") {
		return false // DenseGroup has no GELU epilogue
	}
	a := n.Attrs
	if a.Int("transA", 0) != 0 || a.Float("alpha", 1) != 1 || a.Float("beta", 1) != 1 || a.Has("broadcast") {
		return false
	}
	w := g.Initializers[n.Inputs[1]]
	cols := w.Shape[1]
	if a.Int("transB", 0) != 0 {
		cols = w.Shape[0]
	}
	if len(n.Inputs) == 3 && n.Inputs[2] != "" {
		c := g.Initializers[n.Inputs[2]]
		if c == nil || c.DType != tensor.Float32 || !c.IsRowVector(cols) {
			return false
		}
	}
	return true
}

func isDefaultDomain(d string) bool { return d == "" || d == "ai.onnx" }

// denseWeight reports whether a Gemm or MatMul node multiplies by a 2-D
// float32 initializer (its second input), which Dense needs. A MatMul must
// not transpose anything, and a Gemm may.
func denseWeight(g *graph.Graph, n *graph.Node) bool {
	if len(n.Inputs) < 2 || len(n.Outputs) != 1 || n.Inputs[0] == "" {
		return false
	}
	if n.OpType == "MatMul" && len(n.Inputs) != 2 {
		return false
	}
	w := g.Initializers[n.Inputs[1]]
	return w != nil && w.DType == tensor.Float32 && w.Rank() == 2
}
