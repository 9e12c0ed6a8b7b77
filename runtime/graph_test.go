package runtime_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

func TestSort(t *testing.T) {
	branch := &runtime.Graph{Name: "then", Nodes: []*runtime.Node{nd("Identity", "inner", []string{"late"}, []string{"t"})}, Outputs: []runtime.ValueInfo{vi("t", tensor.Float32)}}
	cases := []struct {
		name  string
		nodes []*runtime.Node
		want  []string // node names in order; nil for a cycle
		cycle []string // names the cycle error must list (and no others)
	}{
		{"already sorted", []*runtime.Node{
			nd("Relu", "a", []string{"x"}, []string{"a"}),
			nd("Relu", "b", []string{"a"}, []string{"b"}),
			nd("Relu", "c", []string{"b"}, []string{"c"}),
		}, []string{"a", "b", "c"}, nil},
		{"reversed", []*runtime.Node{
			nd("Relu", "c", []string{"b"}, []string{"c"}),
			nd("Relu", "b", []string{"a"}, []string{"b"}),
			nd("Relu", "a", []string{"x"}, []string{"a"}),
		}, []string{"a", "b", "c"}, nil},
		{"independent nodes keep file order", []*runtime.Node{
			nd("Relu", "p", []string{"x"}, []string{"p"}),
			nd("Relu", "q", []string{"x"}, []string{"q"}),
			nd("Add", "sum", []string{"p", "r"}, []string{"s"}),
			nd("Relu", "r", []string{"x"}, []string{"r"}),
		}, []string{"p", "q", "r", "sum"}, nil},
		{"diamond", []*runtime.Node{
			nd("Add", "join", []string{"l", "r"}, []string{"j"}),
			nd("Relu", "right", []string{"top"}, []string{"r"}),
			nd("Relu", "left", []string{"top"}, []string{"l"}),
			nd("Relu", "top", []string{"x"}, []string{"top"}),
		}, []string{"top", "right", "left", "join"}, nil},
		{"omitted optional inputs", []*runtime.Node{
			nd("Clip", "clip", []string{"a", "", "hi"}, []string{"c"}),
			nd("Relu", "a", []string{"x"}, []string{"a"}),
			nd("Relu", "hi", []string{"x"}, []string{"hi"}),
		}, []string{"a", "hi", "clip"}, nil},
		{"subgraph reads a later value", []*runtime.Node{
			nd("If", "if", []string{"c"}, []string{"y"}, "then_branch", branch, "else_branch", branch),
			nd("Relu", "producer", []string{"x"}, []string{"late"}),
		}, []string{"producer", "if"}, nil},
		{"many ready nodes", func() []*runtime.Node {
			var ns []*runtime.Node
			for i := 0; i < 3000; i++ {
				ns = append(ns, nd("Relu", fmt.Sprint(i), []string{"x"}, []string{fmt.Sprint("v", i)}))
			}
			return ns
		}(), nil, nil},
		{"two-node cycle", []*runtime.Node{
			nd("Relu", "up", []string{"x"}, []string{"u"}),
			nd("Add", "a", []string{"u", "b"}, []string{"a"}),
			nd("Relu", "b", []string{"a"}, []string{"b"}),
			nd("Relu", "down", []string{"b"}, []string{"d"}),
		}, nil, []string{`"a" (Add)`, `"b" (Relu)`}},
		{"self loop", []*runtime.Node{
			nd("Add", "me", []string{"x", "m"}, []string{"m"}),
		}, nil, []string{`"me" (Add)`}},
		{"cycle through a subgraph", []*runtime.Node{
			nd("If", "if", []string{"c"}, []string{"y"}, "then_branch", branch, "else_branch", branch),
			nd("Relu", "producer", []string{"y"}, []string{"late"}),
		}, nil, []string{`"if" (If)`, `"producer" (Relu)`}},
		{"unnamed nodes in a cycle", []*runtime.Node{
			nd("Relu", "", []string{"q"}, []string{"p"}),
			nd("Relu", "", []string{"p"}, []string{"q"}),
		}, nil, []string{`"→p" (Relu)`, `"→q" (Relu)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &runtime.Graph{Nodes: append([]*runtime.Node{}, c.nodes...)}
			err := g.Sort()
			if c.cycle != nil {
				var ce *runtime.CycleError
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
	inner := &runtime.Graph{
		Name:    "inner",
		Inputs:  []runtime.ValueInfo{vi("i", tensor.Float32)},
		Nodes:   []*runtime.Node{nd("Add", "", []string{"i", "deep"}, []string{"io"})},
		Outputs: []runtime.ValueInfo{vi("io", tensor.Float32)},
	}
	cases := []struct {
		name string
		g    *runtime.Graph
		want []string
	}{
		{"closed", &runtime.Graph{
			Inputs:       []runtime.ValueInfo{vi("x", tensor.Float32)},
			Initializers: map[string]*tensor.Tensor{"w": f32([]int{}, 1)},
			Nodes:        []*runtime.Node{nd("Add", "", []string{"x", "w"}, []string{"y"})},
			Outputs:      []runtime.ValueInfo{vi("y", tensor.Float32)},
		}, []string{}},
		{"reads outer values", &runtime.Graph{
			Inputs: []runtime.ValueInfo{vi("x", tensor.Float32)},
			Nodes: []*runtime.Node{
				nd("Add", "", []string{"x", "outer_b"}, []string{"y"}),
				nd("Mul", "", []string{"y", "outer_a"}, []string{"z"}),
				nd("Clip", "", []string{"z", "", "outer_b"}, []string{"c"}),
			},
			Outputs: []runtime.ValueInfo{vi("c", tensor.Float32)},
		}, []string{"outer_a", "outer_b"}},
		{"output passed through from outside", &runtime.Graph{
			Outputs: []runtime.ValueInfo{vi("from_outside", tensor.Float32)},
		}, []string{"from_outside"}},
		{"nested subgraph's free values", &runtime.Graph{
			Inputs: []runtime.ValueInfo{vi("x", tensor.Float32)},
			Nodes: []*runtime.Node{
				nd("Relu", "", []string{"x"}, []string{"deep_local"}),
				nd("Scan", "", []string{"x"}, []string{"s"}, "body", inner, "num_scan_inputs", 1),
			},
			Outputs: []runtime.ValueInfo{vi("s", tensor.Float32)},
		}, []string{"deep"}},
		{"nested subgraph's free value defined here", &runtime.Graph{
			Inputs: []runtime.ValueInfo{vi("x", tensor.Float32)},
			Nodes: []*runtime.Node{
				nd("Relu", "", []string{"x"}, []string{"deep"}),
				nd("Scan", "", []string{"x"}, []string{"s"}, "body", inner, "num_scan_inputs", 1),
			},
			Outputs: []runtime.ValueInfo{vi("s", tensor.Float32)},
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
