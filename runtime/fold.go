package runtime

import (
	"fmt"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// maxFoldedElements keeps folding from turning a small recipe (say a
// ConstantOfShape of a constant shape) into a large initializer in the file.
const maxFoldedElements = 1 << 16

// FoldConstants returns a copy of the model in which every node whose
// inputs are all constants (initializers, or outputs of other such nodes)
// has been evaluated once and replaced by initializers holding its outputs.
// Control flow and nodes with random outputs are kept. It reports how many
// nodes were folded.
func FoldConstants(m *graph.Model) (*graph.Model, int, error) {
	g := m.Graph
	out := *m
	ng := &graph.Graph{Name: g.Name, Doc: g.Doc, Inputs: g.Inputs, Outputs: g.Outputs, ValueInfo: g.ValueInfo}
	for _, name := range g.InitOrder {
		ng.AddInitializer(name, g.Initializers[name])
	}
	feeds := map[string]bool{}
	for _, v := range g.FeedInputs() {
		feeds[v.Name] = true
	}
	outputs := map[string]bool{}
	for _, o := range g.Outputs {
		outputs[o.Name] = true
	}
	folded := 0
	for _, n := range g.Nodes {
		if !foldable(n) || !allConstant(n, ng, feeds) {
			ng.Nodes = append(ng.Nodes, n)
			continue
		}
		opset := int(m.Opsets[n.Domain])
		if n.Domain == "" {
			opset = m.Opset()
		}
		k, err := ops.New(&ops.Config{Name: n.Label(), OpType: n.OpType, Domain: n.Domain, Opset: opset,
			Attrs: n.Attrs, NumInputs: len(n.Inputs), NumOutputs: len(n.Outputs)})
		if err != nil {
			return nil, 0, &NodeError{n.Label(), n.OpType, err}
		}
		in := make([]*tensor.Tensor, len(n.Inputs))
		for i, name := range n.Inputs {
			if name != "" {
				in[i] = ng.Initializers[name]
			}
		}
		res, err := k.Run(in)
		if err != nil {
			return nil, 0, &NodeError{n.Label(), n.OpType, fmt.Errorf("folding: %w", err)}
		}
		big := false
		for _, t := range res {
			if t != nil && t.Len() > maxFoldedElements {
				big = true
			}
		}
		if big {
			ng.Nodes = append(ng.Nodes, n)
			continue
		}
		for i, o := range n.Outputs {
			if o != "" && i < len(res) && res[i] != nil {
				// a folded value that is also a graph output stays computable
				ng.AddInitializer(o, res[i])
			}
		}
		folded++
	}
	out.Graph = ng
	return &out, folded, nil
}

func foldable(n *graph.Node) bool {
	if len(n.Subgraphs()) > 0 {
		return false
	}
	switch n.OpType {
	case "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli", "Dropout":
		return false
	}
	return true
}

func allConstant(n *graph.Node, g *graph.Graph, feeds map[string]bool) bool {
	for _, in := range n.Inputs {
		if in == "" {
			continue
		}
		if feeds[in] || g.Initializers[in] == nil {
			return false
		}
	}
	return true
}
