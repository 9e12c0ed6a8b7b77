package runtime_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// runOne builds a session for g and runs it, failing the test on error.
func runOne(t *testing.T, g *graph.Graph, opset int64, inputs map[string]*tensor.Tensor) map[string]*tensor.Tensor {
	t.Helper()
	res, err := tryRun(g, opset, inputs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func tryRun(g *graph.Graph, opset int64, inputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	s, err := runtime.NewSession(model(g, opset), runtime.Options{})
	if err != nil {
		return nil, err
	}
	return s.Run(inputs)
}

// anyShape declares an input of any rank.
func anyShape(name string, dt tensor.DType) graph.ValueInfo {
	return graph.ValueInfo{Name: name, DType: dt, Kind: "tensor"}
}

func wantTensor(t *testing.T, name string, got, want *tensor.Tensor) {
	t.Helper()
	if got == nil || got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) || (want.Len() > 0 && !reflect.DeepEqual(got.Data, want.Data)) {
		var data any
		if got != nil {
			data = got.Data
		}
		t.Errorf("%s = %v %v, want %v %v", name, got, data, want, want.Data)
	}
}

func wantErr(t *testing.T, what string, err error, substrings ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	for _, s := range substrings {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s: error %q does not mention %q", what, err, s)
		}
	}
}

func TestIf(t *testing.T) {
	// then: x + k (k an outer initializer); else: xr * xr (xr an outer node's output)
	then := &graph.Graph{Name: "then",
		Nodes:   []*graph.Node{nd("Add", "then_add", []string{"x", "k"}, []string{"ty"})},
		Outputs: []graph.ValueInfo{vi("ty", tensor.Float32, "n")}}
	els := &graph.Graph{Name: "else",
		Nodes:   []*graph.Node{nd("Mul", "else_mul", []string{"xr", "xr"}, []string{"ey"})},
		Outputs: []graph.ValueInfo{vi("ey", tensor.Float32, "n")}}
	g := &graph.Graph{
		Inputs:       []graph.ValueInfo{vi("c", tensor.Bool), vi("x", tensor.Float32, "n")},
		Initializers: map[string]*tensor.Tensor{"k": f32([]int{}, 10)},
		Nodes: []*graph.Node{
			nd("If", "if", []string{"c"}, []string{"y"}, "then_branch", then, "else_branch", els),
			nd("Relu", "xr", []string{"x"}, []string{"xr"}),
		},
		Outputs: []graph.ValueInfo{vi("y", tensor.Float32, "n")},
	}
	if err := g.Sort(); err != nil {
		t.Fatal(err)
	}
	x := f32([]int{3}, -2, 1, 3)
	res := runOne(t, g, 13, map[string]*tensor.Tensor{"c": tensor.Scalar(true), "x": x})
	wantTensor(t, "then", res["y"], f32([]int{3}, 8, 11, 13))
	res = runOne(t, g, 13, map[string]*tensor.Tensor{"c": tensor.Scalar(false), "x": x})
	wantTensor(t, "else", res["y"], f32([]int{3}, 0, 1, 9))

	// a one-element condition of rank 1 is accepted
	g.Inputs[0] = vi("c", tensor.Bool, nil)
	res = runOne(t, g, 13, map[string]*tensor.Tensor{"c": tensor.From([]int{1}, []bool{true}), "x": x})
	wantTensor(t, "rank-1 cond", res["y"], f32([]int{3}, 8, 11, 13))
	// a two-element condition is an error naming the If node
	_, err := tryRun(g, 13, map[string]*tensor.Tensor{"c": tensor.From([]int{2}, []bool{true, false}), "x": x})
	wantErr(t, "two-element condition", err, `node "if" (If)`, "condition")

	// an error inside a branch names the inner node
	then.Nodes[0] = testNode("Fail", "inner_fail", []string{"x"}, []string{"ty"})
	_, err = tryRun(g, 13, map[string]*tensor.Tensor{"c": tensor.From([]int{1}, []bool{true}), "x": x})
	wantErr(t, "failing branch", err, `node "if" (If)`, `node "inner_fail" (Fail)`, "deliberate failure")
	// the other branch still works
	res = runOne(t, g, 13, map[string]*tensor.Tensor{"c": tensor.From([]int{1}, []bool{false}), "x": x})
	wantTensor(t, "else after failing then", res["y"], f32([]int{3}, 0, 1, 9))

	// a missing branch is refused when the session is built
	delete(g.Nodes[1].Attrs, "else_branch")
	if g.Nodes[1].OpType != "If" {
		t.Fatal("sorted order changed")
	}
	_, err = tryRun(g, 13, nil)
	wantErr(t, "If without else_branch", err, `node "if" (If)`, "else_branch")
}

