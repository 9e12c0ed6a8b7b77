package graph

import (
	"sort"
)

// Split is the multi-task view of a graph: which trainable parameters (float
// initializers) are shared by several outputs (the trunk) and which serve
// exactly one output (that task's head).
type Split struct {
	Trunk []string            // parameters influencing more than one output
	Heads map[string][]string // output → parameters influencing only it
	// Influence maps each parameter to the outputs it influences, in graph order.
	Influence map[string][]string
}

// TaskSplit computes the trunk/head split. A float initializer that
// influences no output (dead weight) appears in neither list.
func TaskSplit(g *Graph) Split {
	s := Split{Heads: map[string][]string{}, Influence: map[string][]string{}}
	producers := g.Producers()
	for _, out := range g.Outputs {
		s.Heads[out.Name] = nil
		for _, p := range Ancestors(g, producers, out.Name) {
			if t := g.Initializers[p]; t != nil && t.DType.IsFloat() {
				s.Influence[p] = append(s.Influence[p], out.Name)
			}
		}
	}
	for p, outs := range s.Influence {
		if len(outs) > 1 {
			s.Trunk = append(s.Trunk, p)
		} else {
			s.Heads[outs[0]] = append(s.Heads[outs[0]], p)
		}
	}
	order := map[string]int{}
	for i, n := range g.InitOrder {
		order[n] = i
	}
	byFile := func(v []string) {
		sort.Slice(v, func(i, j int) bool { return order[v[i]] < order[v[j]] })
	}
	byFile(s.Trunk)
	for k := range s.Heads {
		byFile(s.Heads[k])
	}
	return s
}

// Ancestors lists every value (including inputs and initializers) that the
// named value depends on, itself included.
func Ancestors(g *Graph, producers map[string]*Node, name string) []string {
	seen := map[string]bool{}
	stack := []string{name}
	var out []string
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[v] {
			continue
		}
		seen[v] = true
		out = append(out, v)
		if n := producers[v]; n != nil {
			stack = append(stack, n.Reads()...)
		}
	}
	return out
}

// ParamCount sums the elements of the named initializers.
func ParamCount(g *Graph, names []string) int {
	n := 0
	for _, p := range names {
		if t := g.Initializers[p]; t != nil {
			n += t.Len()
		}
	}
	return n
}

// FloatParams lists the float initializers in file order.
func FloatParams(g *Graph) []string {
	var out []string
	for _, n := range g.InitOrder {
		if t := g.Initializers[n]; t != nil && t.DType.IsFloat() {
			out = append(out, n)
		}
	}
	return out
}

// NodeTasks maps each node to the graph outputs it contributes to, in
// output order. A node serving several outputs is trunk; one serving a
// single output belongs to that task's head.
func NodeTasks(g *Graph) map[*Node][]string {
	producers := g.Producers()
	res := map[*Node][]string{}
	for _, o := range g.Outputs {
		seen := map[*Node]bool{}
		for _, v := range Ancestors(g, producers, o.Name) {
			if n := producers[v]; n != nil && !seen[n] {
				seen[n] = true
				res[n] = append(res[n], o.Name)
			}
		}
	}
	return res
}
