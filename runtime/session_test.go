package runtime_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/parallel"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// twoInputModel: a [batch, 3] float and b [batch, time] int64 feed
// sum = a + bias (fixed dim 3) and n = Cast(b) respectively; c is optional in
// the sense that only out_c needs it.
func twoInputModel() *graph.Model {
	return model(&graph.Graph{
		Name: "two",
		Inputs: []graph.ValueInfo{
			vi("a", tensor.Float32, "batch", 3),
			vi("b", tensor.Int64, "batch", "time"),
			vi("c", tensor.Float32, nil),
		},
		Initializers: map[string]*tensor.Tensor{"bias": f32([]int{3}, 1, 2, 3)},
		Nodes: []*graph.Node{
			nd("Add", "add_bias", []string{"a", "bias"}, []string{"sum"}),
			nd("Cast", "cast_b", []string{"b"}, []string{"n"}, "to", int(tensor.Float32)),
			nd("Relu", "relu_c", []string{"c"}, []string{"out_c"}),
		},
		Outputs: []graph.ValueInfo{vi("sum", tensor.Float32, "batch", 3), vi("n", tensor.Float32, "batch", "time"), vi("out_c", tensor.Float32, nil)},
	}, 13)
}

func TestInputChecks(t *testing.T) {
	s, err := runtime.NewSession(twoInputModel(), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := f32([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	b := tensor.From([]int{2, 4}, make([]int64, 8))
	c := f32([]int{5}, 1, 2, 3, 4, 5)
	// the good case first
	res, err := s.Run(map[string]*tensor.Tensor{"a": a, "b": b, "c": c})
	if err != nil {
		t.Fatal(err)
	}
	if got := res["sum"].Float32s(); !reflect.DeepEqual(got, []float32{2, 4, 6, 5, 7, 9}) {
		t.Fatalf("sum = %v", got)
	}
	type in = map[string]*tensor.Tensor
	cases := []struct {
		name    string
		inputs  in
		outputs []string
		want    []string
	}{
		{"unknown input", in{"a": a, "b": b, "c": c, "zz": a}, nil, []string{`input "zz"`, "no such input", "a, b, c"}},
		{"wrong dtype", in{"a": tensor.From([]int{2, 3}, make([]float64, 6)), "b": b, "c": c}, nil, []string{`input "a"`, "dtype float64", "expects float32"}},
		{"wrong dtype int", in{"a": a, "b": tensor.From([]int{2, 4}, make([]int32, 8)), "c": c}, nil, []string{`input "b"`, "int32", "int64"}},
		{"wrong rank", in{"a": f32([]int{6}, 1, 2, 3, 4, 5, 6), "b": b, "c": c}, nil, []string{`input "a"`, "rank 1", "rank 2", "[batch 3]"}},
		{"fixed dim contradicted", in{"a": f32([]int{3, 2}, 1, 2, 3, 4, 5, 6), "b": b, "c": c}, nil, []string{`input "a"`, "[3 2]", "[batch 3]", "dim 1 must be 3"}},
		{"symbolic dim disagrees", in{"a": a, "b": tensor.From([]int{3, 4}, make([]int64, 12)), "c": c}, nil, []string{"batch", `"a"`, `"b"`, "3", "2"}},
		{"missing input", in{"a": a, "c": c}, nil, []string{`input "b"`, "missing", "int64[batch time]"}},
		{"missing input for one output", in{"a": a, "b": b}, []string{"out_c"}, []string{`input "c"`, "missing"}},
		{"unknown output", in{"a": a, "b": b, "c": c}, []string{"sum", "nope"}, []string{`unknown output "nope"`, "sum, n, out_c"}},
		{"nil tensor", in{"a": nil, "b": b, "c": c}, nil, []string{`input "a"`, "nil"}},
		{"data disagrees with shape", in{"a": &tensor.Tensor{DType: tensor.Float32, Shape: []int{2, 3}, Data: []float32{1}}, "b": b, "c": c}, nil, []string{`input "a"`}},
		{"data of another type", in{"a": &tensor.Tensor{DType: tensor.Float32, Shape: []int{2, 3}, Data: make([]int32, 6)}, "b": b, "c": c}, nil, []string{`input "a"`}},
		{"absurd shape", in{"a": &tensor.Tensor{DType: tensor.Float32, Shape: []int{1 << 40, 3}, Data: []float32{}}, "b": b, "c": c}, nil, []string{`input "a"`, "too many"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Run(c.inputs, c.outputs...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// only what the requested outputs need must be fed
	res, err = s.Run(map[string]*tensor.Tensor{"a": a}, "sum")
	if err != nil || len(res) != 1 {
		t.Fatalf("Run(sum) with only a: %v %v", res, err)
	}
	// the symbolic dims of inputs the outputs do not need are still checked
	if _, err := s.Run(map[string]*tensor.Tensor{"a": a, "b": tensor.From([]int{7, 1}, make([]int64, 7))}, "sum"); err == nil {
		t.Errorf("inconsistent batch across inputs accepted")
	}
	var ie *ops.InputError
	if _, err := s.Run(map[string]*tensor.Tensor{"a": a}); !errors.As(err, &ie) || ie.Name != "b" || ie.Index != -1 {
		t.Errorf("missing input error = %#v", err)
	}
}

func TestPruning(t *testing.T) {
	g := &graph.Graph{
		Inputs: []graph.ValueInfo{vi("x", tensor.Float32, "n"), vi("only_bad", tensor.Float32, "n")},
		Nodes: []*graph.Node{
			testNode("Count", "count", []string{"x"}, []string{"xc"}),
			nd("Relu", "good", []string{"xc"}, []string{"good_out"}),
			testNode("Fail", "bad", []string{"xc", "only_bad"}, []string{"bad_mid"}),
			nd("Relu", "after_bad", []string{"bad_mid"}, []string{"bad_out"}),
			testNode("Count", "count_unused", []string{"x"}, []string{"unused"}),
		},
		Outputs: []graph.ValueInfo{vi("good_out", tensor.Float32, "n"), vi("bad_out", tensor.Float32, "n")},
	}
	s, err := runtime.NewSession(model(g, 13), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := f32([]int{3}, -1, 0, 2)
	counted.Store(0)
	res, err := s.Run(map[string]*tensor.Tensor{"x": x}, "good_out")
	if err != nil {
		t.Fatal(err)
	}
	if got := res["good_out"].Float32s(); !reflect.DeepEqual(got, []float32{0, 0, 2}) {
		t.Errorf("good_out = %v", got)
	}
	if len(res) != 1 {
		t.Errorf("Run returned %d outputs, want only the one asked for", len(res))
	}
	if n := counted.Load(); n != 1 {
		t.Errorf("%d Count nodes ran, want 1 (the unused one must be pruned)", n)
	}
	// an intermediate value may be asked for too
	res, err = s.Run(map[string]*tensor.Tensor{"x": x}, "xc", "good_out")
	if err != nil || res["xc"] == nil || res["good_out"] == nil {
		t.Fatalf("Run(xc, good_out) = %v, %v", res, err)
	}
	// asking for everything runs the failing branch, which names its node
	_, err = s.Run(map[string]*tensor.Tensor{"x": x, "only_bad": x})
	var ne *runtime.NodeError
	if !errors.As(err, &ne) || ne.Node != "bad" || ne.OpType != "Fail" || !errors.Is(err, errDeliberate) {
		t.Fatalf("err = %v, want the Fail node's error", err)
	}
	if !strings.Contains(err.Error(), `node "bad" (Fail)`) || !strings.Contains(err.Error(), "float32[3]") {
		t.Errorf("message %q should name the node and describe its inputs", err)
	}
	// and needs its extra input
	if _, err := s.Run(map[string]*tensor.Tensor{"x": x}, "bad_out"); err == nil || !strings.Contains(err.Error(), `"only_bad"`) {
		t.Errorf("err = %v, want the missing only_bad input", err)
	}
}

func TestKernelFaults(t *testing.T) {
	cases := []struct {
		op   string
		want []string
	}{
		{"Panic", []string{`node "boom" (Panic)`, "kernel panicked", "kaboom", "float32[2]"}},
		{"Nothing", []string{`node "boom" (Nothing)`, `did not produce output 0 "y"`}},
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			g := &graph.Graph{
				Inputs:  []graph.ValueInfo{vi("x", tensor.Float32, 2)},
				Nodes:   []*graph.Node{testNode(c.op, "boom", []string{"x"}, []string{"y"})},
				Outputs: []graph.ValueInfo{vi("y", tensor.Float32, 2)},
			}
			s, err := runtime.NewSession(model(g, 13), runtime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Run(map[string]*tensor.Tensor{"x": f32([]int{2}, 1, 2)})
			var ne *runtime.NodeError
			if !errors.As(err, &ne) {
				t.Fatalf("err = %v, want a NodeError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNewSessionErrors(t *testing.T) {
	inner := &graph.Graph{Name: "body",
		Nodes:   []*graph.Node{nd("Warp", "inner_warp", []string{"x"}, []string{"w"})},
		Outputs: []graph.ValueInfo{vi("w", tensor.Float32)}}
	custom := nd("Frob", "frob", []string{"x"}, []string{"f"})
	custom.Domain = "com.example"
	g := &graph.Graph{
		Inputs: []graph.ValueInfo{vi("x", tensor.Float32, 2), vi("c", tensor.Bool)},
		Nodes: []*graph.Node{
			nd("Unheard", "u1", []string{"x"}, []string{"u"}),
			custom,
			nd("If", "branch", []string{"c"}, []string{"i"}, "then_branch", inner, "else_branch", inner),
			nd("Relu", "fine", []string{"x"}, []string{"r"}),
		},
		Outputs: []graph.ValueInfo{vi("u", tensor.Float32)},
	}
	m := model(g, 17)
	m.Opsets["com.example"] = 4
	_, err := runtime.NewSession(m, runtime.Options{})
	var ue *runtime.UnsupportedError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v", err)
	}
	want := []runtime.UnsupportedOp{
		{Node: "u1", OpType: "Unheard", Domain: "", Opset: 17},
		{Node: "frob", OpType: "Frob", Domain: "com.example", Opset: 4},
		{Node: "inner_warp", OpType: "Warp", Domain: "", Opset: 17},
		{Node: "inner_warp", OpType: "Warp", Domain: "", Opset: 17},
	}
	if !reflect.DeepEqual(ue.Ops, want) {
		t.Errorf("unsupported = %+v\nwant %+v", ue.Ops, want)
	}
	if !strings.Contains(err.Error(), `node "frob": Frob (domain com.example, opset 4)`) {
		t.Errorf("message %q", err)
	}

	// non-tensor graph inputs and nil models are refused by name
	if _, err := runtime.NewSession(nil, runtime.Options{}); err == nil {
		t.Error("nil model accepted")
	}
	// (sequences and optionals are boxed tensors; maps are refused)
	g = &graph.Graph{Inputs: []graph.ValueInfo{{Name: "m", Kind: "map"}}, Outputs: []graph.ValueInfo{vi("m", tensor.Float32)}}
	if _, err := runtime.NewSession(model(g, 13), runtime.Options{}); err == nil || !strings.Contains(err.Error(), `"m" is a map`) {
		t.Errorf("map input: %v", err)
	}
	// a node whose attributes are wrong is named
	g = &graph.Graph{
		Inputs:  []graph.ValueInfo{vi("x", tensor.Float32, 2)},
		Nodes:   []*graph.Node{nd("Loop", "badloop", []string{"x"}, []string{"y"})},
		Outputs: []graph.ValueInfo{vi("y", tensor.Float32, 2)},
	}
	if _, err := runtime.NewSession(model(g, 13), runtime.Options{}); err == nil || !strings.Contains(err.Error(), `node "badloop" (Loop)`) || !strings.Contains(err.Error(), `"body"`) {
		t.Errorf("Loop without body: %v", err)
	}
}

func TestConcurrentRun(t *testing.T) {
	// out1 = Relu(x·W + b), out2 = Sigmoid(x·W + b) · 2
	g := &graph.Graph{
		Inputs: []graph.ValueInfo{vi("x", tensor.Float32, "batch", 4)},
		Initializers: map[string]*tensor.Tensor{
			"W":   f32([]int{4, 3}, 1, 0, -1, 0.5, 1, 0, -0.5, 0, 1, 2, -2, 0.25),
			"b":   f32([]int{3}, 0.1, -0.2, 0.3),
			"two": f32([]int{}, 2),
		},
		Nodes: []*graph.Node{
			nd("MatMul", "mm", []string{"x", "W"}, []string{"xw"}),
			nd("Add", "bias", []string{"xw", "b"}, []string{"h"}),
			nd("Relu", "relu", []string{"h"}, []string{"out1"}),
			nd("Sigmoid", "sig", []string{"h"}, []string{"s"}),
			nd("Mul", "scale", []string{"s", "two"}, []string{"out2"}),
		},
		Outputs: []graph.ValueInfo{vi("out1", tensor.Float32, "batch", 3), vi("out2", tensor.Float32, "batch", 3)},
	}
	s, err := runtime.NewSession(model(g, 13), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	input := func(batch int) *tensor.Tensor {
		v := make([]float32, batch*4)
		for i := range v {
			v[i] = float32((i*7+batch)%11) - 5
		}
		return f32([]int{batch, 4}, v...)
	}
	// reference results, computed serially
	want := map[int]map[string]*tensor.Tensor{}
	for batch := 1; batch <= 8; batch++ {
		res, err := s.Run(map[string]*tensor.Tensor{"x": input(batch)})
		if err != nil {
			t.Fatal(err)
		}
		want[batch] = res
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				batch := 1 + (w+i)%8
				outs := [][]string{nil, {"out1"}, {"out2"}, {"out2", "out1"}}[(w+i)%4]
				res, err := s.Run(map[string]*tensor.Tensor{"x": input(batch)}, outs...)
				if err != nil {
					errs <- err
					return
				}
				for name, got := range res {
					if !reflect.DeepEqual(got, want[batch][name]) {
						errs <- fmt.Errorf("worker %d batch %d: %s = %v, want %v", w, batch, name, got.Data, want[batch][name].Data)
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestWorkerPanicIsNodeError: a kernel whose parallel chunk panics on a
// worker goroutine (Threads 2) fails the run with a *NodeError naming the
// node, from Session.Run and from Executor.Run, instead of ending the
// process; the session keeps working.
func TestWorkerPanicIsNodeError(t *testing.T) {
	g := &graph.Graph{
		Inputs: []graph.ValueInfo{vi("x", tensor.Float32, 2)},
		Nodes: []*graph.Node{
			testNode("ChunkPanic", "split", []string{"x"}, []string{"y"}),
			nd("Relu", "ok", []string{"x"}, []string{"r"}),
		},
		Outputs: []graph.ValueInfo{vi("y", tensor.Float32, 2), vi("r", tensor.Float32, 2)},
	}
	s, err := runtime.NewSession(model(g, 13), runtime.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := s.NewExecutor("y")
	if err != nil {
		t.Fatal(err)
	}
	x := map[string]*tensor.Tensor{"x": f32([]int{2}, -1, 2)}
	runs := map[string]func() error{
		"Session.Run":  func() error { _, err := s.Run(x, "y"); return err },
		"Executor.Run": func() error { _, err := ex.Run(x); return err },
	}
	for name, run := range runs {
		before := chunkPanicsBesideCaller.Load()
		err := run()
		var ne *runtime.NodeError
		if !errors.As(err, &ne) || ne.Node != "split" || ne.OpType != "ChunkPanic" {
			t.Fatalf("%s: err = %v, want a *runtime.NodeError for node split", name, err)
		}
		var pe *parallel.PanicError
		if !errors.As(err, &pe) || pe.Value != "chunk kaboom" {
			t.Errorf("%s: err %v does not carry the chunk's panic", name, err)
		}
		if chunkPanicsBesideCaller.Load() == before {
			t.Errorf("%s: the panicking chunk did not run on a worker", name)
		}
	}
	out, err := s.Run(x, "r")
	if err != nil || out["r"].Float32s()[1] != 2 {
		t.Fatalf("session broken after a worker panic: %v", err)
	}
}
