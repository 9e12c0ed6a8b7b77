package graph_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

func TestSort(t *testing.T) {
	branch := &graph.Graph{Name: "then", Nodes: []*graph.Node{nd("Identity", "inner", []string{"late"}, []string{"t"})}, Outputs: []graph.ValueInfo{vi("t", tensor.Float32)}}
	cases := []struct {
		name  string
		nodes []*graph.Node
		want  []string // node names in order; nil for a cycle
		cycle []string // names the cycle error must list (and no others)
	}{
		{"already sorted", []*graph.Node{
			nd("Relu", "a", []string{"x"}, []string{"a"}),
			nd("Relu", "b", []string{"a"}, []string{"b"}),
			nd("Relu", "c", []string{"b"}, []string{"c"}),
		}, []string{"a", "b", "c"}, nil},
		{"reversed", []*graph.Node{
			nd("Relu", "c", []string{"b"}, []string{"c"}),
			nd("Relu", "b", []string{"a"}, []string{"b"}),
			nd("Relu", "a", []string{"x"}, []string{"a"}),
		}, []string{"a", "b", "c"}, nil},
		{"independent nodes keep file order", []*graph.Node{
			nd("Relu", "p", []string{"x"}, []string{"p"}),
			nd("Relu", "q", []string{"x"}, []string{"q"}),
			nd("Add", "sum", []string{"p", "r"}, []string{"s"}),
			nd("Relu", "r", []string{"x"}, []string{"r"}),
		}, []string{"p", "q", "r", "sum"}, nil},
		{"diamond", []*graph.Node{
			nd("Add", "join", []string{"l", "r"}, []string{"j"}),
			nd("Relu", "right", []string{"top"}, []string{"r"}),
			nd("Relu", "left", []string{"top"}, []string{"l"}),
			nd("Relu", "top", []string{"x"}, []string{"top"}),
		}, []string{"top", "right", "left", "join"}, nil},
		{"omitted optional inputs", []*graph.Node{
			nd("Clip", "clip", []string{"a", "", "hi"}, []string{"c"}),
			nd("Relu", "a", []string{"x"}, []string{"a"}),
			nd("Relu", "hi", []string{"x"}, []string{"hi"}),
		}, []string{"a", "hi", "clip"}, nil},
		{"subgraph reads a later value", []*graph.Node{
			nd("If", "if", []string{"c"}, []string{"y"}, "then_branch", branch, "else_branch", branch),
			nd("Relu", "producer", []string{"x"}, []string{"late"}),
		}, []string{"producer", "if"}, nil},
		{"many ready nodes", func() []*graph.Node {
			var ns []*graph.Node
			for i := 0; i < 3000; i++ {
				ns = append(ns, nd("Relu", fmt.Sprint(i), []string{"x"}, []string{fmt.Sprint("v", i)}))
			}
			return ns
		}(), nil, nil},
		{"two-node cycle", []*graph.Node{
			nd("Relu", "up", []string{"x"}, []string{"u"}),
			nd("Add", "a", []string{"u", "b"}, []string{"a"}),
			nd("Relu", "b", []string{"a"}, []string{"b"}),
			nd("Relu", "down", []string{"b"}, []string{"d"}),
		}, nil, []string{`"a" (Add)`, `"b" (Relu)`}},
		{"self loop", []*graph.Node{
			nd("Add", "me", []string{"x", "m"}, []string{"m"}),
		}, nil, []string{`"me" (Add)`}},
		{"cycle through a subgraph", []*graph.Node{
			nd("If", "if", []string{"c"}, []string{"y"}, "then_branch", branch, "else_branch", branch),
			nd("Relu", "producer", []string{"y"}, []string{"late"}),
		}, nil, []string{`"if" (If)`, `"producer" (Relu)`}},
		{"unnamed nodes in a cycle", []*graph.Node{
			nd("Relu", "", []string{"q"}, []string{"p"}),
			nd("Relu", "", []string{"p"}, []string{"q"}),
		}, nil, []string{`"→p" (Relu)`, `"→q" (Relu)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &graph.Graph{Nodes: append([]*graph.Node{}, c.nodes...)}
			err := g.Sort()
			if c.cycle != nil {
				var ce *graph.CycleError
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a CycleError", err)
				}
				if !reflect.DeepEqual(ce.Nodes, c.cycle) {
					t.Errorf("cycle nodes = %v, want %v", ce.Nodes, c.cycle)
				}
				if !strings.Contains(err.Error(), "cycle") {
					t.Errorf("message %q", err)
				}
				if len(g.Nodes) != len(c.nodes) {
					t.Errorf("failed Sort changed the graph")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := names(g.Nodes)
			if c.want == nil {
				c.want = names(c.nodes)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("order = %v, want %v", got, c.want)
			}
		})
	}
}

func TestFreeVariables(t *testing.T) {
	inner := &graph.Graph{
		Name:    "inner",
		Inputs:  []graph.ValueInfo{vi("i", tensor.Float32)},
		Nodes:   []*graph.Node{nd("Add", "", []string{"i", "deep"}, []string{"io"})},
		Outputs: []graph.ValueInfo{vi("io", tensor.Float32)},
	}
	cases := []struct {
		name string
		g    *graph.Graph
		want []string
	}{
		{"closed", &graph.Graph{
			Inputs:       []graph.ValueInfo{vi("x", tensor.Float32)},
			Initializers: map[string]*tensor.Tensor{"w": f32([]int{}, 1)},
			Nodes:        []*graph.Node{nd("Add", "", []string{"x", "w"}, []string{"y"})},
			Outputs:      []graph.ValueInfo{vi("y", tensor.Float32)},
		}, []string{}},
		{"reads outer values", &graph.Graph{
			Inputs: []graph.ValueInfo{vi("x", tensor.Float32)},
			Nodes: []*graph.Node{
				nd("Add", "", []string{"x", "outer_b"}, []string{"y"}),
				nd("Mul", "", []string{"y", "outer_a"}, []string{"z"}),
				nd("Clip", "", []string{"z", "", "outer_b"}, []string{"c"}),
			},
			Outputs: []graph.ValueInfo{vi("c", tensor.Float32)},
		}, []string{"outer_a", "outer_b"}},
		{"output passed through from outside", &graph.Graph{
			Outputs: []graph.ValueInfo{vi("from_outside", tensor.Float32)},
		}, []string{"from_outside"}},
		{"nested subgraph's free values", &graph.Graph{
			Inputs: []graph.ValueInfo{vi("x", tensor.Float32)},
			Nodes: []*graph.Node{
				nd("Relu", "", []string{"x"}, []string{"deep_local"}),
				nd("Scan", "", []string{"x"}, []string{"s"}, "body", inner, "num_scan_inputs", 1),
			},
			Outputs: []graph.ValueInfo{vi("s", tensor.Float32)},
		}, []string{"deep"}},
		{"nested subgraph's free value defined here", &graph.Graph{
			Inputs: []graph.ValueInfo{vi("x", tensor.Float32)},
			Nodes: []*graph.Node{
				nd("Relu", "", []string{"x"}, []string{"deep"}),
				nd("Scan", "", []string{"x"}, []string{"s"}, "body", inner, "num_scan_inputs", 1),
			},
			Outputs: []graph.ValueInfo{vi("s", tensor.Float32)},
		}, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.g.FreeVariables(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("FreeVariables = %#v, want %#v", got, c.want)
			}
		})
	}
}
