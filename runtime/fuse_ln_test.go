package runtime_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// lnGraph is the decomposed layer norm over the last axis of x[b, t, n]
// → y, as exporters write it; opset 18 passes ReduceMean's axes as an
// input; swap reverses the operands of the Add and Mul nodes.
func lnGraph(rng *rand.Rand, opset int64, swap bool, n int) *graph.Graph {
	g := &graph.Graph{
		Inputs:  []graph.ValueInfo{vi("x", tensor.Float32, "b", "t", n)},
		Outputs: []graph.ValueInfo{vi("y", tensor.Float32, "b", "t", n)},
		Initializers: map[string]*tensor.Tensor{
			"gamma": randTensor(rng, n), "beta": randTensor(rng, n), "eps": tensor.Scalar(float32(1e-5)),
			"two": tensor.Scalar(float32(2)), "axes": tensor.From([]int{1}, []int64{-1}),
		},
	}
	mean := func(name, in, out string) *graph.Node {
		if opset >= 18 {
			return nd("ReduceMean", name, []string{in, "axes"}, []string{out})
		}
		return nd("ReduceMean", name, []string{in}, []string{out}, "axes", []int64{-1})
	}
	bin := func(op, name, a, c, out string) *graph.Node {
		if swap {
			a, c = c, a
		}
		return nd(op, name, []string{a, c}, []string{out})
	}
	g.Nodes = []*graph.Node{
		mean("mean", "x", "m"),
		nd("Sub", "sub", []string{"x", "m"}, []string{"d"}),
		nd("Pow", "pow", []string{"d", "two"}, []string{"p"}),
		mean("var", "p", "v"),
		bin("Add", "addeps", "v", "eps", "ve"),
		nd("Sqrt", "sqrt", []string{"ve"}, []string{"s"}),
		nd("Div", "div", []string{"d", "s"}, []string{"nrm"}),
		bin("Mul", "scale", "nrm", "gamma", "sc"),
		bin("Add", "shift", "sc", "beta", "y"),
	}
	return g
}

// TestLayerNormFusion: the nine nodes of a decomposed layer norm run as
// one ai.mtlrun:LayerNormPattern node with bit-identical results.
func TestLayerNormFusion(t *testing.T) {
	for _, opset := range []int64{17, 18} {
		for _, swap := range []bool{false, true} {
			t.Run(fmt.Sprintf("opset%d/swap=%v", opset, swap), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(opset), 17))
				for _, n := range []int{1, 7, 64, 67, 768} {
					m := model(lnGraph(rng, opset, swap, n), opset)
					fused, err := runtime.NewSession(m, runtime.Options{})
					if err != nil {
						t.Fatal(err)
					}
					plain, err := runtime.NewSession(m, runtime.Options{NoFusion: true})
					if err != nil {
						t.Fatal(err)
					}
					if got := opTypes(fused.ExecutedGraph()); len(got) != 1 || got[0] != "ai.mtlrun:LayerNormPattern" {
						t.Fatalf("executed graph %v, want one ai.mtlrun:LayerNormPattern", got)
					}
					for _, bt := range [][2]int{{1, 1}, {3, 5}} {
						x := randTensor(rng, bt[0], bt[1], n)
						xs := x.Float32s()
						for i := range xs[:n] {
							xs[i] = xs[i]*1e-3 + 1000 // large mean, small spread
						}
						sameRuns(t, fused, plain, map[string]*tensor.Tensor{"x": x})
						sameRuns(t, fused, plain, map[string]*tensor.Tensor{"x": x}, "d", "v") // fused-away values
					}
				}
			})
		}
	}
}

// TestLayerNormFusionNeedsThePattern: a mean over another axis, a shared
// intermediate or another exponent leave the nodes alone.
func TestLayerNormFusionNeedsThePattern(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 17))
	axis := lnGraph(rng, 17, false, 4)
	axis.Nodes[3].Attrs["axes"] = graph.Attr{Type: graph.AttrInts, Ints: []int64{1}}
	shared := lnGraph(rng, 17, false, 4)
	shared.Outputs = append(shared.Outputs, vi("s", tensor.Float32, "b", "t", 1))
	cube := lnGraph(rng, 17, false, 4)
	cube.Initializers["two"] = tensor.Scalar(float32(3))
	for i, g := range []*graph.Graph{axis, shared, cube} {
		s, err := runtime.NewSession(model(g, 17), runtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := opTypes(s.ExecutedGraph()); len(got) != 9 {
			t.Errorf("graph %d: executed graph %v, want the nine nodes", i, got)
		}
	}
}
