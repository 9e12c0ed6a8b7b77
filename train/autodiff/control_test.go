package autodiff

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	// an op with a kernel and no backward rule
	ops.Define(ops.Desc{Domain: "test.autodiff", Type: "Opaque", Since: 1, Kernel: func(c *ops.Config) (ops.Op, error) {
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return in[:1], nil }), nil
	}})
}

func node(op, name string, in, out []string, attrs ...any) *graph.Node {
	n := &graph.Node{Name: name, OpType: op, Inputs: in, Outputs: out, Attrs: graph.Attrs{}}
	for i := 0; i+1 < len(attrs); i += 2 {
		key := attrs[i].(string)
		switch v := attrs[i+1].(type) {
		case int:
			n.Attrs[key] = graph.Attr{Type: graph.AttrInt, Int: int64(v)}
		case []int64:
			n.Attrs[key] = graph.Attr{Type: graph.AttrInts, Ints: v}
		case *graph.Graph:
			n.Attrs[key] = graph.Attr{Type: graph.AttrGraph, Graph: v}
		default:
			panic("bad attr")
		}
	}
	return n
}

func vi(name string, dt tensor.DType) graph.ValueInfo {
	return graph.ValueInfo{Name: name, DType: dt, Kind: "tensor"}
}

func model(g *graph.Graph, opset int) *graph.Model {
	return &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": int64(opset)}}
}

// rnnBody is a tanh RNN cell in the shape tf2onnx gives a Keras 3 RNN's
// while_loop body: the step's input is read from the outer sequence with
// Gather at the iteration number, the kernel W arrives as a carried value
// passed through unchanged, R and b are read from the outer scope, and the
// new state is both carried and scanned out.
func rnnBody() *graph.Graph {
	b := &graph.Graph{Name: "body",
		Inputs:  []graph.ValueInfo{vi("it", tensor.Int64), vi("cin", tensor.Bool), vi("h", tensor.Float64), vi("Wc", tensor.Float64)},
		Outputs: []graph.ValueInfo{vi("cout", tensor.Bool), vi("hn", tensor.Float64), vi("Wc", tensor.Float64), vi("hs", tensor.Float64)},
	}
	b.AddInitializer("limit", tensor.Scalar(int64(100)))
	b.AddInitializer("one", tensor.Scalar(float64(1)))
	b.Nodes = []*graph.Node{
		node("Gather", "read_x", []string{"x", "it"}, []string{"xt"}),
		node("MatMul", "xw", []string{"xt", "Wc"}, []string{"a"}),
		node("MatMul", "hr", []string{"h", "R"}, []string{"r"}),
		node("Add", "add1", []string{"a", "r"}, []string{"s"}),
		node("Add", "add2", []string{"s", "bias"}, []string{"s2"}),
		node("Tanh", "tanh", []string{"s2"}, []string{"th"}),
		// a gate-like product with a body constant
		node("Sub", "gate", []string{"one", "th"}, []string{"g"}),
		node("Mul", "mix", []string{"g", "th"}, []string{"hn"}),
		node("Identity", "scan_out", []string{"hn"}, []string{"hs"}),
		node("Less", "cond", []string{"it", "limit"}, []string{"cout"}),
	}
	return b
}

func loopModel(rng *rand.Rand, tripFromParam bool) (*graph.Model, []string) {
	const T, B, I, H = 4, 2, 3, 3
	r := func(shape ...int) *tensor.Tensor { return randT(rng, false, shape...) }
	g := &graph.Graph{Name: "loop"}
	for name, t := range map[string]*tensor.Tensor{"x": r(T, B, I), "W": r(I, H), "R": r(H, H), "bias": r(H), "h0": r(B, H)} {
		g.AddInitializer(name, t)
	}
	g.AddInitializer("M", tensor.Scalar(int64(T)))
	g.AddInitializer("c0", tensor.Scalar(true))
	m := "M"
	if tripFromParam {
		g.Nodes = append(g.Nodes,
			node("ReduceSum", "count", []string{"bias"}, []string{"bsum"}, "keepdims", 0),
			node("Cast", "count_int", []string{"bsum"}, []string{"Mp"}, "to", int(tensor.Int64)))
		m = "Mp"
	}
	g.Nodes = append(g.Nodes, node("Loop", "rnn_loop", []string{m, "c0", "h0", "W"}, []string{"hT", "WT", "seq"}, "body", rnnBody()))
	g.Outputs = []graph.ValueInfo{vi("hT", tensor.Float64), vi("seq", tensor.Float64)}
	return model(g, 13), []string{"x", "W", "R", "bias", "h0"}
}

