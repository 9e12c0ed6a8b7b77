package runtime_test

import (
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

func randTensor(rng *rand.Rand, shape ...int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return tensor.From(shape, x)
}

// denseGraph is x[b,t,8] → MatMul W[8,6] → Add bias → act → MatMul W2 →
// Gemm-free head, plus a Gemm → Relu branch on a 2-D input.
func denseGraph(rng *rand.Rand, act string) *graph.Graph {
	g := &graph.Graph{
		Inputs:  []graph.ValueInfo{vi("x", tensor.Float32, "b", "t", 8), vi("z", tensor.Float32, "b", 8)},
		Outputs: []graph.ValueInfo{vi("y", tensor.Float32, "b", "t", 6), vi("h", tensor.Float32, "b", 5)},
		Nodes: []*graph.Node{
			nd("MatMul", "mm", []string{"x", "W"}, []string{"mm_out"}),
			nd("Add", "add", []string{"bias", "mm_out"}, []string{"pre"}),
			nd(act, "act", []string{"pre"}, []string{"y"}),
			nd("Gemm", "gemm", []string{"z", "G", "gb"}, []string{"g_out"}, "transB", 1),
			nd("Relu", "relu", []string{"g_out"}, []string{"h"}),
		},
		Initializers: map[string]*tensor.Tensor{
			"W": randTensor(rng, 8, 6), "bias": randTensor(rng, 6),
			"G": randTensor(rng, 5, 8), "gb": randTensor(rng, 5),
		},
	}
	if act == "LeakyRelu" {
		g.Nodes[2].Attrs["alpha"] = graph.Attr{Type: graph.AttrFloat, Float: 0.2}
	}
	return g
}

// sameRuns runs both sessions on feeds and requires bit-identical outputs.
func sameRuns(t *testing.T, got, want *runtime.Session, feeds map[string]*tensor.Tensor, outputs ...string) {
	t.Helper()
	w, err := want.Run(feeds, outputs...)
	if err != nil {
		t.Fatal(err)
	}
	g, err := got.Run(feeds, outputs...)
	if err != nil {
		t.Fatal(err)
	}
	for name, wv := range w {
		sameBits(t, name, g[name], wv)
	}
}

func opTypes(g *graph.Graph) []string {
	var out []string
	for _, n := range g.Nodes {
		out = append(out, n.Domain+":"+n.OpType)
	}
	return out
}

// TestDenseFusion: product + bias + activation chains run as one
// ai.mtlrun:Dense node with bit-identical results, the model itself is
// untouched, and values fused away stay requestable.
func TestDenseFusion(t *testing.T) {
	for _, act := range []string{"Relu", "LeakyRelu", "Sigmoid", "Tanh"} {
		t.Run(act, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			m := model(denseGraph(rng, act), 17)
			fused, err := runtime.NewSession(m, runtime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			plain, err := runtime.NewSession(m, runtime.Options{NoFusion: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := opTypes(fused.ExecutedGraph()); len(got) != 2 || got[0] != "ai.mtlrun:Dense" || got[1] != "ai.mtlrun:Dense" {
				t.Fatalf("executed graph %v, want two ai.mtlrun:Dense nodes", got)
			}
			if len(m.Graph.Nodes) != 5 {
				t.Fatal("fusion changed the model's own graph")
			}
			for _, bt := range [][2]int{{1, 1}, {3, 7}, {64, 5}} {
				feeds := map[string]*tensor.Tensor{"x": randTensor(rng, bt[0], bt[1], 8), "z": randTensor(rng, bt[0], 8)}
				sameRuns(t, fused, plain, feeds)
				// a value fusion removed is still there when asked for
				sameRuns(t, fused, plain, feeds, "pre", "g_out")
			}
		})
	}
}

// TestDenseFusionLeavesSharedValues: an intermediate read by two nodes, or
// that is a graph output, is not fused away; nor is a product by a weight
// that is not an initializer.
func TestDenseFusionLeavesSharedValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	g := denseGraph(rng, "Relu")
	g.Outputs = append(g.Outputs, vi("pre", tensor.Float32, "b", "t", 6)) // Add output is a graph output
	g.Nodes = append(g.Nodes, nd("Sigmoid", "other", []string{"g_out"}, []string{"s"}))
	g.Outputs = append(g.Outputs, vi("s", tensor.Float32, "b", 5)) // Gemm output read twice
	s, err := runtime.NewSession(model(g, 17), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := opTypes(s.ExecutedGraph())
	want := []string{"ai.mtlrun:Dense", ":Relu", ":Gemm", ":Relu", ":Sigmoid"}
	if len(got) != len(want) {
		t.Fatalf("executed graph %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("executed graph %v, want %v", got, want)
		}
	}

	g2 := denseGraph(rng, "Tanh")
	g2.Inputs = append(g2.Inputs, vi("W", tensor.Float32, 8, 6))
	delete(g2.Initializers, "W") // weight fed by the caller
	s2, err := runtime.NewSession(model(g2, 17), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := opTypes(s2.ExecutedGraph()); got[0] != ":MatMul" {
		t.Fatalf("a fed weight was fused: %v", got)
	}
}

// TestHeadGrouping: task heads reading the same trunk output run as one
// ai.mtlrun:DenseGroup with results bit-identical to separate heads.
func TestHeadGrouping(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	g := &graph.Graph{
		Inputs: []graph.ValueInfo{vi("x", tensor.Float32, "b", 8)},
		Outputs: []graph.ValueInfo{
			vi("p", tensor.Float32, "b", 1), vi("c", tensor.Float32, "b", 5),
			vi("e", tensor.Float32, "b", 3), vi("k", tensor.Float32, "b", 2),
		},
		Nodes: []*graph.Node{
			nd("Gemm", "trunk", []string{"x", "T", "tb"}, []string{"h0"}, "transB", 1),
			nd("Relu", "trunk_act", []string{"h0"}, []string{"h"}),
			nd("Gemm", "head_p", []string{"h", "W1", "b1"}, []string{"p0"}, "transB", 1),
			nd("Sigmoid", "head_p_act", []string{"p0"}, []string{"p"}),
			nd("Gemm", "head_c", []string{"h", "W2", "b2"}, []string{"c"}, "transB", 1),
			nd("Gemm", "head_e", []string{"h", "W3"}, []string{"e0"}, "transB", 1),
			nd("Tanh", "head_e_act", []string{"e0"}, []string{"e"}),
			nd("MatMul", "head_k", []string{"h", "W4"}, []string{"k0"}),
			nd("Add", "head_k_bias", []string{"k0", "b4"}, []string{"k"}),
		},
		Initializers: map[string]*tensor.Tensor{
			"T": randTensor(rng, 16, 8), "tb": randTensor(rng, 16),
			"W1": randTensor(rng, 1, 16), "b1": randTensor(rng, 1),
			"W2": randTensor(rng, 5, 16), "b2": randTensor(rng, 1, 5),
			"W3": randTensor(rng, 3, 16),
			"W4": randTensor(rng, 16, 2), "b4": randTensor(rng, 2),
		},
	}
	m := model(g, 17)
	fused, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := runtime.NewSession(m, runtime.Options{NoFusion: true})
	if err != nil {
		t.Fatal(err)
	}
	got := opTypes(fused.ExecutedGraph())
	want := []string{"ai.mtlrun:Dense", "ai.mtlrun:DenseGroup", "ai.mtlrun:Dense"}
	if len(got) != len(want) {
		t.Fatalf("executed graph %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("executed graph %v, want %v", got, want)
		}
	}
	for _, batch := range []int{1, 3, 64} {
		feeds := map[string]*tensor.Tensor{"x": randTensor(rng, batch, 8)}
		sameRuns(t, fused, plain, feeds)
		// one head alone still works (and is computed by the group)
		sameRuns(t, fused, plain, feeds, "c")
	}
}
