package math

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/internal/opstest"
	"github.com/mtlrun/mtlrun/tensor"
)

// benchOp runs op the way the runtime does: through RunWith on one reused
// arena when the kernel has it (a steady state allocates nothing), else Run.
func benchOp(b *testing.B, op string, in ...*tensor.Tensor) {
	benchOpAttrs(b, op, nil, in...)
}

func benchOpAttrs(b *testing.B, op string, attrs graph.Attrs, in ...*tensor.Tensor) {
	benchOpThreads(b, op, attrs, 1, in...)
}

func benchOpThreads(b *testing.B, op string, attrs graph.Attrs, threads int, in ...*tensor.Tensor) {
	k, err := ops.New(&ops.Config{OpType: op, Opset: 13, Attrs: attrs, NumInputs: len(in), NumOutputs: 1, Threads: threads})
	if err != nil {
		b.Fatal(err)
	}
	// one float32 written per output element
	opstest.Bench(b, k, func(out []*tensor.Tensor) int64 { return int64(4 * out[0].Len()) }, in...)
}

func benchT(shape ...int) *tensor.Tensor {
	rng := rand.New(rand.NewPCG(3, 4))
	t, _ := tensor.New(tensor.Float32, shape)
	for i := range t.Float32s() {
		t.Float32s()[i] = rng.Float32()*8 - 4
	}
	return t
}

func benchB(shape ...int) *tensor.Tensor {
	rng := rand.New(rand.NewPCG(3, 5))
	t, _ := tensor.New(tensor.Bool, shape)
	for i := range t.Bools() {
		t.Bools()[i] = rng.IntN(2) == 0
	}
	return t
}

// Binary float32 paths: same shape, scalar, trailing bias, per-channel (the
// general run walk with long runs) and an outer product (runs of one side).
func BenchmarkAddSame(b *testing.B)    { benchOp(b, "Add", benchT(256, 256), benchT(256, 256)) }
func BenchmarkMulScalar(b *testing.B)  { benchOp(b, "Mul", benchT(256, 256), benchT()) }
func BenchmarkAddBias(b *testing.B)    { benchOp(b, "Add", benchT(256, 256), benchT(256)) }
func BenchmarkAddChannel(b *testing.B) { benchOp(b, "Add", benchT(1, 64, 32, 32), benchT(64, 1, 1)) }
func BenchmarkSubOuter(b *testing.B)   { benchOp(b, "Sub", benchT(256, 1), benchT(1, 256)) }
func BenchmarkDivSame(b *testing.B)    { benchOp(b, "Div", benchT(256, 256), benchT(256, 256)) }

// Unary float32 paths.
func BenchmarkRelu(b *testing.B)    { benchOp(b, "Relu", benchT(256, 256)) }
func BenchmarkSigmoid(b *testing.B) { benchOp(b, "Sigmoid", benchT(256, 256)) }
func BenchmarkTanh(b *testing.B)    { benchOp(b, "Tanh", benchT(256, 256)) }
func BenchmarkErf(b *testing.B)     { benchOp(b, "Erf", benchT(256, 256)) }

// The activation-sized shapes of a batch-64 MLP layer: 64×128 float32.
func BenchmarkSmall(b *testing.B) {
	x, y := benchT(64, 128), benchT(64, 128)
	for _, c := range []struct {
		name, op string
		attrs    graph.Attrs
		in       []*tensor.Tensor
	}{
		{"Relu", "Relu", nil, []*tensor.Tensor{x}},
		{"Sigmoid", "Sigmoid", nil, []*tensor.Tensor{x}},
		{"Tanh", "Tanh", nil, []*tensor.Tensor{x}},
		{"Exp", "Exp", nil, []*tensor.Tensor{x}},
		{"LeakyRelu", "LeakyRelu", nil, []*tensor.Tensor{x}},
		{"Add", "Add", nil, []*tensor.Tensor{x, y}},
		{"AddBias", "Add", nil, []*tensor.Tensor{x, benchT(128)}},
		{"MulCol", "Mul", nil, []*tensor.Tensor{x, benchT(64, 1)}},
		{"MulScalar", "Mul", nil, []*tensor.Tensor{x, benchT()}},
		{"Div", "Div", nil, []*tensor.Tensor{x, y}},
		{"PowSquare", "Pow", nil, []*tensor.Tensor{x, tensor.Scalar(float32(2))}},
		{"Sum3", "Sum", nil, []*tensor.Tensor{x, y, benchT(128)}},
		{"Clip", "Clip", nil, []*tensor.Tensor{x, tensor.Scalar(float32(-1)), tensor.Scalar(float32(1))}},
		{"Less", "Less", nil, []*tensor.Tensor{x, y}},
		{"Where", "Where", nil, []*tensor.Tensor{benchB(64, 128), x, y}},
		{"CastInt64", "Cast", graph.Attrs{"to": {Type: graph.AttrInt, Int: int64(tensor.Int64)}}, []*tensor.Tensor{x}},
	} {
		b.Run(c.name, func(b *testing.B) { benchOpAttrs(b, c.op, c.attrs, c.in...) })
	}
}

// Large element-wise ops (512×256) at Threads 1 and 2.
func BenchmarkThreads(b *testing.B) {
	x, y := benchT(512, 256), benchT(512, 256)
	for _, c := range []struct {
		op string
		in []*tensor.Tensor
	}{
		{"Sigmoid", []*tensor.Tensor{x}},
		{"Exp", []*tensor.Tensor{x}},
		{"Add", []*tensor.Tensor{x, y}},
	} {
		for _, th := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads%d", c.op, th), func(b *testing.B) { benchOpThreads(b, c.op, nil, th, c.in...) })
		}
	}
}
