// Package graph holds mtlrun's in-memory model (Model, Graph, Node and the
// typed attribute values, subgraphs included) and the graph algorithms on
// it: topological order, free variables, pruning to requested outputs and
// the trunk/head split of a multi-task model. It knows nothing of files or
// of execution: the importer builds a Model, the exporter writes one,
// shapeinfer and train/autodiff analyse one and runtime executes one.
package graph

import (
	"container/heap"
	"fmt"
	"sort"
	"strings"

	"github.com/mtlrun/mtlrun/tensor"
)

// Dim is one dimension of a declared shape: a fixed size (Value >= 0), a
// symbolic name (Param, e.g. "batch" or "unk__12"), or unknown (Value < 0 and
// no Param).
type Dim struct {
	Value int64
	Param string
}

// Known reports whether the dim has a fixed size.
func (d Dim) Known() bool { return d.Param == "" && d.Value >= 0 }

func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Value >= 0:
		return fmt.Sprint(d.Value)
	}
	return "?"
}

// ValueInfo declares a named value's type. HasShape is false when the file
// gave no shape at all (rank unknown).
type ValueInfo struct {
	Name     string
	DType    tensor.DType
	Shape    []Dim
	HasShape bool
	Doc      string
	// Kind is "tensor" for tensors; other ONNX types (sequence, optional, map)
	// are recorded by name so that they can be reported and refused clearly.
	Kind string
	// EncodedType keeps a non-tensor type exactly as the file encoded it
	// (opaque bytes), so that export can write it back unchanged.
	EncodedType []byte
}

// ShapeString formats the declared shape, e.g. "[batch 50 1]".
func (v ValueInfo) ShapeString() string {
	if !v.HasShape {
		return "[?]"
	}
	parts := make([]string, len(v.Shape))
	for i, d := range v.Shape {
		parts[i] = d.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Node is one operation. Inputs and Outputs name values; an empty name marks
// an omitted optional input or an unused optional output. Graph-valued
// attributes hold *Graph.
type Node struct {
	Name    string
	OpType  string
	Domain  string
	Inputs  []string
	Outputs []string
	Attrs   Attrs
	Doc     string
}

// Label names the node for messages: its name if it has one, else its first output.
func (n *Node) Label() string {
	if n.Name != "" {
		return n.Name
	}
	for _, o := range n.Outputs {
		if o != "" {
			return "→" + o
		}
	}
	return "(unnamed)"
}

// Subgraphs returns the node's graph attributes by attribute name, in name order.
func (n *Node) Subgraphs() []NamedGraph {
	var out []NamedGraph
	for name, a := range n.Attrs {
		if a.Graph != nil {
			out = append(out, NamedGraph{name, a.Graph})
		}
		for _, g := range a.Graphs {
			if g != nil {
				out = append(out, NamedGraph{name, g})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attr < out[j].Attr })
	return out
}

// NamedGraph pairs a subgraph with the attribute that holds it.
type NamedGraph struct {
	Attr  string
	Graph *Graph
}

// Graph is a computation: inputs, initializers (constant tensors), nodes in
// topological order, and outputs. A subgraph (Loop body, If branch) may refer
// to values of the graphs that enclose it.
type Graph struct {
	Name         string
	Doc          string
	Inputs       []ValueInfo
	Outputs      []ValueInfo
	ValueInfo    []ValueInfo
	Initializers map[string]*tensor.Tensor
	// InitOrder keeps the file's order of initializers for faithful export.
	InitOrder []string
	Nodes     []*Node
}

// Initializer returns the named constant or nil.
func (g *Graph) Initializer(name string) *tensor.Tensor { return g.Initializers[name] }

// AddInitializer stores a constant, keeping InitOrder in step.
func (g *Graph) AddInitializer(name string, t *tensor.Tensor) {
	if g.Initializers == nil {
		g.Initializers = map[string]*tensor.Tensor{}
	}
	if _, ok := g.Initializers[name]; !ok {
		g.InitOrder = append(g.InitOrder, name)
	}
	g.Initializers[name] = t
}

// Input returns the declared graph input of that name.
func (g *Graph) Input(name string) (ValueInfo, bool) {
	for _, v := range g.Inputs {
		if v.Name == name {
			return v, true
		}
	}
	return ValueInfo{}, false
}

// Output returns the declared graph output of that name.
func (g *Graph) Output(name string) (ValueInfo, bool) {
	for _, v := range g.Outputs {
		if v.Name == name {
			return v, true
		}
	}
	return ValueInfo{}, false
}

// FeedInputs returns the graph inputs a caller must (or may) feed: declared
// inputs that are not also initializers. (Before IR 4 every initializer was
// also listed as an input; those keep their initializer value.)
func (g *Graph) FeedInputs() []ValueInfo {
	var out []ValueInfo
	for _, v := range g.Inputs {
		if _, ok := g.Initializers[v.Name]; !ok {
			out = append(out, v)
		}
	}
	return out
}

// Producers maps each value name to the node that produces it.
func (g *Graph) Producers() map[string]*Node {
	m := make(map[string]*Node, len(g.Nodes))
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				m[o] = n
			}
		}
	}
	return m
}

