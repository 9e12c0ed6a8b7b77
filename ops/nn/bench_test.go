package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
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
	op := newOp(b, "Gemm", 13, graph.Attrs{"transB": aInt(1)}, 3, 1)
	benchOp(b, op, randF32(rng, 64, 256), randF32(rng, 64, 256), randF32(rng, 64))
}

func BenchmarkMatMulBatched(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 3))
	op := newOp(b, "MatMul", 13, nil, 2, 1)
	benchOp(b, op, randF32(rng, 8, 32, 64), randF32(rng, 64, 64))
}

func BenchmarkConv1D(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 4))
	op := newOp(b, "Conv", 11, graph.Attrs{"pads": aInts(1, 1)}, 3, 1)
	benchOp(b, op, randF32(rng, 4, 32, 128), randF32(rng, 64, 32, 3), randF32(rng, 64))
}

func BenchmarkConv2D(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 5))
	op := newOp(b, "Conv", 11, graph.Attrs{"pads": aInts(1, 1, 1, 1)}, 3, 1)
	benchOp(b, op, randF32(rng, 1, 16, 32, 32), randF32(rng, 32, 16, 3, 3), randF32(rng, 32))
}

func BenchmarkConvDepthwise(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 6))
	op := newOp(b, "Conv", 11, graph.Attrs{"pads": aInts(1, 1, 1, 1), "group": aInt(32)}, 3, 1)
	benchOp(b, op, randF32(rng, 1, 32, 32, 32), randF32(rng, 32, 1, 3, 3), randF32(rng, 32))
}

func BenchmarkConvTranspose2D(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 7))
	op := newOp(b, "ConvTranspose", 11, graph.Attrs{"strides": aInts(2, 2)}, 2, 1)
	benchOp(b, op, randF32(rng, 1, 16, 16, 16), randF32(rng, 16, 8, 3, 3))
}

func BenchmarkMaxPool2D(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 8))
	op := newOp(b, "MaxPool", 12, graph.Attrs{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2)}, 1, 1)
	benchOp(b, op, randF32(rng, 1, 32, 64, 64))
}

func BenchmarkSoftmax(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 9))
	op := newOp(b, "Softmax", 13, nil, 1, 1)
	benchOp(b, op, randF32(rng, 64, 256))
}

func BenchmarkReduceMean(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 10))
	op := newOp(b, "ReduceMean", 13, graph.Attrs{"axes": aInts(-1)}, 1, 1)
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
	op := newOp(b, "Einsum", 12, graph.Attrs{"equation": aStr("bij,bjk->bik")}, 2, 1)
	benchOp(b, op, randF32(rng, 8, 32, 64), randF32(rng, 8, 64, 32))
}

// benchArena runs an op the way the runtime does: RunWith on an arena
// reset before every run.
func benchArena(b *testing.B, op ops.Op, in ...*tensor.Tensor) {
	ao := op.(ops.ArenaOp)
	var ar ops.Arena
	b.ReportAllocs()
	for b.Loop() {
		ar.Reset()
		if _, err := ao.RunWith(&ar, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMLP4 covers the layers of models/mlp4 (20→128 Relu, 128→64
// Relu, heads 64→1/5/1/8) at batch 1 and 64, unfused and fused, with one
// and two threads.
func BenchmarkMLP4(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 14))
	tB := graph.Attrs{"transB": aInt(1)}
	layers := []struct {
		name    string
		k, n    int
		act     string
		threads []int
	}{
		{"L1_20x128", 20, 128, "Relu", []int{1, 2}},
		{"L2_128x64", 128, 64, "Relu", []int{1, 2}},
		{"head_64x1", 64, 1, "Sigmoid", []int{1}},
		{"head_64x8", 64, 8, "Tanh", []int{1}},
	}
	for _, batch := range []int{1, 64} {
		for _, l := range layers {
			x, w, bias := randF32(rng, batch, l.k), randF32(rng, l.n, l.k), randF32(rng, l.n)
			wt := randF32(rng, l.k, l.n)
			for _, th := range l.threads {
				sfx := fmt.Sprintf("/b%d/%s/t%d", batch, l.name, th)
				b.Run("Gemm"+sfx, func(b *testing.B) {
					benchArena(b, newOpCfg(b, "", "Gemm", 13, tB, 3, th), x, w, bias)
				})
				b.Run("MatMul"+sfx, func(b *testing.B) {
					benchArena(b, newOpCfg(b, "", "MatMul", 13, nil, 2, th), x, wt)
				})
				for _, act := range []string{"", l.act} {
					name := "Dense" + act
					if act == "" {
						name = "DenseNone"
					}
					b.Run(name+sfx, func(b *testing.B) {
						benchArena(b, newOpCfg(b, "ai.mtlrun", "Dense", 1, denseAttrs(act, tB), 3, th), x, w, bias)
					})
				}
			}
		}
		b.Run(fmt.Sprintf("Softmax/b%d/5", batch), func(b *testing.B) {
			benchArena(b, newOp(b, "Softmax", 13, nil, 1, 1), randF32(rng, batch, 5))
		})
	}
}

// BenchmarkDenseActivations: the fused layer per activation, 64×128×64.
func BenchmarkDenseActivations(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 15))
	x, w, bias := randF32(rng, 64, 128), randF32(rng, 64, 128), randF32(rng, 64)
	for _, act := range []string{"", "Relu", "LeakyRelu", "Sigmoid", "Tanh"} {
		name := act
		if name == "" {
			name = "None"
		}
		b.Run(name, func(b *testing.B) {
			benchArena(b, newOpCfg(b, "ai.mtlrun", "Dense", 1, denseAttrs(act, graph.Attrs{"transB": aInt(1)}), 3, 1), x, w, bias)
		})
	}
}

// BenchmarkGeluErf: the fused GELU on 256×256 elements; compare ops/math's
// BenchmarkErf (the Erf node alone) and the Div/Add/Mul benchmarks there
// for the unfused chain.
func BenchmarkGeluErf(b *testing.B) {
	op, err := ops.New(&ops.Config{Domain: "ai.mtlrun", OpType: "GeluErf", Opset: 1, Attrs: graph.Attrs{"scale": aFloat(1.4142135)}, NumInputs: 1, NumOutputs: 1})
	if err != nil {
		b.Fatal(err)
	}
	benchOp(b, op, randF32(rand.New(rand.NewPCG(1, 1)), 256, 256))
}
