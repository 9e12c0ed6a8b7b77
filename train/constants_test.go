package train

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/train/autodiff"
)

// zeroStateLSTM builds the pattern tf2onnx writes for a Keras LSTM: the
// zero initial state is a scalar float constant ("lstm/zeros/Const:0")
// expanded to [batch, hidden] from the input's Shape, fed as initial_h and
// initial_c; a Dense head (MatMul + Add) reads the last hidden state.
func zeroStateLSTM(rng *rand.Rand) *graph.Model {
	const I, H = 3, 4
	r := func(shape ...int) *tensor.Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.4)
		}
		return tensor.From(shape, v)
	}
	ints := func(v ...int64) graph.Attr { return graph.Attr{Type: graph.AttrInts, Ints: v} }
	nd := func(op, name string, in, out []string, attrs graph.Attrs) *graph.Node {
		if attrs == nil {
			attrs = graph.Attrs{}
		}
		return &graph.Node{Name: name, OpType: op, Inputs: in, Outputs: out, Attrs: attrs}
	}
	g := &graph.Graph{Name: "zero_state"}
	g.Inputs = []graph.ValueInfo{{Name: "x", DType: tensor.Float32, Kind: "tensor", HasShape: true,
		Shape: []graph.Dim{{Value: -1, Param: "batch"}, {Value: 5}, {Value: I}}}}
	g.Outputs = []graph.ValueInfo{{Name: "y", DType: tensor.Float32, Kind: "tensor"}}
	g.AddInitializer("lstm/zeros/Const:0", tensor.Scalar(float32(0)))
	g.AddInitializer("zero_idx", tensor.Scalar(int64(0)))
	g.AddInitializer("hidden", tensor.From([]int{1}, []int64{H}))
	g.AddInitializer("W", r(1, 4*H, I))
	g.AddInitializer("R", r(1, 4*H, H))
	g.AddInitializer("B", r(1, 8*H))
	g.AddInitializer("dense/kernel", r(H, 2))
	g.AddInitializer("dense/bias", r(2))
	g.Nodes = []*graph.Node{
		nd("Shape", "lstm/Shape", []string{"x"}, []string{"shape"}, nil),
		nd("Gather", "lstm/strided_slice", []string{"shape", "zero_idx"}, []string{"batch"}, nil),
		nd("Unsqueeze", "lstm/zeros/packed", []string{"batch"}, []string{"batch1"}, graph.Attrs{"axes": ints(0)}),
		nd("Concat", "lstm/zeros/shape", []string{"batch1", "hidden"}, []string{"zshape"}, graph.Attrs{"axis": {Type: graph.AttrInt, Int: 0}}),
		nd("Expand", "lstm/zeros", []string{"lstm/zeros/Const:0", "zshape"}, []string{"zeros"}, nil),
		nd("Unsqueeze", "lstm/h0", []string{"zeros"}, []string{"h0"}, graph.Attrs{"axes": ints(0)}),
		nd("Transpose", "lstm/transpose", []string{"x"}, []string{"xt"}, graph.Attrs{"perm": ints(1, 0, 2)}),
		nd("LSTM", "lstm/LSTM", []string{"xt", "W", "R", "B", "", "h0", "h0"}, []string{"Y", "Yh", "Yc"},
			graph.Attrs{"hidden_size": {Type: graph.AttrInt, Int: H}}),
		nd("Squeeze", "lstm/last", []string{"Yh"}, []string{"h"}, graph.Attrs{"axes": ints(0)}),
		nd("MatMul", "dense/MatMul", []string{"h", "dense/kernel"}, []string{"hk"}, nil),
		nd("Add", "dense/BiasAdd", []string{"hk", "dense/bias"}, []string{"y"}, nil),
	}
	return &graph.Model{Graph: g, IRVersion: 7, Opsets: map[string]int64{"": 11}}
}