func TestLoopGradients(t *testing.T) {
	m, params := loopModel(rand.New(rand.NewPCG(21, 1)), false)
	outs := []string{"hT", "seq"}
	prog, err := NewProgram(m, outs, params)
	if err != nil {
		t.Fatal(err)
	}
	tape, err := prog.Forward(nil)
	if err != nil {
		t.Fatal(err)
	}
	// the forward pass agrees with the runtime's Loop
	sess, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := sess.Run(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		a, b := tape.Value(o).Float64s(), ref[o].Float64s()
		for i := range b {
			if a[i] != b[i] {
				t.Fatalf("%s[%d]: tape %g, runtime %g", o, i, a[i], b[i])
			}
		}
	}
	fdCheck(t, "loop", m, prog, tape, outs, params)
}

func TestLoopTripCountFromParameter(t *testing.T) {
	m, params := loopModel(rand.New(rand.NewPCG(21, 1)), true)
	_, err := NewProgram(m, []string{"hT", "seq"}, params)
	if err == nil || !strings.Contains(err.Error(), `node "rnn_loop" (Loop)`) || !strings.Contains(err.Error(), "trip count") {
		t.Fatalf("got %v, want an error naming the Loop and its trip count", err)
	}
}

func scanModel(rng *rand.Rand, reverse bool) (*graph.Model, []string) {
	const T, B, I, H = 4, 2, 3, 3
	r := func(shape ...int) *tensor.Tensor { return randT(rng, false, shape...) }
	body := &graph.Graph{Name: "scan_body",
		Inputs:  []graph.ValueInfo{vi("sh", tensor.Float64), vi("sx", tensor.Float64)},
		Outputs: []graph.ValueInfo{vi("shn", tensor.Float64), vi("sy", tensor.Float64)},
		Nodes: []*graph.Node{
			node("MatMul", "sxw", []string{"sx", "W"}, []string{"sa"}),
			node("MatMul", "shr", []string{"sh", "R"}, []string{"sr"}),
			node("Add", "sadd", []string{"sa", "sr"}, []string{"ss"}),
			node("Tanh", "stanh", []string{"ss"}, []string{"shn"}),
			node("Sigmoid", "sout", []string{"shn"}, []string{"sy"}),
		},
	}
	g := &graph.Graph{Name: "scan"}
	for name, t := range map[string]*tensor.Tensor{"x": r(B, T, I), "W": r(I, H), "R": r(H, H), "h0": r(B, H)} {
		g.AddInitializer(name, t)
	}
	dir := int64(0)
	if reverse {
		dir = 1
	}
	g.Nodes = []*graph.Node{node("Scan", "scan", []string{"h0", "x"}, []string{"hT", "ys"}, "body", body,
		"num_scan_inputs", 1, "scan_input_axes", []int64{1}, "scan_input_directions", []int64{dir},
		"scan_output_axes", []int64{1}, "scan_output_directions", []int64{dir})}
	g.Outputs = []graph.ValueInfo{vi("hT", tensor.Float64), vi("ys", tensor.Float64)}
	return model(g, 16), []string{"x", "W", "R", "h0"}
}

