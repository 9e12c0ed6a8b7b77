package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func benchSgemm(b *testing.B, m, n, k int) {
	rng := rand.New(rand.NewPCG(1, 1))
	a, bb, c := randF32(rng, m, k).Float32s(), randF32(rng, k, n).Float32s(), make([]float32, m*n)
	b.ReportAllocs()
	b.SetBytes(int64(2 * m * n * k)) // "bytes" = flops, so MB/s reads as MFLOP/s
	for b.Loop() {
		Sgemm(false, false, m, n, k, 1, a, k, bb, n, 0, c, n)
	}
}

func BenchmarkSgemm64x256x64(b *testing.B) { benchSgemm(b, 64, 64, 256) }
func BenchmarkSgemm1x256x64(b *testing.B)  { benchSgemm(b, 1, 64, 256) }
func BenchmarkSgemm256x256x256(b *testing.B) {
	benchSgemm(b, 256, 256, 256)
}

func benchOp(b *testing.B, op ops.Op, in ...*tensor.Tensor) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := op.Run(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGemm64x256x64(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	op := newOp(b, "Gemm", 13, ops.Attrs{"transB": aInt(1)}, 3, 1)
	benchOp(b, op, randF32(rng, 64, 256), randF32(rng, 64, 256), randF32(rng, 64))
}

func BenchmarkMatMulBatched(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 3))
	op := newOp(b, "MatMul", 13, nil, 2, 1)
	benchOp(b, op, randF32(rng, 8, 32, 64), randF32(rng, 64, 64))
}

func BenchmarkConv1D(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 4))
	op := newOp(b, "Conv", 11, ops.Attrs{"pads": aInts(1, 1)}, 3, 1)
	benchOp(b, op, randF32(rng, 4, 32, 128), randF32(rng, 64, 32, 3), randF32(rng, 64))
}

func BenchmarkConv2D(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 5))
	op := newOp(b, "Conv", 11, ops.Attrs{"pads": aInts(1, 1, 1, 1)}, 3, 1)
	benchOp(b, op, randF32(rng, 1, 16, 32, 32), randF32(rng, 32, 16, 3, 3), randF32(rng, 32))
}

func BenchmarkConvDepthwise(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 6))
	op := newOp(b, "Conv", 11, ops.Attrs{"pads": aInts(1, 1, 1, 1), "group": aInt(32)}, 3, 1)
	benchOp(b, op, randF32(rng, 1, 32, 32, 32), randF32(rng, 32, 1, 3, 3), randF32(rng, 32))
}

func BenchmarkConvTranspose2D(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 7))
	op := newOp(b, "ConvTranspose", 11, ops.Attrs{"strides": aInts(2, 2)}, 2, 1)
	benchOp(b, op, randF32(rng, 1, 16, 16, 16), randF32(rng, 16, 8, 3, 3))
}

func BenchmarkMaxPool2D(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 8))
	op := newOp(b, "MaxPool", 12, ops.Attrs{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2)}, 1, 1)
	benchOp(b, op, randF32(rng, 1, 32, 64, 64))
}

func BenchmarkSoftmax(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 9))
	op := newOp(b, "Softmax", 13, nil, 1, 1)
	benchOp(b, op, randF32(rng, 64, 256))
}

func BenchmarkReduceMean(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 10))
	op := newOp(b, "ReduceMean", 13, ops.Attrs{"axes": aInts(-1)}, 1, 1)
	benchOp(b, op, randF32(rng, 64, 256))
}

func BenchmarkLayerNorm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 11))
	op := newOp(b, "LayerNormalization", 17, nil, 3, 1)
	benchOp(b, op, randF32(rng, 64, 256), randF32(rng, 256), randF32(rng, 256))
}

func BenchmarkBatchNorm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 12))
	op := newOp(b, "BatchNormalization", 15, nil, 5, 1)
	v := randF32(rng, 32)
	for i, x := range v.Float32s() {
		v.Float32s()[i] = x * x
	}
	benchOp(b, op, randF32(rng, 4, 32, 32, 32), randF32(rng, 32), randF32(rng, 32), randF32(rng, 32), v)
}

func BenchmarkEinsumBatchMatmul(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 13))
	op := newOp(b, "Einsum", 12, ops.Attrs{"equation": aStr("bij,bjk->bik")}, 2, 1)
	benchOp(b, op, randF32(rng, 8, 32, 64), randF32(rng, 8, 64, 32))
}