// Consumers maps each value name to the nodes that read it (subgraph reads
// of outer values count as reads by the node that owns the subgraph).
func (g *Graph) Consumers() map[string][]*Node {
	m := map[string][]*Node{}
	for _, n := range g.Nodes {
		for _, in := range n.Reads() {
			m[in] = append(m[in], n)
		}
	}
	return m
}

// Reads lists every value the node reads: its inputs and the outer-scope
// values its subgraphs refer to.
func (n *Node) Reads() []string {
	var out []string
	for _, in := range n.Inputs {
		if in != "" {
			out = append(out, in)
		}
	}
	for _, sg := range n.Subgraphs() {
		out = append(out, sg.Graph.FreeVariables()...)
	}
	return out
}

// FreeVariables lists the names a graph reads but does not define itself
// (values that must come from an enclosing scope), sorted.
func (g *Graph) FreeVariables() []string {
	defined := map[string]bool{}
	for _, v := range g.Inputs {
		defined[v.Name] = true
	}
	for name := range g.Initializers {
		defined[name] = true
	}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			defined[o] = true
		}
	}
	free := map[string]bool{}
	for _, n := range g.Nodes {
		for _, in := range n.Reads() {
			if !defined[in] {
				free[in] = true
			}
		}
	}
	for _, o := range g.Outputs {
		if !defined[o.Name] {
			free[o.Name] = true
		}
	}
	out := make([]string, 0, len(free))
	for k := range free {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// CycleError reports nodes that depend on each other.
type CycleError struct{ Nodes []string }

func (e *CycleError) Error() string {
	return fmt.Sprintf("graph has a cycle through nodes %s", strings.Join(e.Nodes, ", "))
}

// Sort puts the nodes in topological order, keeping the file's order where it
// is already valid (stable Kahn's algorithm). Values defined outside the
// graph (inputs, initializers, outer scope) are ready from the start. A real
// cycle gives a *CycleError naming the nodes on it.
func (g *Graph) Sort() error {
	producer := map[string]int{}
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				producer[o] = i
			}
		}
	}
	indeg := make([]int, len(g.Nodes))
	users := make([][]int, len(g.Nodes))
	for i, n := range g.Nodes {
		seen := map[int]bool{}
		for _, in := range n.Reads() {
			p, ok := producer[in]
			if !ok || seen[p] {
				continue
			}
			seen[p] = true
			indeg[i]++
			users[p] = append(users[p], i)
		}
	}
	// a min-heap over original positions keeps the order stable (and stays
	// O(n log n) on wide graphs with thousands of ready nodes)
	ready := &intHeap{}
	for i := range g.Nodes {
		if indeg[i] == 0 {
			heap.Push(ready, i)
		}
	}
	order := make([]*Node, 0, len(g.Nodes))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, g.Nodes[i])
		for _, u := range users[i] {
			indeg[u]--
			if indeg[u] == 0 {
				heap.Push(ready, u)
			}
		}
	}
	if len(order) != len(g.Nodes) {
		// the stuck nodes are on a cycle or downstream of one; peel off
		// those whose outputs feed no other stuck node until only the
		// nodes on cycles remain
		stuck := map[int]bool{}
		for i := range g.Nodes {
			if indeg[i] > 0 {
				stuck[i] = true
			}
		}
		for changed := true; changed; {
			changed = false
			for i := range stuck {
				feeds := false
				for _, u := range users[i] {
					if stuck[u] {
						feeds = true
						break
					}
				}
				if !feeds {
					delete(stuck, i)
					changed = true
				}
			}
		}
		var names []string
		for i, n := range g.Nodes {
			if stuck[i] {
				names = append(names, fmt.Sprintf("%q (%s)", n.Label(), n.OpType))
			}
		}
		return &CycleError{Nodes: names}
	}
	g.Nodes = order
	return nil
}

// Model is a Graph plus the file-level facts worth keeping for export.
type Model struct {
	Graph           *Graph
	IRVersion       int64
	Opsets          map[string]int64 // domain ("" = ai.onnx) → version
	Producer        string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	Doc             string
	Metadata        []KeyValue
}

// KeyValue is one metadata_props entry.
type KeyValue struct{ Key, Value string }

// Opset returns the default-domain opset.
func (m *Model) Opset() int {
	if v, ok := m.Opsets[""]; ok {
		return int(v)
	}
	return int(m.Opsets["ai.onnx"])
}

// MetadataValue returns the value for a metadata key.
func (m *Model) MetadataValue(key string) (string, bool) {
	for _, kv := range m.Metadata {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// OpHistogram counts op types in the graph and its subgraphs, as "Op" or
// "domain:Op", sorted by count then name.
func OpHistogram(g *Graph) []OpCount {
	counts := map[string]int{}
	var walk func(g *Graph)
	walk = func(g *Graph) {
		for _, n := range g.Nodes {
			k := n.OpType
			if n.Domain != "" {
				k = n.Domain + ":" + n.OpType
			}
			counts[k]++
			for _, sg := range n.Subgraphs() {
				walk(sg.Graph)
			}
		}
	}
	walk(g)
	out := make([]OpCount, 0, len(counts))
	for k, v := range counts {
		out = append(out, OpCount{k, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return strings.Compare(out[i].Op, out[j].Op) < 0
	})
	return out
}

// OpCount is one row of OpHistogram.
type OpCount struct {
	Op    string
	Count int
}

// intHeap is a min-heap of node positions for Sort.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