// loopBody: acc_out = acc_in + x (x from the outer scope), scan = acc_out,
// cond_out computed by condNode (nil: pass cond_in through).
func loopBody(condNode *graph.Node) *graph.Graph {
	if condNode == nil {
		condNode = nd("Identity", "pass_cond", []string{"cond_in"}, []string{"cond_out"})
	}
	return &graph.Graph{
		Name:   "body",
		Inputs: []graph.ValueInfo{vi("i", tensor.Int64), vi("cond_in", tensor.Bool), vi("acc_in", tensor.Float32, 2)},
		Nodes: []*graph.Node{
			condNode,
			nd("Add", "body_add", []string{"acc_in", "x"}, []string{"acc_out"}),
			nd("Identity", "body_scan", []string{"acc_out"}, []string{"scan_out"}),
		},
		Outputs: []graph.ValueInfo{vi("cond_out", tensor.Bool), vi("acc_out", tensor.Float32, 2), vi("scan_out", tensor.Float32, 2)},
	}
}

func loopGraph(body *graph.Graph, m, cond string) *graph.Graph {
	return &graph.Graph{
		Inputs: []graph.ValueInfo{vi("x", tensor.Float32, 2), anyShape("M", tensor.Int64), anyShape("go", tensor.Bool)},
		Initializers: map[string]*tensor.Tensor{
			"zero": f32([]int{2}, 0, 0),
			"two":  tensor.Scalar(int64(2)),
		},
		Nodes:   []*graph.Node{nd("Loop", "loop", []string{m, cond, "zero"}, []string{"acc", "partials"}, "body", body)},
		Outputs: []graph.ValueInfo{vi("acc", tensor.Float32, 2), vi("partials", tensor.Float32, nil, 2)},
	}
}

func TestLoop(t *testing.T) {
	x := f32([]int{2}, 1, 10)
	yes := tensor.Scalar(true)

	// trip count only
	g := loopGraph(loopBody(nil), "M", "")
	res := runOne(t, g, 13, map[string]*tensor.Tensor{"x": x, "M": tensor.From([]int{1}, []int64{4})})
	wantTensor(t, "acc", res["acc"], f32([]int{2}, 4, 40))
	wantTensor(t, "partials", res["partials"], f32([]int{4, 2}, 1, 10, 2, 20, 3, 30, 4, 40))

	// trip count and an initial condition that is false: no iterations
	g = loopGraph(loopBody(nil), "M", "go")
	res = runOne(t, g, 13, map[string]*tensor.Tensor{"x": x, "M": tensor.Scalar(int64(4)), "go": tensor.Scalar(false)})
	wantTensor(t, "acc (no trips)", res["acc"], f32([]int{2}, 0, 0))
	if p := res["partials"]; p == nil || p.Len() != 0 {
		t.Errorf("partials after zero trips = %v", p)
	}
	// the empty scan output keeps the body output's declared element shape
	// ([0 2] here; onnxruntime gives the same)
	if p := res["partials"]; p == nil || !tensor.SameShape(p.Shape, []int{0, 2}) {
		t.Errorf("partials after zero trips has shape %v, want [0 2]", p)
	}

	// zero and negative trip counts
	for _, m := range []int64{0, -3} {
		res = runOne(t, g, 13, map[string]*tensor.Tensor{"x": x, "M": tensor.Scalar(m), "go": yes})
		wantTensor(t, "acc (M<=0)", res["acc"], f32([]int{2}, 0, 0))
	}

	// condition only: the body's cond_out = i < 2 stops after 3 trips
	g = loopGraph(loopBody(nd("Less", "body_less", []string{"i", "two"}, []string{"cond_out"})), "", "go")
	res = runOne(t, g, 13, map[string]*tensor.Tensor{"x": x, "go": yes})
	wantTensor(t, "acc (cond)", res["acc"], f32([]int{2}, 3, 30))
	wantTensor(t, "partials (cond)", res["partials"], f32([]int{3, 2}, 1, 10, 2, 20, 3, 30))

	// both: the smaller bound wins
	g = loopGraph(loopBody(nd("Less", "body_less", []string{"i", "two"}, []string{"cond_out"})), "M", "go")
	res = runOne(t, g, 13, map[string]*tensor.Tensor{"x": x, "M": tensor.Scalar(int64(2)), "go": yes})
	wantTensor(t, "acc (M and cond)", res["acc"], f32([]int{2}, 2, 20))

	// errors name the Loop node and the iteration
	g = loopGraph(loopBody(nil), "M", "")
	_, err := tryRun(g, 13, map[string]*tensor.Tensor{"x": x, "M": tensor.From([]int{2}, []int64{1, 2})})
	wantErr(t, "vector trip count", err, `node "loop" (Loop)`, "trip count")
	body := loopBody(nil)
	body.Nodes[1] = testNode("Fail", "body_fail", []string{"acc_in", "x"}, []string{"acc_out"})
	_, err = tryRun(loopGraph(body, "M", ""), 13, map[string]*tensor.Tensor{"x": x, "M": tensor.Scalar(int64(3))})
	wantErr(t, "failing body", err, `node "loop" (Loop)`, "iteration 0", `node "body_fail" (Fail)`)
	// a scan output whose shape changes between iterations
	body = loopBody(nil)
	body.Nodes[2] = nd("Concat", "grow", []string{"acc_out", "acc_in"}, []string{"scan_out"}, "axis", 0)
	body.Nodes[1] = nd("Identity", "same", []string{"acc_in"}, []string{"acc_out"})
	g = loopGraph(body, "M", "")
	g.Initializers["zero"] = f32([]int{1}, 0)
	_, err = tryRun(g, 13, map[string]*tensor.Tensor{"x": x, "M": tensor.Scalar(int64(2))})
	if err != nil {
		// the state keeps its shape, so this runs; a growing state is the error case
		t.Fatalf("steady loop: %v", err)
	}
	body = loopBody(nil)
	body.Nodes[1] = nd("Concat", "grow", []string{"acc_in", "acc_in"}, []string{"acc_out"}, "axis", 0)
	g = loopGraph(body, "M", "")
	_, err = tryRun(g, 13, map[string]*tensor.Tensor{"x": x, "M": tensor.Scalar(int64(3))})
	wantErr(t, "scan output changing shape", err, `node "loop" (Loop)`, "scan output 0")

	// a body whose signature does not fit the node is refused up front
	body = loopBody(nil)
	body.Inputs = body.Inputs[:2]
	_, err = tryRun(loopGraph(body, "M", ""), 13, nil)
	wantErr(t, "body signature", err, `node "loop" (Loop)`, "state")
}

