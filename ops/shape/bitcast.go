package shape

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// BitCast (opset 26) reinterprets the little-endian bytes of a tensor as
// another dtype of the same width.

func init() {
	ops.Define(ops.Desc{Type: "BitCast", Since: 26, Grad: ops.NotDifferentiable("it reinterprets bits"), Kernel: func(c *ops.Config) (ops.Op, error) {
		to := tensor.DType(c.Attrs.Int("to", 0))
		if !to.Supported() || to == tensor.String {
			return nil, ops.BadAttr("to", "unsupported target dtype %v", to)
		}
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			if x.DType == tensor.String || x.DType.Size() != to.Size() {
				return nil, ops.BadInput(0, "BitCast %v to %v: widths differ", x, to)
			}
			raw, err := tensor.EncodeRaw(x)
			if err != nil {
				return nil, ops.BadInput(0, "BitCast: %v", err)
			}
			data, err := tensor.DecodeRaw(to, raw, x.Len())
			if err != nil {
				return nil, ops.BadInput(0, "BitCast: %v", err)
			}
			return []*tensor.Tensor{{DType: to, Shape: append([]int{}, x.Shape...), Data: data}}, nil
		}), nil
	}})
}
