package runtime_test

import (
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// lstmTrunk is x [batch, time, 3] → Transpose → LSTM(4) → Y [time, 1,
// batch, 4], Y_h [1, batch, 4], with constants for the cases to use.
func lstmTrunk(direction string, extra []*runtime.Node, out string) *runtime.Model {
	lstm := nd("LSTM", "lstm", []string{"xt", "W", "R"}, []string{"Y", "Y_h"}, "hidden_size", 4)
	lstm.Attrs["direction"] = ops.Attr{Type: ops.AttrString, String: direction}
	g := &runtime.Graph{
		Inputs: []runtime.ValueInfo{vi("x", tensor.Float32, "batch", "time", 3)},
		Initializers: map[string]*tensor.Tensor{
			"W": f32([]int{1, 16, 3}, make([]float32, 48)...), "R": f32([]int{1, 16, 4}, make([]float32, 64)...),
			"M": f32([]int{4, 2}, make([]float32, 8)...), "ax0": tensor.From([]int{1}, []int64{0}),
			"ax1": tensor.From([]int{1}, []int64{1}), "m1": tensor.From([]int{1}, []int64{-1}),
			"big": tensor.From([]int{1}, []int64{1 << 40}), "one": tensor.From([]int{1}, []int64{1}),
			"zero": tensor.Scalar(int64(0)), "last": tensor.Scalar(int64(-1)), "flat": tensor.From([]int{2}, []int64{-1, 4}),
		},
		Nodes:   append([]*runtime.Node{nd("Transpose", "tr", []string{"x"}, []string{"xt"}, "perm", []int64{1, 0, 2}), lstm}, extra...),
		Outputs: []runtime.ValueInfo{{Name: out}},
	}
	return model(g, 13)
}

// TestAnalyzeStreamRules: the time axis followed through the usual
// plumbing, and each way of looking across time refused at its node.
func TestAnalyzeStreamRules(t *testing.T) {
	sq := nd("Squeeze", "sq", []string{"Y", "ax1"}, []string{"y"}) // [time, batch, 4]
	cases := []struct {
		name, direction string
		nodes           []*runtime.Node
		out             string
		perStep         bool
		axis            int
		refusal         string // "" when streamable; else the refusing node and reason
	}{
		{"head on Y_h", "forward", []*runtime.Node{nd("Squeeze", "sqh", []string{"Y_h", "ax0"}, []string{"h"}), nd("MatMul", "head", []string{"h", "M"}, []string{"o"})}, "o", false, 0, ""},
		{"last step by Slice", "forward", []*runtime.Node{sq, nd("Slice", "last", []string{"y", "m1", "big", "ax0"}, []string{"o"})}, "o", false, 0, ""},
		{"last step by Gather", "forward", []*runtime.Node{sq, nd("Gather", "g", []string{"y", "last"}, []string{"o"})}, "o", false, 0, ""},
		{"time-distributed head", "forward", []*runtime.Node{sq, nd("Transpose", "bt", []string{"y"}, []string{"yb"}, "perm", []int64{1, 0, 2}), nd("MatMul", "td", []string{"yb", "M"}, []string{"o"})}, "o", true, 1, ""},
		{"softmax over features", "forward", []*runtime.Node{sq, nd("Softmax", "sm", []string{"y"}, []string{"o"}, "axis", -1)}, "o", true, 0, ""},
		{"reverse", "reverse", []*runtime.Node{nd("Identity", "id", []string{"Y_h"}, []string{"o"})}, "o", false, 0, `"lstm" (LSTM) runs in reverse direction`},
		{"bidirectional", "bidirectional", []*runtime.Node{nd("Identity", "id", []string{"Y_h"}, []string{"o"})}, "o", false, 0, `"lstm" (LSTM) is bidirectional`},
		{"squeeze without axes", "forward", []*runtime.Node{nd("Squeeze", "sq0", []string{"Y"}, []string{"o"})}, "o", false, 0, `"sq0" (Squeeze) squeezes without axes`},
		{"mean over time", "forward", []*runtime.Node{sq, nd("ReduceMean", "pool", []string{"y"}, []string{"o"}, "axes", []int64{0})}, "o", false, 0, `"pool" (ReduceMean) reduces over the time axis`},
		{"softmax over time", "forward", []*runtime.Node{sq, nd("Softmax", "att", []string{"y"}, []string{"o"}, "axis", 0)}, "o", false, 0, `"att" (Softmax) normalises over the time axis`},
		{"first step", "forward", []*runtime.Node{sq, nd("Slice", "first", []string{"y", "zero1", "one", "ax0"}, []string{"o"})}, "o", false, 0, `"first" (Slice) slices a window`},
		{"gather step 0", "forward", []*runtime.Node{sq, nd("Gather", "g0", []string{"y", "zero"}, []string{"o"})}, "o", false, 0, `"g0" (Gather) gathers time step 0`},
		{"flatten time into rows", "forward", []*runtime.Node{sq, nd("Reshape", "rs", []string{"y", "flat"}, []string{"o"})}, "o", false, 0, `"rs" (Reshape) reshapes the time axis`},
		{"concat along time", "forward", []*runtime.Node{sq, nd("Concat", "cat", []string{"y", "y"}, []string{"o"}, "axis", 0)}, "o", false, 0, `"cat" (Concat) joins or splits along the time axis`},
		{"per-step plus summary", "forward", []*runtime.Node{sq, nd("Add", "mix", []string{"y", "Y_h"}, []string{"o"})}, "o", false, 0, `"mix" (Add) combines a per-step value with the prefix summary value "Y_h"`},
		{"cumsum over time", "forward", []*runtime.Node{sq, nd("CumSum", "cs", []string{"y", "zero"}, []string{"o"})}, "o", false, 0, `"cs" (CumSum) accumulates over the time axis`},
		{"sequence length used", "forward", []*runtime.Node{nd("Shape", "shp", []string{"x"}, []string{"s"}), nd("Gather", "T", []string{"s", "ax1"}, []string{"t"}), nd("ConstantOfShape", "cs", []string{"t"}, []string{"o"})}, "o", false, 0, `"cs" (ConstantOfShape) uses the sequence length`},
		{"batch from Shape is fine", "forward", []*runtime.Node{nd("Shape", "shp", []string{"x"}, []string{"s"}), nd("Gather", "B", []string{"s", "ax0"}, []string{"b"}), nd("ConstantOfShape", "cs", []string{"b"}, []string{"z"}), nd("Add", "init", []string{"z", "Y_h"}, []string{"o"})}, "o", false, 0, ""},
		{"unknown op", "forward", []*runtime.Node{sq, nd("Hardmax", "hm", []string{"y"}, []string{"o"}, "axis", 0)}, "o", false, 0, `"hm" (Hardmax) normalises over the time axis`},
		{"op the analysis does not know", "forward", []*runtime.Node{sq, nd("DepthToSpace", "d2s", []string{"y"}, []string{"o"})}, "o", false, 0, `"d2s" (DepthToSpace) is an op the analysis does not know`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := lstmTrunk(c.direction, c.nodes, c.out)
			m.Graph.Initializers["zero1"] = tensor.From([]int{1}, []int64{0})
			plan, err := runtime.AnalyzeStream(m, 1)
			if c.refusal != "" {
				if err == nil || !strings.Contains(err.Error(), c.refusal) {
					t.Fatalf("got %v, want a refusal containing %s", err, c.refusal)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Recurrent) != 1 || plan.Recurrent[0] != "lstm" {
				t.Errorf("carried %v, want [lstm]", plan.Recurrent)
			}
			o := plan.Outputs[0]
			if o.PerStep != c.perStep || (c.perStep && o.TimeAxis != c.axis) {
				t.Errorf("output %+v, want per-step %v axis %d", o, c.perStep, c.axis)
			}
		})
	}
}