// scanBody: s_out = s_in + x_t; y_t = s_out * k (k outer).
func scanBody() *graph.Graph {
	return &graph.Graph{
		Name:   "scan_body",
		Inputs: []graph.ValueInfo{vi("s_in", tensor.Float32, 2), vi("x_t", tensor.Float32, 2)},
		Nodes: []*graph.Node{
			nd("Add", "step_add", []string{"s_in", "x_t"}, []string{"s_out"}),
			nd("Mul", "step_mul", []string{"s_out", "k"}, []string{"y_t"}),
		},
		Outputs: []graph.ValueInfo{vi("s_out", tensor.Float32, 2), vi("y_t", tensor.Float32, 2)},
	}
}

func scanGraph(opset8 bool, attrs ...any) *graph.Graph {
	ins := []string{"s0", "xs"}
	if opset8 {
		ins = []string{"", "s0", "xs"}
	}
	attrs = append([]any{"body", scanBody(), "num_scan_inputs", 1}, attrs...)
	return &graph.Graph{
		Inputs:       []graph.ValueInfo{anyShape("s0", tensor.Float32), anyShape("xs", tensor.Float32)},
		Initializers: map[string]*tensor.Tensor{"k": f32([]int{}, 10)},
		Nodes:        []*graph.Node{nd("Scan", "scan", ins, []string{"s", "ys"}, attrs...)},
		Outputs:      []graph.ValueInfo{vi("s", tensor.Float32, nil), vi("ys", tensor.Float32, nil, nil)},
	}
}

