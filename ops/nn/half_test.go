package nn

import (
	"testing"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestHalfMatMul: float16 and bfloat16 MatMul equals the float32 product of
// the widened inputs, rounded once (values exact in both formats here).
func TestHalfMatMul(t *testing.T) {
	a := []float32{1, 2, -3, 0.5, 4, -1}
	b := []float32{2, -1, 0.25, 3, 1, 1}
	want := []float32{1*2 + 2*0.25 + -3*1, 1*-1 + 2*3 + -3*1, 0.5*2 + 4*0.25 + -1*1, 0.5*-1 + 4*3 + -1*1}
	for _, dt := range []tensor.DType{tensor.Float16, tensor.BFloat16} {
		conv := func(v []float32, shape []int) *tensor.Tensor {
			x, _ := tensor.New(dt, shape)
			for i, f := range v {
				if h, ok := x.Data.([]tensor.Float16Bits); ok {
					h[i] = tensor.Float32ToFloat16(f)
				} else {
					x.Data.([]tensor.BFloat16Bits)[i] = tensor.Float32ToBFloat16(f)
				}
			}
			return x
		}
		k, err := ops.New(&ops.Config{OpType: "MatMul", Opset: 13, NumInputs: 2, NumOutputs: 1})
		if err != nil {
			t.Fatal(err)
		}
		out, err := k.Run([]*tensor.Tensor{conv(a, []int{2, 3}), conv(b, []int{3, 2})})
		if err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
		y := out[0]
		if y.DType != dt || !tensor.SameShape(y.Shape, []int{2, 2}) {
			t.Fatalf("%v: got %v", dt, y)
		}
		got, _ := tensor.AsFloat64(y)
		for i := range want {
			if got[i] != float64(want[i]) {
				t.Errorf("%v: element %d = %v, want %v", dt, i, got[i], want[i])
			}
		}
	}
}
