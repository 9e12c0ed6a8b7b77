package runtime

import (
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Layer-normalisation fusion: the decomposed form exporters write for a
// layer norm over the last axis,
//
//	m = ReduceMean(x, axes=[-1]); d = Sub(x, m)
//	v = ReduceMean(Pow(d, 2), axes=[-1]); s = Sqrt(Add(v, eps))
//	y = Add(Mul(Div(d, s), gamma), beta)
//
// (eps, gamma and beta float32 initializers or constants, either operand
// order of Add and Mul, axes as attribute or, from opset 18, as a
// constant input), becomes one ai.mtlrun:LayerNormPattern node whose
// kernel repeats the same float32 steps: bit-identical results, one pass
// over the row instead of nine tensors.

// fuseLayerNorm rewrites layer-norm patterns in nodes in place (removed
// nodes become nil), keeping readers current, and returns how many nodes
// it removed.
func fuseLayerNorm(g *graph.Graph, nodes []*graph.Node, readers map[string]int, producer map[string]int) int {
	if !ops.Supported(denseDomain, "LayerNormPattern", 1) {
		return 0
	}
	// prod returns the default-domain opType node producing v when v has
	// exactly want readers.
	prod := func(v, opType string, want int) (int, *graph.Node) {
		i, ok := producer[v]
		if !ok || readers[v] != want || nodes[i] == nil {
			return -1, nil
		}
		n := nodes[i]
		if n.OpType != opType || !isDefaultDomain(n.Domain) || len(n.Outputs) != 1 {
			return -1, nil
		}
		return i, n
	}
	lastAxisMean := func(n *graph.Node) bool {
		if n.Attrs.Int("keepdims", 1) == 0 || n.Attrs.Int("noop_with_empty_axes", 0) != 0 {
			return false
		}
		axes := n.Attrs.Ints("axes")
		if len(n.Inputs) == 2 {
			t := g.Initializers[n.Inputs[1]]
			if t == nil || t.DType != tensor.Int64 || t.Len() != 1 || n.Attrs.Has("axes") {
				return false
			}
			axes = t.Int64s()
		} else if len(n.Inputs) != 1 {
			return false
		}
		return len(axes) == 1 && axes[0] == -1
	}
	// vector returns the non-constant operand of a binary node and its
	// rank-1 float32 initializer operand.
	vector := func(n *graph.Node) (string, string, bool) {
		if len(n.Inputs) != 2 {
			return "", "", false
		}
		for side := 0; side < 2; side++ {
			t := g.Initializers[n.Inputs[side]]
			if t != nil && t.DType == tensor.Float32 && t.Rank() == 1 {
				return n.Inputs[1-side], n.Inputs[side], true
			}
		}
		return "", "", false
	}
	removed := 0
	for bi, b := range nodes {
		if b == nil || b.OpType != "Add" || !isDefaultDomain(b.Domain) || len(b.Outputs) != 1 {
			continue
		}
		yv, beta, ok := vector(b)
		if !ok {
			continue
		}
		gi, gm := prod(yv, "Mul", 1)
		if gm == nil {
			continue
		}
		nv, gamma, ok := vector(gm)
		if !ok {
			continue
		}
		ni, dv := prod(nv, "Div", 1)
		if dv == nil || len(dv.Inputs) != 2 {
			continue
		}
		si, sq := prod(dv.Inputs[1], "Sqrt", 1)
		if sq == nil || len(sq.Inputs) != 1 {
			continue
		}
		ei, ad := prod(sq.Inputs[0], "Add", 1)
		if ad == nil || len(ad.Inputs) != 2 {
			continue
		}
		var vv string
		var eps float32
		found := false
		for side := 0; side < 2; side++ {
			if c, ok := scalarConst(g, nodes, producer, ad.Inputs[side]); ok {
				vv, eps, found = ad.Inputs[1-side], c, true
				break
			}
		}
		if !found {
			continue
		}
		vi, vm := prod(vv, "ReduceMean", 1)
		if vm == nil || !lastAxisMean(vm) {
			continue
		}
		pi, pw := prod(vm.Inputs[0], "Pow", 1)
		if pw == nil || len(pw.Inputs) != 2 {
			continue
		}
		if c, ok := scalarConst(g, nodes, producer, pw.Inputs[1]); !ok || c != 2 {
			continue
		}
		d := dv.Inputs[0]
		if pw.Inputs[0] != d {
			continue
		}
		di, sub := prod(d, "Sub", 2) // read by Pow and Div
		if sub == nil || len(sub.Inputs) != 2 {
			continue
		}
		x := sub.Inputs[0]
		mi, mm := prod(sub.Inputs[1], "ReduceMean", 1)
		if mm == nil || !lastAxisMean(mm) || mm.Inputs[0] != x || x == "" {
			continue
		}
		nodes[bi] = &graph.Node{
			Name: mm.Label() + "+layernorm", OpType: "LayerNormPattern", Domain: denseDomain,
			Inputs: []string{x, gamma, beta}, Outputs: b.Outputs,
			Attrs: graph.Attrs{"epsilon": {Type: graph.AttrFloat, Float: eps}},
		}
		readers[x]-- // read by ReduceMean and Sub, now by the fused node
		for _, i := range []int{gi, ni, si, ei, vi, pi, di, mi} {
			nodes[i] = nil
		}
		removed += 8
	}
	return removed
}
