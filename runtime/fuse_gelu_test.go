package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// geluGraph is z[b,k] → Gemm(W, bias) → GELU (erf form, in one of the
// export orderings) → y, and the same GELU applied to the graph input x
// directly → y2. form: bit 0 multiplies by 1/√2 instead of dividing by
// √2; form>>1 picks (x·a)·½, x·(a·½) or (x·½)·a. swap puts each constant
// on the other side of the commutative ops.
func geluGraph(rng *rand.Rand, form int, swap bool, k, n int) *graph.Graph {
	g := &graph.Graph{
		Inputs:  []graph.ValueInfo{vi("z", tensor.Float32, "b", k), vi("x", tensor.Float32, "b", n)},
		Outputs: []graph.ValueInfo{vi("y", tensor.Float32, "b", n), vi("y2", tensor.Float32, "b", n)},
		Initializers: map[string]*tensor.Tensor{
			"W": randTensor(rng, k, n), "bias": randTensor(rng, n),
			"sqrt2": tensor.Scalar(float32(math.Sqrt2)), "rsqrt2": tensor.From([]int{1}, []float32{float32(1 / math.Sqrt2)}),
			"one": tensor.Scalar(float32(1)), "half": tensor.Scalar(float32(0.5)),
		},
	}
	bin := func(op, name, a, c, out string) *graph.Node {
		if swap && op != "Div" {
			a, c = c, a
		}
		return nd(op, name, []string{a, c}, []string{out})
	}
	gelu := func(p, x, y string) []*graph.Node {
		var ns []*graph.Node
		if form&1 == 0 {
			ns = append(ns, bin("Div", p+"div", x, "sqrt2", p+"d"))
		} else {
			ns = append(ns, bin("Mul", p+"scale", x, "rsqrt2", p+"d"))
		}
		ns = append(ns, nd("Erf", p+"erf", []string{p + "d"}, []string{p + "e"}), bin("Add", p+"add", p+"e", "one", p+"a"))
		switch form >> 1 {
		case 0:
			ns = append(ns, bin("Mul", p+"m1", x, p+"a", p+"m"), bin("Mul", p+"m2", p+"m", "half", y))
		case 1:
			ns = append(ns, bin("Mul", p+"m1", p+"a", "half", p+"m"), bin("Mul", p+"m2", x, p+"m", y))
		default:
			ns = append(ns, bin("Mul", p+"m1", x, "half", p+"m"), bin("Mul", p+"m2", p+"m", p+"a", y))
		}
		return ns
	}
	g.Nodes = append(g.Nodes, nd("Gemm", "gemm", []string{"z", "W", "bias"}, []string{"h"}))
	g.Nodes = append(g.Nodes, gelu("a/", "h", "y")...)
	g.Nodes = append(g.Nodes, gelu("b/", "x", "y2")...)
	return g
}

// TestGeluFusion: every export ordering of GELU's erf form becomes one
// Dense with a GELU epilogue after a Gemm, and one GeluErf on its own,
// with results bit-identical to the unfused nodes (the same float32
// operations in the same order, and the Erf kernel on the same vector
// lanes), over widths that are not multiples of the vector width or of
// the kernel's 512-element chunk.
func TestGeluFusion(t *testing.T) {
	for form := 0; form < 6; form++ {
		for _, swap := range []bool{false, true} {
			t.Run(fmt.Sprintf("form%d/swap=%v", form, swap), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(form), 16))
				// k 400: more than one k block of the product, the bias
				// then added in the GELU epilogue instead of first
				for _, kn := range [][2]int{{13, 1}, {13, 7}, {13, 67}, {13, 1030}, {400, 67}} {
					k, n := kn[0], kn[1]
					m := model(geluGraph(rng, form, swap, k, n), 17)
					fused, err := runtime.NewSession(m, runtime.Options{})
					if err != nil {
						t.Fatal(err)
					}
					plain, err := runtime.NewSession(m, runtime.Options{NoFusion: true})
					if err != nil {
						t.Fatal(err)
					}
					got := opTypes(fused.ExecutedGraph())
					if len(got) != 2 || got[0] != "ai.mtlrun:Dense" || got[1] != "ai.mtlrun:GeluErf" {
						t.Fatalf("executed graph %v, want ai.mtlrun:Dense and ai.mtlrun:GeluErf", got)
					}
					for _, b := range []int{1, 5, 64} {
						x := randTensor(rng, b, n)
						xs := x.Float32s()
						xs[0] *= 8 // erf saturated
						if len(xs) > 2 {
							xs[1], xs[2] = float32(math.NaN()), 1e-30 // NaN, and a product that underflows
						}
						sameRunsNaN(t, fused, plain, map[string]*tensor.Tensor{"z": randTensor(rng, b, k), "x": x})
					}
				}
			})
		}
	}
}

// sameRunsNaN is sameRuns, except that a NaN only has to be a NaN: x86
// propagates the payload and sign of one operand's NaN, so the unfused
// graph's own NaN bits depend on the operand order the exporter chose.
func sameRunsNaN(t *testing.T, got, want *runtime.Session, feeds map[string]*tensor.Tensor) {
	t.Helper()
	w, err := want.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	g, err := got.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	for name, wv := range w {
		gs, ws := g[name].Float32s(), wv.Float32s()
		if !tensor.SameShape(g[name].Shape, wv.Shape) {
			t.Fatalf("%s: shape %v, want %v", name, g[name].Shape, wv.Shape)
		}
		for i := range ws {
			if math.Float32bits(gs[i]) != math.Float32bits(ws[i]) && !(gs[i] != gs[i] && ws[i] != ws[i]) {
				t.Fatalf("%s: element %d is %v, want %v", name, i, gs[i], ws[i])
			}
		}
	}
}

