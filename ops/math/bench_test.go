package math

import (
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func benchOp(b *testing.B, op string, in ...*tensor.Tensor) {
	k, err := ops.New(&ops.Config{OpType: op, Opset: 13, NumInputs: len(in), NumOutputs: 1})
	if err != nil {
		b.Fatal(err)
	}
	out, err := k.Run(in)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(4 * out[0].Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := k.Run(in); err != nil {
			b.Fatal(err)
		}
	}
}

func benchT(shape ...int) *tensor.Tensor {
	rng := rand.New(rand.NewPCG(3, 4))
	t, _ := tensor.New(tensor.Float32, shape)
	for i := range t.Float32s() {
		t.Float32s()[i] = rng.Float32()*8 - 4
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
