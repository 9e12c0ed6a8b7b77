package math

import (
	gomath "math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func f32(shape []int, v ...float32) *tensor.Tensor { return tensor.From(shape, v) }
func f64(shape []int, v ...float64) *tensor.Tensor { return tensor.From(shape, v) }
func i32(shape []int, v ...int32) *tensor.Tensor   { return tensor.From(shape, v) }
func i64(shape []int, v ...int64) *tensor.Tensor   { return tensor.From(shape, v) }
func i8(shape []int, v ...int8) *tensor.Tensor     { return tensor.From(shape, v) }
func u8(shape []int, v ...uint8) *tensor.Tensor    { return tensor.From(shape, v) }
func bl(shape []int, v ...bool) *tensor.Tensor     { return tensor.From(shape, v) }
func str(shape []int, v ...string) *tensor.Tensor  { return tensor.From(shape, v) }
func f16(shape []int, v ...float32) *tensor.Tensor {
	d := make([]tensor.Float16Bits, len(v))
	for i, x := range v {
		d[i] = tensor.Float32ToFloat16(x)
	}
	return tensor.From(shape, d)
}

var sc = []int{} // scalar shape

func fattr(v float32) graph.Attr { return graph.Attr{Type: graph.AttrFloat, Float: v} }
func iattr(v int64) graph.Attr   { return graph.Attr{Type: graph.AttrInt, Int: v} }
func sattr(v string) graph.Attr  { return graph.Attr{Type: graph.AttrString, String: v} }

func runOp(op string, opset int, attrs graph.Attrs, nOut int, in ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	k, err := ops.New(&ops.Config{Name: "t", OpType: op, Opset: opset, Attrs: attrs, NumInputs: len(in), NumOutputs: nOut})
	if err != nil {
		return nil, err
	}
	return k.Run(in)
}

// close compares two tensors: dtype, shape, and values within 1e-6 relative
// (exact for non-floats; NaN equals NaN).
func same(t *testing.T, got, want *tensor.Tensor) {
	t.Helper()
	if got == nil {
		t.Fatalf("got nil, want %v", want)
	}
	if got.DType != want.DType || !tensor.SameShape(got.Shape, want.Shape) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got.DType == tensor.String || got.DType == tensor.Bool {
		if !reflect.DeepEqual(got.Data, want.Data) {
			t.Fatalf("got %v, want %v", got.Data, want.Data)
		}
		return
	}
	g, _ := tensor.AsFloat64(got)
	w, _ := tensor.AsFloat64(want)
	for i := range w {
		if gomath.IsNaN(g[i]) && gomath.IsNaN(w[i]) {
			continue
		}
		if d := gomath.Abs(g[i] - w[i]); d > 1e-6*gomath.Max(1, gomath.Abs(w[i])) {
			t.Fatalf("element %d: got %v, want %v\n got %v\nwant %v", i, g[i], w[i], g, w)
		}
	}
}

func TestOps(t *testing.T) {
	nan := float32(gomath.NaN())
	inf := float32(gomath.Inf(1))
	cases := []struct {
		name   string
		op     string
		opset  int
		attrs  graph.Attrs
		in     []*tensor.Tensor
		want   []*tensor.Tensor
		errHas string
	}{
		// Binary arithmetic and every broadcast path.
		{name: "add same", op: "Add", in: []*tensor.Tensor{f32([]int{2}, 1, 2), f32([]int{2}, 10, 20)}, want: []*tensor.Tensor{f32([]int{2}, 11, 22)}},
		{name: "add bias", op: "Add", in: []*tensor.Tensor{f32([]int{2, 3}, 1, 2, 3, 4, 5, 6), f32([]int{3}, 10, 20, 30)}, want: []*tensor.Tensor{f32([]int{2, 3}, 11, 22, 33, 14, 25, 36)}},
		{name: "sub scalar left", op: "Sub", in: []*tensor.Tensor{f32(sc, 10), f32([]int{3}, 1, 2, 3)}, want: []*tensor.Tensor{f32([]int{3}, 9, 8, 7)}},
		{name: "sub scalar right", op: "Sub", in: []*tensor.Tensor{f32([]int{3}, 1, 2, 3), f32([]int{1}, 1)}, want: []*tensor.Tensor{f32([]int{3}, 0, 1, 2)}},
		{name: "scalar rank grows", op: "Add", in: []*tensor.Tensor{f32([]int{2}, 1, 2), f32([]int{1, 1}, 1)}, want: []*tensor.Tensor{f32([]int{1, 2}, 2, 3)}},
		{name: "outer", op: "Mul", in: []*tensor.Tensor{f32([]int{2, 1}, 1, 2), f32([]int{1, 3}, 1, 10, 100)}, want: []*tensor.Tensor{f32([]int{2, 3}, 1, 10, 100, 2, 20, 200)}},
		{name: "channel", op: "Add", in: []*tensor.Tensor{f32([]int{1, 2, 2, 2}, 0, 1, 2, 3, 4, 5, 6, 7), f32([]int{2, 1, 1}, 100, 200)}, want: []*tensor.Tensor{f32([]int{1, 2, 2, 2}, 100, 101, 102, 103, 204, 205, 206, 207)}},
		{name: "empty", op: "Add", in: []*tensor.Tensor{f32([]int{0, 3}), f32([]int{3}, 1, 2, 3)}, want: []*tensor.Tensor{f32([]int{0, 3})}},
		{name: "div int trunc", op: "Div", in: []*tensor.Tensor{i32([]int{4}, 7, -7, 7, -7), i32([]int{4}, 2, 2, -2, -2)}, want: []*tensor.Tensor{i32([]int{4}, 3, -3, -3, 3)}},
		{name: "div int zero", op: "Div", in: []*tensor.Tensor{i32([]int{1}, 7), i32([]int{1}, 0)}, errHas: "division by zero"},
		{name: "div float zero", op: "Div", in: []*tensor.Tensor{f32([]int{2}, 1, -1), f32(sc, 0)}, want: []*tensor.Tensor{f32([]int{2}, inf, -inf)}},
		{name: "uint8 wrap", op: "Add", in: []*tensor.Tensor{u8([]int{1}, 250), u8([]int{1}, 10)}, want: []*tensor.Tensor{u8([]int{1}, 4)}},
		{name: "dtype mismatch", op: "Add", in: []*tensor.Tensor{f32([]int{1}, 1), f64([]int{1}, 1)}, errHas: "input 1"},
		{name: "bad broadcast", op: "Add", in: []*tensor.Tensor{f32([]int{2}, 1, 2), f32([]int{3}, 1, 2, 3)}, errHas: "broadcast"},
		{name: "add f16", op: "Add", in: []*tensor.Tensor{f16([]int{2}, 1, 2), f16([]int{2}, 0.5, 0.25)}, want: []*tensor.Tensor{f16([]int{2}, 1.5, 2.25)}},

		// Pow: result has the base's dtype.
		{name: "pow int int", op: "Pow", in: []*tensor.Tensor{i32([]int{3}, 2, -3, 5), i32([]int{3}, 10, 3, 0)}, want: []*tensor.Tensor{i32([]int{3}, 1024, -27, 1)}},
		{name: "pow float int64", op: "Pow", in: []*tensor.Tensor{f32([]int{2}, 2, 3), i64([]int{2}, 3, -1)}, want: []*tensor.Tensor{f32([]int{2}, 8, 1.0/3)}},
		{name: "pow int float", op: "Pow", in: []*tensor.Tensor{i64([]int{2}, 2, 9), f32([]int{2}, 0.5, 0.5)}, want: []*tensor.Tensor{i64([]int{2}, 1, 3)}},
		{name: "pow square", op: "Pow", in: []*tensor.Tensor{f32([]int{3}, 1, -2, 3), f32(sc, 2)}, want: []*tensor.Tensor{f32([]int{3}, 1, 4, 9)}},
		{name: "pow sqrt", op: "Pow", in: []*tensor.Tensor{f64([]int{2}, 4, 9), f64(sc, 0.5)}, want: []*tensor.Tensor{f64([]int{2}, 2, 3)}},

		// Mod.
		{name: "mod floored", op: "Mod", opset: 13, in: []*tensor.Tensor{i32([]int{4}, 5, -5, 5, -5), i32([]int{4}, 3, 3, -3, -3)}, want: []*tensor.Tensor{i32([]int{4}, 2, 1, -1, -2)}},
		{name: "mod fmod", op: "Mod", opset: 13, attrs: graph.Attrs{"fmod": iattr(1)}, in: []*tensor.Tensor{i32([]int{4}, 5, -5, 5, -5), i32([]int{4}, 3, 3, -3, -3)}, want: []*tensor.Tensor{i32([]int{4}, 2, -2, 2, -2)}},
		{name: "mod float fmod", op: "Mod", opset: 13, attrs: graph.Attrs{"fmod": iattr(1)}, in: []*tensor.Tensor{f32([]int{2}, 5.5, -5.5), f32(sc, 2)}, want: []*tensor.Tensor{f32([]int{2}, 1.5, -1.5)}},
		{name: "mod zero", op: "Mod", opset: 13, in: []*tensor.Tensor{i64([]int{1}, 5), i64([]int{1}, 0)}, errHas: "by zero"},

		// Comparisons and logic.
		{name: "less bcast", op: "Less", in: []*tensor.Tensor{f32([]int{2, 2}, 1, 2, 3, 4), f32([]int{2}, 2, 2)}, want: []*tensor.Tensor{bl([]int{2, 2}, true, false, false, false)}},
		{name: "ge", op: "GreaterOrEqual", in: []*tensor.Tensor{i64([]int{3}, 1, 2, 3), i64(sc, 2)}, want: []*tensor.Tensor{bl([]int{3}, false, true, true)}},
		{name: "equal nan", op: "Equal", in: []*tensor.Tensor{f32([]int{2}, nan, 1), f32([]int{2}, nan, 1)}, want: []*tensor.Tensor{bl([]int{2}, false, true)}},
		{name: "equal string", op: "Equal", in: []*tensor.Tensor{str([]int{2}, "a", "b"), str(sc, "a")}, want: []*tensor.Tensor{bl([]int{2}, true, false)}},
		{name: "xor", op: "Xor", in: []*tensor.Tensor{bl([]int{2, 2}, true, true, false, false), bl([]int{2}, true, false)}, want: []*tensor.Tensor{bl([]int{2, 2}, false, true, true, false)}},
		{name: "and not bool", op: "And", in: []*tensor.Tensor{f32([]int{1}, 1), bl([]int{1}, true)}, errHas: "want bool"},
		{name: "not", op: "Not", in: []*tensor.Tensor{bl([]int{2}, true, false)}, want: []*tensor.Tensor{bl([]int{2}, false, true)}},
		{name: "bitshift", op: "BitShift", opset: 11, attrs: graph.Attrs{"direction": sattr("LEFT")}, in: []*tensor.Tensor{u8([]int{2}, 1, 3), u8([]int{2}, 2, 1)}, want: []*tensor.Tensor{u8([]int{2}, 4, 6)}},

		// Unary.
		{name: "round half even", op: "Round", in: []*tensor.Tensor{f32([]int{6}, 0.5, 1.5, 2.5, -0.5, -1.5, 2.6)}, want: []*tensor.Tensor{f32([]int{6}, 0, 2, 2, 0, -2, 3)}},
		{name: "relu", op: "Relu", in: []*tensor.Tensor{f32([]int{3}, -1, 0, 2)}, want: []*tensor.Tensor{f32([]int{3}, 0, 0, 2)}},
		{name: "relu int8", op: "Relu", opset: 14, in: []*tensor.Tensor{i8([]int{3}, -1, 0, 2)}, want: []*tensor.Tensor{i8([]int{3}, 0, 0, 2)}},
		{name: "abs int8", op: "Abs", in: []*tensor.Tensor{i8([]int{2}, -5, 5)}, want: []*tensor.Tensor{i8([]int{2}, 5, 5)}},
		{name: "sign int", op: "Sign", in: []*tensor.Tensor{i32([]int{3}, -5, 0, 7)}, want: []*tensor.Tensor{i32([]int{3}, -1, 0, 1)}},
		{name: "sign float nan", op: "Sign", in: []*tensor.Tensor{f32([]int{3}, -5, nan, 7)}, want: []*tensor.Tensor{f32([]int{3}, -1, nan, 1)}},
		{name: "floor int unsupported", op: "Floor", in: []*tensor.Tensor{i32([]int{1}, 1)}, errHas: "not supported"},
		{name: "sigmoid extremes", op: "Sigmoid", in: []*tensor.Tensor{f32([]int{3}, -1000, 0, 1000)}, want: []*tensor.Tensor{f32([]int{3}, 0, 0.5, 1)}},
		{name: "softplus big", op: "Softplus", in: []*tensor.Tensor{f32([]int{3}, -100, 0, 100)}, want: []*tensor.Tensor{f32([]int{3}, float32(gomath.Exp(-100)), float32(gomath.Ln2), 100)}},
		{name: "leakyrelu default", op: "LeakyRelu", in: []*tensor.Tensor{f32([]int{2}, -10, 3)}, want: []*tensor.Tensor{f32([]int{2}, -0.1, 3)}},
		{name: "elu alpha", op: "Elu", attrs: graph.Attrs{"alpha": fattr(2)}, in: []*tensor.Tensor{f64([]int{2}, -1, 3)}, want: []*tensor.Tensor{f64([]int{2}, 2*(gomath.Exp(-1)-1), 3)}},
		{name: "selu default", op: "Selu", in: []*tensor.Tensor{f32([]int{2}, -1, 2)}, want: []*tensor.Tensor{f32([]int{2}, float32(1.05070102214813232421875*1.67326319217681884765625*(gomath.Exp(-1)-1)), float32(2*1.05070102214813232421875))}},
		{name: "celu", op: "Celu", attrs: graph.Attrs{"alpha": fattr(2)}, in: []*tensor.Tensor{f32([]int{2}, -2, 2)}, want: []*tensor.Tensor{f32([]int{2}, float32(2*(gomath.Exp(-1)-1)), 2)}},
		{name: "hardsigmoid", op: "HardSigmoid", in: []*tensor.Tensor{f32([]int{3}, -10, 0, 1)}, want: []*tensor.Tensor{f32([]int{3}, 0, 0.5, 0.7)}},
		{name: "hardswish", op: "HardSwish", in: []*tensor.Tensor{f32([]int{3}, -4, 1, 4)}, want: []*tensor.Tensor{f32([]int{3}, 0, float32(1*(1.0/6+0.5)), 4)}},
		{name: "thresholdedrelu", op: "ThresholdedRelu", in: []*tensor.Tensor{f32([]int{3}, 0.5, 1, 2)}, want: []*tensor.Tensor{f32([]int{3}, 0, 0, 2)}},
		{name: "softsign", op: "Softsign", in: []*tensor.Tensor{f32([]int{2}, -1, 3)}, want: []*tensor.Tensor{f32([]int{2}, -0.5, 0.75)}},
		{name: "erf f16", op: "Erf", in: []*tensor.Tensor{f16([]int{2}, 0, 1)}, want: []*tensor.Tensor{f16([]int{2}, 0, float32(gomath.Erf(1)))}},
		{name: "identity string", op: "Identity", in: []*tensor.Tensor{str([]int{1}, "x")}, want: []*tensor.Tensor{str([]int{1}, "x")}},
		{name: "isinf", op: "IsInf", opset: 10, attrs: graph.Attrs{"detect_negative": iattr(0)}, in: []*tensor.Tensor{f32([]int{3}, inf, -inf, 1)}, want: []*tensor.Tensor{bl([]int{3}, true, false, false)}},

		// PRelu, Clip.
		{name: "prelu channel", op: "PRelu", in: []*tensor.Tensor{f32([]int{2, 2}, -1, -1, 1, -2), f32([]int{2}, 0.5, 2)}, want: []*tensor.Tensor{f32([]int{2, 2}, -0.5, -2, 1, -4)}},
		{name: "prelu slope too big", op: "PRelu", in: []*tensor.Tensor{f32([]int{2}, -1, -1), f32([]int{2, 2}, 1, 2, 3, 4)}, errHas: "does not broadcast"},
		{name: "clip attrs", op: "Clip", opset: 6, attrs: graph.Attrs{"min": fattr(-1), "max": fattr(1)}, in: []*tensor.Tensor{f32([]int{3}, -5, 0.5, 5)}, want: []*tensor.Tensor{f32([]int{3}, -1, 0.5, 1)}},
		{name: "clip attrs default", op: "Clip", opset: 6, attrs: graph.Attrs{"min": fattr(0)}, in: []*tensor.Tensor{f64([]int{2}, -5, 5)}, want: []*tensor.Tensor{f64([]int{2}, 0, 5)}},
		{name: "clip int8 max only", op: "Clip", opset: 13, in: []*tensor.Tensor{i8([]int{3}, -100, 0, 100), nil, i8(sc, 10)}, want: []*tensor.Tensor{i8([]int{3}, -100, 0, 10)}},
		{name: "clip inputs", op: "Clip", opset: 11, in: []*tensor.Tensor{f32([]int{3}, -5, 0.5, 5), f32(sc, -1), f32(sc, 1)}, want: []*tensor.Tensor{f32([]int{3}, -1, 0.5, 1)}},
		{name: "clip none", op: "Clip", opset: 13, in: []*tensor.Tensor{f32([]int{2}, -5, 5)}, want: []*tensor.Tensor{f32([]int{2}, -5, 5)}},
		{name: "clip bound dtype", op: "Clip", opset: 13, in: []*tensor.Tensor{f32([]int{2}, -5, 5), f64(sc, 0)}, errHas: "input 1"},

		// Variadic.
		{name: "max 3 bcast", op: "Max", opset: 13, in: []*tensor.Tensor{f32([]int{3}, 1, 5, 3), f32([]int{2, 1}, 2, 4), f32(sc, 0)}, want: []*tensor.Tensor{f32([]int{2, 3}, 2, 5, 3, 4, 5, 4)}},
		{name: "min nan", op: "Min", opset: 13, in: []*tensor.Tensor{f32([]int{2}, 1, nan), f32([]int{2}, nan, 1)}, want: []*tensor.Tensor{f32([]int{2}, nan, nan)}},
		{name: "max f16", op: "Max", opset: 13, in: []*tensor.Tensor{f16([]int{2}, 1, 4), f16([]int{2}, 3, 2)}, want: []*tensor.Tensor{f16([]int{2}, 3, 4)}},
		{name: "max uint64", op: "Max", opset: 13, in: []*tensor.Tensor{tensor.From([]int{2}, []uint64{1, 1 << 63}), tensor.From([]int{2}, []uint64{2, 1})}, want: []*tensor.Tensor{tensor.From([]int{2}, []uint64{2, 1 << 63})}},
		{name: "sum one", op: "Sum", in: []*tensor.Tensor{f32([]int{2}, 1, 2)}, want: []*tensor.Tensor{f32([]int{2}, 1, 2)}},
		{name: "mean 3", op: "Mean", in: []*tensor.Tensor{f32([]int{2}, 1, 2), f32([]int{2}, 3, 4), f32(sc, 5)}, want: []*tensor.Tensor{f32([]int{2}, 3, 11.0/3)}},

		// Where.
		{name: "where bcast", op: "Where", opset: 9, in: []*tensor.Tensor{bl([]int{2, 1}, true, false), f32([]int{3}, 1, 2, 3), f32(sc, -1)}, want: []*tensor.Tensor{f32([]int{2, 3}, 1, 2, 3, -1, -1, -1)}},
		{name: "where string", op: "Where", opset: 16, in: []*tensor.Tensor{bl([]int{2}, true, false), str([]int{2}, "a", "b"), str([]int{2}, "c", "d")}, want: []*tensor.Tensor{str([]int{2}, "a", "d")}},
		{name: "where cond dtype", op: "Where", opset: 9, in: []*tensor.Tensor{f32([]int{1}, 1), f32([]int{1}, 1), f32([]int{1}, 1)}, errHas: "want bool"},

		// Cast.
		{name: "cast float to int trunc", op: "Cast", opset: 13, attrs: graph.Attrs{"to": iattr(int64(tensor.Int32))}, in: []*tensor.Tensor{f32([]int{3}, 1.9, -1.9, 0)}, want: []*tensor.Tensor{i32([]int{3}, 1, -1, 0)}},
		{name: "cast to bool", op: "Cast", opset: 13, attrs: graph.Attrs{"to": iattr(int64(tensor.Bool))}, in: []*tensor.Tensor{f32([]int{3}, 0.1, 0, -2)}, want: []*tensor.Tensor{bl([]int{3}, true, false, true)}},
		{name: "cast to string", op: "Cast", opset: 13, attrs: graph.Attrs{"to": iattr(int64(tensor.String))}, in: []*tensor.Tensor{f32([]int{7}, 1, 0.039187793, 1e-5, 1.5e17, nan, -inf, 0)}, want: []*tensor.Tensor{str([]int{7}, "1.0", "0.039187793", "1e-05", "1.5e+17", "NaN", "-INF", "0.0")}},
		{name: "cast int to string", op: "Cast", opset: 13, attrs: graph.Attrs{"to": iattr(int64(tensor.String))}, in: []*tensor.Tensor{i64([]int{2}, -3, 12)}, want: []*tensor.Tensor{str([]int{2}, "-3", "12")}},
		{name: "cast from string", op: "Cast", opset: 13, attrs: graph.Attrs{"to": iattr(int64(tensor.Float32))}, in: []*tensor.Tensor{str([]int{4}, "0.5", "INF", "+INF", "NaN")}, want: []*tensor.Tensor{f32([]int{4}, 0.5, inf, inf, nan)}},
		{name: "cast string to int", op: "Cast", opset: 13, attrs: graph.Attrs{"to": iattr(int64(tensor.Int64))}, in: []*tensor.Tensor{str([]int{2}, "42", "-7.9")}, want: []*tensor.Tensor{i64([]int{2}, 42, -7)}},
		{name: "cast bad string", op: "Cast", opset: 13, attrs: graph.Attrs{"to": iattr(int64(tensor.Float32))}, in: []*tensor.Tensor{str([]int{1}, "abc")}, errHas: "cannot parse"},
		{name: "cast f64 to f16", op: "Cast", opset: 13, attrs: graph.Attrs{"to": iattr(int64(tensor.Float16))}, in: []*tensor.Tensor{f64([]int{2}, 1.0/3, 70000)}, want: []*tensor.Tensor{f16([]int{2}, 1.0/3, inf)}},
		{name: "castlike", op: "CastLike", opset: 15, in: []*tensor.Tensor{i32([]int{2}, 1, 2), f64([]int{1}, 0)}, want: []*tensor.Tensor{f64([]int{2}, 1, 2)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opset := c.opset
			if opset == 0 {
				opset = 13
			}
			nOut := len(c.want)
			if nOut == 0 {
				nOut = 1
			}
			// Snapshot the inputs to check they are not modified.
			before := make([]*tensor.Tensor, len(c.in))
			for i, x := range c.in {
				if x != nil {
					before[i] = x.Clone()
				}
			}
			got, err := runOp(c.op, opset, c.attrs, nOut, c.in...)
			if c.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("error %v, want one containing %q", err, c.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) < len(c.want) {
				t.Fatalf("%d outputs, want %d", len(got), len(c.want))
			}
			for i, w := range c.want {
				same(t, got[i], w)
			}
			for i, x := range c.in {
				if x != nil && !reflect.DeepEqual(x, before[i]) && !hasNaN(x) {
					t.Fatalf("input %d was modified", i)
				}
			}
		})
	}
}

func hasNaN(t *tensor.Tensor) bool {
	v, err := tensor.AsFloat64(t)
	if err != nil {
		return false
	}
	for _, x := range v {
		if x != x {
			return true
		}
	}
	return false
}

// TestSumDoesNotModifyInputs checks the in-place accumulation of the
// variadic ops never writes into an input.
func TestSumDoesNotModifyInputs(t *testing.T) {
	a := f32([]int{2, 2}, 1, 2, 3, 4)
	b := f32([]int{2}, 10, 20)
	c := f32([]int{2, 2}, 100, 100, 100, 100)
	got, err := runOp("Sum", 13, nil, 1, a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	same(t, got[0], f32([]int{2, 2}, 111, 122, 113, 124))
	same(t, a, f32([]int{2, 2}, 1, 2, 3, 4))
	same(t, c, f32([]int{2, 2}, 100, 100, 100, 100))
}

func TestDropout(t *testing.T) {
	x := f32([]int{2, 50}, make([]float32, 100)...)
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(i + 1)
	}
	// Opset 7: ratio attribute, inference, float mask of ones.
	got, err := runOp("Dropout", 7, graph.Attrs{"ratio": fattr(0.3)}, 2, x)
	if err != nil {
		t.Fatal(err)
	}
	same(t, got[0], x)
	if got[1].DType != tensor.Float32 || got[1].Float32s()[99] != 1 {
		t.Fatalf("opset-7 mask %v %v", got[1], got[1].Data)
	}
	// Opset 13 inference: bool mask all true.
	got, err = runOp("Dropout", 13, nil, 2, x, f32(sc, 0.5))
	if err != nil {
		t.Fatal(err)
	}
	same(t, got[0], x)
	for _, m := range got[1].Bools() {
		if !m {
			t.Fatal("inference mask has a false")
		}
	}
	// Training, ratio 0: identity.
	got, err = runOp("Dropout", 13, graph.Attrs{"seed": iattr(0)}, 2, x, f32(sc, 0), bl(sc, true))
	if err != nil {
		t.Fatal(err)
	}
	same(t, got[0], x)
	// Training, ratio 0.5: kept values doubled, dropped zero, deterministic.
	run := func() []*tensor.Tensor {
		got, err := runOp("Dropout", 13, graph.Attrs{"seed": iattr(7)}, 2, x, f32(sc, 0.5), bl(sc, true))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	r1, r2 := run(), run()
	kept := 0
	for i, keep := range r1[1].Bools() {
		y := r1[0].Float32s()[i]
		if keep {
			kept++
			if y != 2*x.Float32s()[i] {
				t.Fatalf("kept element %d = %v", i, y)
			}
		} else if y != 0 {
			t.Fatalf("dropped element %d = %v", i, y)
		}
	}
	if kept < 25 || kept > 75 {
		t.Fatalf("kept %d of 100 at ratio 0.5", kept)
	}
	if !reflect.DeepEqual(r1[1].Data, r2[1].Data) {
		t.Fatal("same seed gave different masks")
	}
	// One output requested: exactly one returned.
	got, err = runOp("Dropout", 13, nil, 1, x)
	if err != nil || len(got) != 1 {
		t.Fatalf("got %d outputs, err %v", len(got), err)
	}
}

// TestBroadcastRandom checks the run-decomposed broadcast against a plain
// index-based reference over random compatible shapes.
func TestBroadcastRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 500; iter++ {
		rank := rng.IntN(5)
		out := make([]int, rank)
		for i := range out {
			out[i] = 1 + rng.IntN(4)
		}
		mk := func() []int {
			r := rng.IntN(rank + 1)
			s := append([]int{}, out[rank-r:]...)
			for i := range s {
				if rng.IntN(2) == 0 {
					s[i] = 1
				}
			}
			return s
		}
		as, bs := mk(), mk()
		a := randT(rng, as)
		b := randT(rng, bs)
		got, err := runOp("Sub", 13, nil, 1, a, b)
		if err != nil {
			t.Fatalf("%v - %v: %v", as, bs, err)
		}
		os, _ := tensor.BroadcastShapes(as, bs)
		ai, bi := tensor.BroadcastIndex(as, os), tensor.BroadcastIndex(bs, os)
		want := make([]float32, len(ai))
		for i := range want {
			want[i] = a.Float32s()[ai[i]] - b.Float32s()[bi[i]]
		}
		same(t, got[0], f32(os, want...))
	}
}

func randT(rng *rand.Rand, shape []int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.IntN(1000))
	}
	return f32(shape, v...)
}

func TestRoundToOdd(t *testing.T) {
	// 1 + 2^-11 + 2^-40 is just above the float16 halfway point between 1 and
	// 1 + 2^-10: correct rounding goes up; rounding via float32 first (RNE)
	// would land on the tie and go down to even.
	x := 1 + gomath.Ldexp(1, -11) + gomath.Ldexp(1, -40)
	got := tensor.Float32ToFloat16(roundToOdd32(x))
	if want := tensor.Float32ToFloat16(1 + 1.0/1024); got != want {
		t.Fatalf("got %#x, want %#x", got, want)
	}
	if tensor.Float32ToFloat16(float32(x)) == got {
		t.Log("(plain float32 rounding happened to agree)")
	}
}
