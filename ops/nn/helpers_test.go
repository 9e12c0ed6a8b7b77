package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// newOp builds a kernel through the registry, as the runtime does.
func newOp(tb testing.TB, opType string, opset int, attrs graph.Attrs, nIn, nOut int) ops.Op {
	tb.Helper()
	if attrs == nil {
		attrs = graph.Attrs{}
	}
	op, err := ops.New(&ops.Config{OpType: opType, Opset: opset, Attrs: attrs, NumInputs: nIn, NumOutputs: nOut})
	if err != nil {
		tb.Fatalf("%s: %v", opType, err)
	}
	return op
}

// run1 runs an op and returns its first output.
func runOp(tb testing.TB, op ops.Op, in ...*tensor.Tensor) []*tensor.Tensor {
	tb.Helper()
	out, err := op.Run(in)
	if err != nil {
		tb.Fatalf("run: %v", err)
	}
	return out
}

func aInt(v int64) graph.Attr     { return graph.Attr{Type: graph.AttrInt, Int: v} }
func aFloat(v float32) graph.Attr { return graph.Attr{Type: graph.AttrFloat, Float: v} }
func aStr(s string) graph.Attr    { return graph.Attr{Type: graph.AttrString, String: s} }
func aInts(v ...int64) graph.Attr { return graph.Attr{Type: graph.AttrInts, Ints: v} }

func randF32(rng *rand.Rand, shape ...int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return tensor.From(shape, v)
}

func toF64(t *tensor.Tensor) []float64 {
	v, err := tensor.AsFloat64(t)
	if err != nil {
		panic(err)
	}
	return v
}

// near compares a tensor with expected values and shape.
func near(tb testing.TB, what string, got *tensor.Tensor, shape []int, want []float64, tol float64) {
	tb.Helper()
	if got == nil {
		tb.Fatalf("%s: nil output", what)
	}
	if !tensor.SameShape(got.Shape, shape) {
		tb.Fatalf("%s: shape %v, want %v", what, got.Shape, shape)
	}
	g := toF64(got)
	if len(g) != len(want) {
		tb.Fatalf("%s: %d values, want %d", what, len(g), len(want))
	}
	for i := range g {
		if math.IsNaN(want[i]) != math.IsNaN(g[i]) || math.Abs(g[i]-want[i]) > tol*(1+math.Abs(want[i])) {
			tb.Fatalf("%s: [%d] = %v, want %v", what, i, g[i], want[i])
		}
	}
}
