package math

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// PRelu before opset 7: a slope of shape [C] applies per channel, along
// axis 1 of the input (not numpy-broadcast against the last axis as from
// opset 7). It is run as the opset-7 kernel with the slope viewed as
// [C, 1, ..., 1]. Its gradient: train/autodiff's PRelu rule, which views
// the slope the same way (rules_prelu6.go).

func init() {
	ops.Define(ops.Desc{Type: "PRelu", Since: 1, Shape: ops.ShapeSameAsInput, Grad: ops.GradRule{}, Traits: ops.Elementwise, Kernel: fixed(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		x, slope := in[0], in[1]
		if slope.Rank() == 1 && slope.Len() > 1 && x.Rank() >= 2 && slope.Shape[0] == x.Shape[1] {
			shape := make([]int, x.Rank()-1)
			shape[0] = slope.Shape[0]
			for i := 1; i < len(shape); i++ {
				shape[i] = 1
			}
			v, err := slope.Reshaped(shape)
			if err != nil {
				return nil, ops.BadInput(1, "PRelu slope: %v", err)
			}
			slope = v
		}
		r, err := prelu(ar, x, slope)
		return one(ar, r, err)
	})})
}
