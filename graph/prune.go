package graph

import (
	"fmt"
	"strings"
)

// Prune returns a copy of the graph that computes only the named outputs:
// nodes, initializers, inputs and value_info nothing of theirs needs are
// dropped. Tensors and subgraphs are shared with g, not copied.
func Prune(g *Graph, outputs []string) (*Graph, error) {
	if len(outputs) == 0 {
		return nil, fmt.Errorf("graph: prune needs at least one output")
	}
	producers := g.Producers()
	keep := map[string]bool{}
	out := &Graph{Name: g.Name, Doc: g.Doc}
	for _, name := range outputs {
		v, ok := g.Output(name)
		if !ok {
			var names []string
			for _, o := range g.Outputs {
				names = append(names, o.Name)
			}
			return nil, fmt.Errorf("graph: unknown output %q (the model's outputs are %s)", name, strings.Join(names, ", "))
		}
		out.Outputs = append(out.Outputs, v)
		for _, a := range Ancestors(g, producers, name) {
			keep[a] = true
		}
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if keep[o] {
				out.Nodes = append(out.Nodes, n)
				break
			}
		}
	}
	for _, v := range g.Inputs {
		if keep[v.Name] {
			out.Inputs = append(out.Inputs, v)
		}
	}
	for _, name := range g.InitOrder {
		if keep[name] {
			out.AddInitializer(name, g.Initializers[name])
		}
	}
	used := map[string]bool{}
	for _, n := range out.Nodes {
		for _, o := range n.Outputs {
			used[o] = true
		}
	}
	for _, v := range g.ValueInfo {
		if used[v.Name] {
			out.ValueInfo = append(out.ValueInfo, v)
		}
	}
	return out, nil
}
