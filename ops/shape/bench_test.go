package shape

import (
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/internal/opstest"
	"github.com/mtlrun/mtlrun/tensor"
)

func mustOp(b *testing.B, op string, attrs graph.Attrs) ops.Op {
	b.Helper()
	k, err := ops.New(&ops.Config{OpType: op, Opset: 13, Attrs: attrs, NumOutputs: 1})
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// runBench benchmarks k on in through the shared harness; bytes is what
// one run moves.
func runBench(b *testing.B, k ops.Op, bytes int, in ...*tensor.Tensor) {
	b.Helper()
	opstest.Bench(b, k, func([]*tensor.Tensor) int64 { return int64(bytes) }, in...)
}

// BenchmarkGatherEmbedding is the embedding lookup: 128 token ids into a
// 30000x768 float32 table.
func BenchmarkGatherEmbedding(b *testing.B) {
	table := seq(30000, 768)
	ids := make([]int64, 128)
	for i := range ids {
		ids[i] = int64(i*7919) % 30000
	}
	runBench(b, mustOp(b, "Gather", nil), 128*768*4, table, tensor.From([]int{1, 128}, ids))
}

func BenchmarkGatherAxis1(b *testing.B) {
	x := seq(64, 512)
	ids := make([]int64, 256)
	for i := range ids {
		ids[i] = int64(i * 2)
	}
	runBench(b, mustOp(b, "Gather", graph.Attrs{"axis": intA(1)}), 64*256*4, x, i64(ids...))
}

func BenchmarkTransposeAttention(b *testing.B) {
	x := seq(8, 128, 12, 64) // [B, S, H, D] -> [B, H, S, D]
	runBench(b, mustOp(b, "Transpose", graph.Attrs{"perm": ints(0, 2, 1, 3)}), x.Len()*4, x)
}

func BenchmarkTranspose2D(b *testing.B) {
	x := seq(1024, 1024)
	runBench(b, mustOp(b, "Transpose", nil), x.Len()*4, x)
}

func BenchmarkTransposeNCHWtoNHWC(b *testing.B) {
	x := seq(8, 64, 56, 56)
	runBench(b, mustOp(b, "Transpose", graph.Attrs{"perm": ints(0, 2, 3, 1)}), x.Len()*4, x)
}

func BenchmarkConcatLastAxis(b *testing.B) {
	x, y := seq(32, 128, 256), seq(32, 128, 256)
	runBench(b, mustOp(b, "Concat", graph.Attrs{"axis": intA(-1)}), 2*x.Len()*4, x, y)
}

func BenchmarkConcatAxis0(b *testing.B) {
	x, y := seq(32, 128, 256), seq(32, 128, 256)
	runBench(b, mustOp(b, "Concat", graph.Attrs{"axis": intA(0)}), 2*x.Len()*4, x, y)
}

func BenchmarkSliceInner(b *testing.B) {
	x := seq(64, 128, 256)
	runBench(b, mustOp(b, "Slice", nil), 64*128*128*4, x, i64(64), i64(192), i64(2))
}

// Activation-sized shapes (batch 64, width 128).

func BenchmarkGatherSmall(b *testing.B) {
	ids := make([]int64, 64)
	for i := range ids {
		ids[i] = int64(i*37) % 1000
	}
	runBench(b, mustOp(b, "Gather", nil), 64*128*4, seq(1000, 128), tensor.From([]int{64}, ids))
}

func BenchmarkConcatSmall(b *testing.B) {
	runBench(b, mustOp(b, "Concat", graph.Attrs{"axis": intA(1)}), 64*160*4, seq(64, 128), seq(64, 32))
}

func BenchmarkTransposeSmall(b *testing.B) {
	runBench(b, mustOp(b, "Transpose", nil), 64*128*4, seq(64, 128))
}

func BenchmarkTransposeSmall4D(b *testing.B) {
	runBench(b, mustOp(b, "Transpose", graph.Attrs{"perm": ints(0, 2, 1, 3)}), 64*128*4, seq(4, 16, 8, 16))
}

func BenchmarkReshapeSmall(b *testing.B) {
	runBench(b, mustOp(b, "Reshape", nil), 0, seq(64, 128), i64(64, 4, 32))
}

func BenchmarkSliceSmall(b *testing.B) {
	runBench(b, mustOp(b, "Slice", nil), 64*64*4, seq(64, 128), i64(32), i64(96), i64(1))
}