func TestScan(t *testing.T) {
	s0 := f32([]int{2}, 0, 100)
	xs := f32([]int{3, 2}, 1, 2, 3, 4, 5, 6) // three steps of [2]
	in := map[string]*tensor.Tensor{"s0": s0, "xs": xs}

	res := runOne(t, scanGraph(false), 11, in)
	wantTensor(t, "final state", res["s"], f32([]int{2}, 9, 112))
	wantTensor(t, "ys", res["ys"], f32([]int{3, 2}, 10, 1020, 40, 1060, 90, 1120))

	// reversed scan input
	res = runOne(t, scanGraph(false, "scan_input_directions", []int64{1}), 11, in)
	wantTensor(t, "ys (reverse in)", res["ys"], f32([]int{3, 2}, 50, 1060, 80, 1100, 90, 1120))
	// reversed scan output
	res = runOne(t, scanGraph(false, "scan_output_directions", []int64{1}), 11, in)
	wantTensor(t, "ys (reverse out)", res["ys"], f32([]int{3, 2}, 90, 1120, 40, 1060, 10, 1020))

	// scanning axis 1 of a [2, 3] input, stacking outputs on axis 1
	xsT := f32([]int{2, 3}, 1, 3, 5, 2, 4, 6)
	res = runOne(t, scanGraph(false, "scan_input_axes", []int64{1}, "scan_output_axes", []int64{1}), 11, map[string]*tensor.Tensor{"s0": s0, "xs": xsT})
	wantTensor(t, "ys (axes 1)", res["ys"], f32([]int{2, 3}, 10, 40, 90, 1020, 1060, 1120))
	// negative axes mean the same
	res = runOne(t, scanGraph(false, "scan_input_axes", []int64{-1}, "scan_output_axes", []int64{-1}), 11, map[string]*tensor.Tensor{"s0": s0, "xs": xsT})
	wantTensor(t, "ys (axes -1)", res["ys"], f32([]int{2, 3}, 10, 40, 90, 1020, 1060, 1120))

	// Scan-8: a leading batch axis on state and scan inputs
	s08 := f32([]int{2, 2}, 0, 100, 1, 1)
	xs8 := f32([]int{2, 3, 2}, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 1, 1)
	res = runOne(t, scanGraph(true), 8, map[string]*tensor.Tensor{"s0": s08, "xs": xs8})
	wantTensor(t, "Scan-8 state", res["s"], f32([]int{2, 2}, 9, 112, 2, 2))
	wantTensor(t, "Scan-8 ys", res["ys"], f32([]int{2, 3, 2}, 10, 1020, 40, 1060, 90, 1120, 10, 10, 10, 10, 20, 20))

	// bad axes and shapes are errors naming the Scan node, never panics
	bad := []struct {
		name  string
		g     *graph.Graph
		opset int64
		in    map[string]*tensor.Tensor
		want  []string
	}{
		{"input axis out of range", scanGraph(false, "scan_input_axes", []int64{2}), 11, in, []string{"axis 2"}},
		{"output axis out of range", scanGraph(false, "scan_output_axes", []int64{5}), 11, in, []string{"axis 5"}},
		{"output axis negative out of range", scanGraph(false, "scan_output_axes", []int64{-4}), 11, in, []string{"axis -4"}},
		{"scalar scan input", scanGraph(false), 11, map[string]*tensor.Tensor{"s0": s0, "xs": f32([]int{}, 1)}, []string{"scan input 0"}},
		{"body shape mismatch", scanGraph(false), 11, map[string]*tensor.Tensor{"s0": f32([]int{3}, 1, 2, 3), "xs": xs}, []string{`node "step_add" (Add)`}},
		{"Scan-8 batch mismatch", scanGraph(true), 8, map[string]*tensor.Tensor{"s0": f32([]int{1, 2}, 0, 0), "xs": xs8}, []string{"batch"}},
		{"Scan-8 unbatched", scanGraph(true), 8, map[string]*tensor.Tensor{"s0": f32([]int{}, 0), "xs": xs8}, []string{"batch"}},
		{"Scan-8 omitted scan input", func() *graph.Graph {
			g := scanGraph(true)
			g.Nodes[0].Inputs[2] = ""
			return g
		}(), 8, map[string]*tensor.Tensor{"s0": s08, "xs": xs8}, []string{"missing"}},
		{"omitted scan input", func() *graph.Graph {
			g := scanGraph(false)
			g.Nodes[0].Inputs[1] = ""
			return g
		}(), 11, in, []string{"missing"}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := tryRun(c.g, c.opset, c.in)
			wantErr(t, c.name, err, append([]string{`node "scan" (Scan)`}, c.want...)...)
			if err != nil && strings.Contains(err.Error(), "panicked") {
				t.Errorf("kernel panicked: %v", err)
			}
		})
	}

	// attribute errors when the session is built
	g := scanGraph(false)
	delete(g.Nodes[0].Attrs, "num_scan_inputs")
	_, err := tryRun(g, 11, nil)
	wantErr(t, "no num_scan_inputs", err, `node "scan" (Scan)`, "num_scan_inputs")
	g = scanGraph(false, "num_scan_inputs", 3)
	_, err = tryRun(g, 11, nil)
	wantErr(t, "too many scan inputs", err, `node "scan" (Scan)`, "num_scan_inputs is 3")
}