// TestConstantsNeverTrain: the zero-state constant is not a parameter, and
// after training every constant is bit-identical while the LSTM moved.
func TestConstantsNeverTrain(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	m := zeroStateLSTM(rng)
	params, constants := autodiff.Parameters(m)
	if strings.Join(constants, ",") != "lstm/zeros/Const:0" {
		t.Fatalf("constants %v, want [lstm/zeros/Const:0]", constants)
	}
	if strings.Join(params, ",") != "W,R,B,dense/kernel,dense/bias" {
		t.Fatalf("parameters %v", params)
	}
	before := map[string][]float32{}
	for _, name := range graph.FloatParams(m.Graph) {
		before[name] = append([]float32(nil), m.Graph.Initializers[name].Float32s()...)
	}
	const n = 32
	x, y := make([]float32, n*5*3), make([]float32, n*2)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := range y {
		y[i] = float32(rng.NormFloat64())
	}
	d, err := NewDataset(map[string]*tensor.Tensor{"x": tensor.From([]int{n, 5, 3}, x), "y": tensor.From([]int{n, 2}, y)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Fit(context.Background(), m, Config{Losses: map[string]Loss{"y": MSE},
		Optimizer: OptimizerConfig{Kind: Adam, LR: 0.05}, BatchSize: 8, Epochs: 2}, d, nil, Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Trainable, ",") != strings.Join(params, ",") {
		t.Errorf("trained %v, want %v", res.Trainable, params)
	}
	for _, name := range constants {
		if got := m.Graph.Initializers[name].Float32s(); got[0] != before[name][0] {
			t.Errorf("constant %q changed from %g to %g", name, before[name][0], got[0])
		}
	}
	if m.Graph.Initializers["R"].Float32s()[0] == before["R"][0] {
		t.Errorf("the LSTM's recurrent weights did not change")
	}
}

// TestNoGradientPathIsNamed: a task whose only path from the weights runs
// through an op without a gradient is refused, naming that node.
func TestNoGradientPathIsNamed(t *testing.T) {
	g := &graph.Graph{Name: "argmax_only"}
	g.Inputs = []graph.ValueInfo{{Name: "x", DType: tensor.Float32, Kind: "tensor"}}
	g.Outputs = []graph.ValueInfo{{Name: "y", DType: tensor.Float32, Kind: "tensor"}}
	g.AddInitializer("W", tensor.From([]int{3, 4}, make([]float32, 12)))
	g.Nodes = []*graph.Node{
		{Name: "mm", OpType: "MatMul", Inputs: []string{"x", "W"}, Outputs: []string{"s"}, Attrs: graph.Attrs{}},
		{Name: "pick", OpType: "ArgMax", Inputs: []string{"s"}, Outputs: []string{"k"}, Attrs: graph.Attrs{"axis": {Type: graph.AttrInt, Int: 1}}},
		{Name: "as_float", OpType: "Cast", Inputs: []string{"k"}, Outputs: []string{"y"}, Attrs: graph.Attrs{"to": {Type: graph.AttrInt, Int: int64(tensor.Float32)}}},
	}
	m := &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": 13}}
	_, err := NewTrainer(m, Config{Losses: map[string]Loss{"y": MSE}, Optimizer: OptimizerConfig{Kind: SGD, LR: 0.1}})
	if err == nil || !strings.Contains(err.Error(), `node "pick" (ArgMax)`) {
		t.Fatalf("got %v, want an error naming the ArgMax node", err)
	}
	t.Log(err)
}

// TestSampleWeightsInFit: a "sample_weight/OUT" array of 2s trains exactly
// as a loss weight of 2.
func TestSampleWeightsInFit(t *testing.T) {
	run := func(sampleWeights bool) *graph.Model {
		rng := rand.New(rand.NewPCG(3, 5))
		m := zeroStateLSTM(rng)
		const n = 16
		x, y, w := make([]float32, n*5*3), make([]float32, n*2), make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		for i := range y {
			y[i] = float32(rng.NormFloat64())
		}
		for i := range w {
			w[i] = 2
		}
		arrays := map[string]*tensor.Tensor{"x": tensor.From([]int{n, 5, 3}, x), "y": tensor.From([]int{n, 2}, y)}
		cfg := Config{Losses: map[string]Loss{"y": MSE}, Optimizer: OptimizerConfig{Kind: SGD, LR: 0.1}, BatchSize: 4, Epochs: 2}
		if sampleWeights {
			arrays[SampleWeightPrefix+"y"] = tensor.From([]int{n}, w)
		} else {
			cfg.LossWeights = map[string]float64{"y": 2}
		}
		d, err := NewDataset(arrays)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Fit(context.Background(), m, cfg, d, nil, Callbacks{}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := run(true), run(false)
	for name, v := range a.Graph.Initializers {
		if v.DType == tensor.Float32 && !slicesEqual(v.Float32s(), b.Graph.Initializers[name].Float32s()) {
			t.Errorf("%s differs between sample weights of 2 and a loss weight of 2", name)
		}
	}
	_, err := NewTrainer(zeroStateLSTM(rand.New(rand.NewPCG(1, 1))), Config{Losses: map[string]Loss{"y": MSE}, ClassWeights: map[string][]float64{"y": {1, 2}}})
	if err == nil || !strings.Contains(err.Error(), "classification") {
		t.Errorf("class weights on an mse task: got %v", err)
	}
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestCheckDataSampleWeights: CheckData keeps a task's "sample_weight/OUT"
// array and refuses a weight that is negative, naming the array.
func TestCheckDataSampleWeights(t *testing.T) {
	m := zeroStateLSTM(rand.New(rand.NewPCG(1, 1)))
	tr, err := NewTrainer(m, Config{Losses: map[string]Loss{"y": MSE}, Optimizer: OptimizerConfig{Kind: SGD, LR: 0.1}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	for _, tc := range []struct {
		w    []float32
		want string // "" for no error
	}{{[]float32{1, 2, 0, 1}, ""}, {[]float32{1, -2, 0, 1}, `"sample_weight/y"`}} {
		d, err := NewDataset(map[string]*tensor.Tensor{
			"x": tensor.From([]int{n, 5, 3}, make([]float32, n*5*3)), "y": tensor.From([]int{n, 2}, make([]float32, n*2)),
			SampleWeightPrefix + "y": tensor.From([]int{n}, tc.w),
		})
		if err != nil {
			t.Fatal(err)
		}
		sel, notes, err := tr.CheckData(d, "training")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("weights %v: %v", tc.w, err)
		case tc.want == "" && (sel.Arrays[SampleWeightPrefix+"y"] == nil || len(notes) != 0):
			t.Errorf("weights %v: the sample weights were dropped (notes %q)", tc.w, notes)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("weights %v: got %v, want an error naming %s", tc.w, err, tc.want)
		}
	}
}