// TestGeluFusionNeedsThePattern: a wrong constant, or an intermediate
// that something else reads, leaves the nodes as they are.
func TestGeluFusionNeedsThePattern(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 16))
	g := geluGraph(rng, 0, false, 4, 3)
	g.Initializers["sqrt2"] = tensor.Scalar(float32(1.5)) // not GELU
	g2 := geluGraph(rng, 0, false, 4, 3)
	g2.Outputs = append(g2.Outputs, vi("a/e", tensor.Float32, "b", 3), vi("b/a", tensor.Float32, "b", 3))
	for i, g := range []*graph.Graph{g, g2} {
		s, err := runtime.NewSession(model(g, 17), runtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range opTypes(s.ExecutedGraph()) {
			if op == "ai.mtlrun:GeluErf" || op == "ai.mtlrun:Dense" {
				t.Errorf("graph %d: executed graph %v fused a GELU that is not one", i, opTypes(s.ExecutedGraph()))
				break
			}
		}
	}
}

// geluTanhGraph is geluGraph with GELU's tanh form as torch.onnx.export
// writes it: form bit 0 takes x³ as Pow(x, 3) instead of Mul(x, Mul(x, x)),
// form>>1 the association of the products.
func geluTanhGraph(rng *rand.Rand, form int, swap bool, k, n int) *graph.Graph {
	g := geluGraph(rng, 0, swap, k, n)
	g.Initializers["beta"] = tensor.Scalar(float32(math.Sqrt(2 / math.Pi)))
	g.Initializers["kappa"] = tensor.Scalar(float32(0.044715))
	g.Initializers["three"] = tensor.Scalar(float32(3))
	bin := func(op, name, a, c, out string) *graph.Node {
		if swap && op != "Pow" {
			a, c = c, a
		}
		return nd(op, name, []string{a, c}, []string{out})
	}
	gelu := func(p, x, y string) []*graph.Node {
		var ns []*graph.Node
		if form&1 == 0 {
			ns = append(ns, bin("Mul", p+"sq", x, x, p+"xx"), bin("Mul", p+"cube", x, p+"xx", p+"c"))
		} else {
			ns = append(ns, bin("Pow", p+"cube", x, "three", p+"c"))
		}
		ns = append(ns, bin("Mul", p+"k", "kappa", p+"c", p+"kc"), bin("Add", p+"s", x, p+"kc", p+"s"),
			bin("Mul", p+"b", "beta", p+"s", p+"in"), nd("Tanh", p+"tanh", []string{p + "in"}, []string{p + "t"}),
			bin("Add", p+"add", "one", p+"t", p+"a"))
		switch form >> 1 {
		case 0:
			ns = append(ns, bin("Mul", p+"m1", x, p+"a", p+"m"), bin("Mul", p+"m2", "half", p+"m", y))
		case 1:
			ns = append(ns, bin("Mul", p+"m1", p+"a", "half", p+"m"), bin("Mul", p+"m2", x, p+"m", y))
		default:
			ns = append(ns, bin("Mul", p+"m1", x, "half", p+"m"), bin("Mul", p+"m2", p+"m", p+"a", y))
		}
		return ns
	}
	g.Nodes = append(g.Nodes[:1], gelu("a/", "h", "y")...)
	g.Nodes = append(g.Nodes, gelu("b/", "x", "y2")...)
	return g
}

// TestGeluTanhFusion: as TestGeluFusion for the tanh form.
func TestGeluTanhFusion(t *testing.T) {
	for form := 0; form < 6; form++ {
		for _, swap := range []bool{false, true} {
			t.Run(fmt.Sprintf("form%d/swap=%v", form, swap), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(form), 61))
				for _, n := range []int{1, 7, 67, 1030} {
					m := model(geluTanhGraph(rng, form, swap, 13, n), 17)
					fused, err := runtime.NewSession(m, runtime.Options{})
					if err != nil {
						t.Fatal(err)
					}
					plain, err := runtime.NewSession(m, runtime.Options{NoFusion: true})
					if err != nil {
						t.Fatal(err)
					}
					got := opTypes(fused.ExecutedGraph())
					if len(got) != 2 || got[0] != "ai.mtlrun:Dense" || got[1] != "ai.mtlrun:GeluTanh" {
						t.Fatalf("executed graph %v, want ai.mtlrun:Dense and ai.mtlrun:GeluTanh", got)
					}
					for _, b := range []int{1, 5, 64} {
						x := randTensor(rng, b, n)
						xs := x.Float32s()
						xs[0] *= 8
						if len(xs) > 2 {
							xs[1], xs[2] = float32(math.NaN()), 1e-30
						}
						sameRunsNaN(t, fused, plain, map[string]*tensor.Tensor{"z": randTensor(rng, b, 13), "x": x})
					}
				}
			})
		}
	}
}
