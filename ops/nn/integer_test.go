package nn

import (
	"testing"

	"github.com/mtlrun/mtlrun/tensor"
)

func TestMatMulInteger(t *testing.T) {
	a := tensor.From([]int{2, 3}, []uint8{10, 20, 30, 40, 50, 60})
	b := tensor.From([]int{3, 2}, []uint8{1, 2, 3, 4, 5, 6})
	op := newOp(t, "MatMulInteger", 10, nil, 4, 1)
	// A − [10, 40] per row, B − [1, 2] per column
	got := runOp(t, op, a, b, tensor.From([]int{2}, []uint8{10, 40}), tensor.From([]int{2}, []uint8{1, 2}))[0]
	if got.DType != tensor.Int32 {
		t.Fatalf("dtype %v", got.DType)
	}
	// [0 10 20; 0 10 20] × [0 0; 2 2; 4 4]
	near(t, "per-axis zero points", got, []int{2, 2}, []float64{100, 100, 100, 100}, 0)
	got = runOp(t, newOp(t, "MatMulInteger", 10, nil, 3, 1), a, b, tensor.Scalar[uint8](10))[0]
	near(t, "scalar zero point", got, []int{2, 2}, []float64{0*1 + 10*3 + 20*5, 0*2 + 10*4 + 20*6, 30*1 + 40*3 + 50*5, 30*2 + 40*4 + 50*6}, 0)
	if _, err := op.Run([]*tensor.Tensor{a, b, tensor.From([]int{3}, []uint8{1, 2, 3})}); err == nil {
		t.Error("zero point of the wrong length: no error")
	}
}

func TestConvInteger(t *testing.T) {
	x := tensor.From([]int{1, 1, 3, 3}, []uint8{2, 3, 4, 5, 6, 7, 8, 9, 10})
	w := tensor.From([]int{1, 1, 2, 2}, []uint8{1, 1, 1, 1})
	got := runOp(t, newOp(t, "ConvInteger", 10, nil, 3, 1), x, w, tensor.Scalar[uint8](1))[0]
	near(t, "ConvInteger", got, []int{1, 1, 2, 2}, []float64{12, 16, 24, 28}, 0)
}