func TestScanGradients(t *testing.T) {
	for _, reverse := range []bool{false, true} {
		m, params := scanModel(rand.New(rand.NewPCG(5, 9)), reverse)
		outs := []string{"hT", "ys"}
		prog, err := NewProgram(m, outs, params)
		if err != nil {
			t.Fatal(err)
		}
		tape, err := prog.Forward(nil)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := runtime.NewSession(m, runtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := sess.Run(nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			a, b := tape.Value(o).Float64s(), ref[o].Float64s()
			for i := range b {
				if a[i] != b[i] {
					t.Fatalf("reverse %v: %s[%d]: tape %g, runtime %g", reverse, o, i, a[i], b[i])
				}
			}
		}
		name := "scan_forward"
		if reverse {
			name = "scan_reverse"
		}
		fdCheck(t, name, m, prog, tape, outs, params)
	}
}

func TestIfGradients(t *testing.T) {
	for _, cond := range []bool{true, false} {
		rng := rand.New(rand.NewPCG(8, 8))
		then := &graph.Graph{Name: "then", Outputs: []graph.ValueInfo{vi("ty", tensor.Float64)},
			Nodes: []*graph.Node{node("Mul", "tmul", []string{"x", "W"}, []string{"ty"})}}
		els := &graph.Graph{Name: "else", Outputs: []graph.ValueInfo{vi("ey", tensor.Float64)},
			Nodes: []*graph.Node{node("Sin", "esin", []string{"x"}, []string{"es"}), node("Add", "eadd", []string{"es", "W"}, []string{"ey"})}}
		if !HasRule("Sin") {
			els.Nodes[0].OpType = "Tanh"
		}
		g := &graph.Graph{Name: "if"}
		g.AddInitializer("x", randT(rng, false, 2, 3))
		g.AddInitializer("W", randT(rng, false, 3))
		g.AddInitializer("c", tensor.Scalar(cond))
		g.Nodes = []*graph.Node{node("If", "branch", []string{"c"}, []string{"y"}, "then_branch", then, "else_branch", els),
			node("Tanh", "post", []string{"y"}, []string{"z"})}
		g.Outputs = []graph.ValueInfo{vi("z", tensor.Float64)}
		m := model(g, 13)
		params := []string{"x", "W"}
		prog, err := NewProgram(m, []string{"z"}, params)
		if err != nil {
			t.Fatal(err)
		}
		tape, err := prog.Forward(nil)
		if err != nil {
			t.Fatal(err)
		}
		fdCheck(t, "if", m, prog, tape, []string{"z"}, params)
	}
}

// TestConstantsInBackward: shape plumbing, comparisons and indices on the
// way from a parameter to an output need no rule; a node a gradient must
// cross without one is named, all such nodes at once.
func TestConstantsInBackward(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	g := &graph.Graph{Name: "plumbing"}
	g.AddInitializer("x", randT(rng, false, 2, 3))
	g.AddInitializer("W", randT(rng, false, 3, 4))
	g.AddInitializer("zero", tensor.Scalar(float64(0)))
	g.Nodes = []*graph.Node{
		node("MatMul", "mm", []string{"x", "W"}, []string{"y"}),
		node("Shape", "shape", []string{"y"}, []string{"s"}),
		node("ConstantOfShape", "fill", []string{"s"}, []string{"zeros"}),
		node("Cast", "fill64", []string{"zeros"}, []string{"zeros64"}, "to", int(tensor.Float64)),
		node("Greater", "positive", []string{"y", "zeros64"}, []string{"mask"}),
		node("ArgMax", "argmax", []string{"y"}, []string{"idx"}, "axis", 1),
		node("Cast", "idx_float", []string{"idx"}, []string{"idxf"}, "to", int(tensor.Float64)),
		node("Where", "relu", []string{"mask", "y", "zero"}, []string{"r"}),
		node("Reshape", "flat", []string{"r", "s"}, []string{"r2"}),
		node("Unsqueeze", "col", []string{"idxf", "axes"}, []string{"idxc"}),
		node("Add", "out", []string{"r2", "idxc"}, []string{"z"}),
	}
	g.AddInitializer("axes", tensor.From([]int{1}, []int64{1}))
	g.Outputs = []graph.ValueInfo{vi("z", tensor.Float64)}
	m := model(g, 13)
	params := []string{"x", "W"}
	prog, err := NewProgram(m, []string{"z"}, params)
	if err != nil {
		t.Fatal(err)
	}
	tape, err := prog.Forward(nil)
	if err != nil {
		t.Fatal(err)
	}
	fdCheck(t, "plumbing", m, prog, tape, []string{"z"}, params)
	ps, cs := Parameters(m)
	if strings.Join(ps, ",") != "x,W" || strings.Join(cs, ",") != "zero" {
		t.Errorf("Parameters = %v, constants %v; want [x W] and [zero]", ps, cs)
	}

	// two nodes without a rule on the gradient's path are both named
	opaque := func(name, in, out string) *graph.Node {
		n := node("Opaque", name, []string{in}, []string{out})
		n.Domain = "test.autodiff"
		return n
	}
	g.Nodes = append(g.Nodes[:1], opaque("op1", "y", "h1"), opaque("op2", "h1", "h2"),
		node("Add", "out", []string{"h2", "y"}, []string{"z"}))
	m.Opsets["test.autodiff"] = 1
	_, err = NewProgram(m, []string{"z"}, params)
	var nd *NotDifferentiableError
	if !errors.As(err, &nd) || len(nd.Nodes) != 2 || !strings.Contains(err.Error(), `"op1" (Opaque)`) || !strings.Contains(err.Error(), `"op2" (Opaque)`) {
		t.Fatalf("got %v, want both Opaque nodes named", err)
	}
}
