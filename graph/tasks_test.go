package graph_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// twoTasks is x → trunk (w_t) → h, then h → head a (w_a) and h → head b
// (w_b); the int64 "shape" initializer is not a parameter and "dead" feeds
// nothing.
func twoTasks() *graph.Graph {
	g := &graph.Graph{
		Inputs: []graph.ValueInfo{vi("x", tensor.Float32, "batch", 2)},
		Nodes: []*graph.Node{
			nd("MatMul", "trunk", []string{"x", "w_t"}, []string{"h"}),
			nd("MatMul", "head_a", []string{"h", "w_a"}, []string{"a"}),
			nd("Reshape", "shape_b", []string{"h", "shape"}, []string{"hb"}),
			nd("MatMul", "head_b", []string{"hb", "w_b"}, []string{"b"}),
		},
		Outputs: []graph.ValueInfo{vi("a", tensor.Float32), vi("b", tensor.Float32)},
	}
	g.AddInitializer("w_t", f32([]int{2, 3}, 1, 2, 3, 4, 5, 6))
	g.AddInitializer("w_b", f32([]int{3, 1}, 1, 2, 3))
	g.AddInitializer("w_a", f32([]int{3, 1}, 1, 2, 3))
	g.AddInitializer("shape", tensor.From([]int{2}, []int64{-1, 3}))
	g.AddInitializer("dead", f32([]int{1}, 7))
	return g
}

func TestTaskSplit(t *testing.T) {
	g := twoTasks()
	s := graph.TaskSplit(g)
	if want := []string{"w_t"}; !reflect.DeepEqual(s.Trunk, want) {
		t.Errorf("trunk = %v, want %v", s.Trunk, want)
	}
	want := map[string][]string{"a": {"w_a"}, "b": {"w_b"}}
	if !reflect.DeepEqual(s.Heads, want) {
		t.Errorf("heads = %v, want %v", s.Heads, want)
	}
	if _, ok := s.Influence["dead"]; ok {
		t.Errorf("dead weight %q has an influence", "dead")
	}
	if got, want := graph.FloatParams(g), []string{"w_t", "w_b", "w_a", "dead"}; !reflect.DeepEqual(got, want) {
		t.Errorf("FloatParams = %v, want %v (file order, no int64)", got, want)
	}
	if got := graph.ParamCount(g, s.Trunk); got != 6 {
		t.Errorf("ParamCount(trunk) = %d, want 6", got)
	}
	tasks := graph.NodeTasks(g)
	for _, c := range []struct {
		node string
		want []string
	}{{"trunk", []string{"a", "b"}}, {"head_a", []string{"a"}}, {"shape_b", []string{"b"}}, {"head_b", []string{"b"}}} {
		var n *graph.Node
		for _, x := range g.Nodes {
			if x.Name == c.node {
				n = x
			}
		}
		if got := tasks[n]; !reflect.DeepEqual(got, c.want) {
			t.Errorf("NodeTasks[%s] = %v, want %v", c.node, got, c.want)
		}
	}
}

func TestPrune(t *testing.T) {
	cases := []struct {
		name    string
		outputs []string
		nodes   []string
		inits   []string
		err     string
	}{
		{"one head", []string{"a"}, []string{"trunk", "head_a"}, []string{"w_t", "w_a"}, ""},
		{"other head", []string{"b"}, []string{"trunk", "shape_b", "head_b"}, []string{"w_t", "w_b", "shape"}, ""},
		{"both", []string{"b", "a"}, []string{"trunk", "head_a", "shape_b", "head_b"}, []string{"w_t", "w_b", "w_a", "shape"}, ""},
		{"unknown output", []string{"zzz"}, nil, nil, `unknown output "zzz" (the model's outputs are a, b)`},
		{"no outputs", nil, nil, nil, "at least one output"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := twoTasks()
			p, err := graph.Prune(g, c.outputs)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(p.Nodes); !reflect.DeepEqual(got, c.nodes) {
				t.Errorf("nodes = %v, want %v", got, c.nodes)
			}
			if !reflect.DeepEqual(p.InitOrder, c.inits) {
				t.Errorf("initializers = %v, want %v", p.InitOrder, c.inits)
			}
			if len(p.Inputs) != 1 || p.Inputs[0].Name != "x" {
				t.Errorf("inputs = %v, want [x]", p.Inputs)
			}
			if len(g.Nodes) != 4 {
				t.Errorf("Prune changed the original graph: %d nodes", len(g.Nodes))
			}
		})
	}
}

func TestSubgraphsAreTyped(t *testing.T) {
	then := &graph.Graph{Name: "then"}
	els := &graph.Graph{Name: "else"}
	n := nd("If", "if", []string{"c"}, []string{"y"}, "then_branch", then, "else_branch", els)
	n.Attrs["bodies"] = graph.Attr{Type: graph.AttrGraphs, Graphs: []*graph.Graph{nil, then}}
	got := n.Subgraphs()
	want := []graph.NamedGraph{{Attr: "bodies", Graph: then}, {Attr: "else_branch", Graph: els}, {Attr: "then_branch", Graph: then}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Subgraphs = %+v, want %+v", got, want)
	}
	hist := graph.OpHistogram(&graph.Graph{Nodes: []*graph.Node{n, nd("Relu", "", nil, nil)}})
	if len(hist) != 2 {
		t.Errorf("OpHistogram = %v, want If and Relu", hist)
	}
}
