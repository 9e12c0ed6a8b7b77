package math

import (
	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Casts from and to the low-precision types (float8, float4, 4- and 2-bit
// integers; opsets 19-25) go through float64: the source values exactly
// (every low-precision value is a float64), then rounded once to the target.
// To a float8/float4 type, values round to nearest even and out-of-range
// ones saturate to the largest finite value when saturate=1 (the default),
// else become Inf or NaN as the ONNX Cast table says; to E8M0 the exponent
// rounds up (round_mode "up", the default; the other modes are refused).
// To 4- and 2-bit integers, values round half to even and saturate.

// lowCast reports whether a cast involves a low-precision type.
func lowCast(from, to tensor.DType) bool { return from.IsLowPrecision() || to.IsLowPrecision() }

func castLow(x *tensor.Tensor, to tensor.DType, saturate bool) (*tensor.Tensor, error) {
	v, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, ops.BadInput(0, "cannot cast %v to %v: %v", x, to, err)
	}
	if !to.IsLowPrecision() {
		if to == tensor.String {
			return nil, ops.BadInput(0, "cannot cast %v to %v", x, to)
		}
		out, err := elems.FromFloats(to, x.Shape, v)
		if err != nil {
			return nil, ops.BadInput(0, "cannot cast %v to %v: %v", x, to, err)
		}
		return out, nil
	}
	data, ok := tensor.FromFloat64s(to, v, saturate)
	if !ok {
		return nil, ops.BadInput(0, "cannot cast %v to %v", x, to)
	}
	return &tensor.Tensor{DType: to, Shape: append([]int{}, x.Shape...), Data: data}, nil
}

// castAttrs reads Cast's saturate and round_mode attributes.
func castAttrs(c *ops.Config, to tensor.DType) (saturate bool, err error) {
	saturate = c.Attrs.Int("saturate", 1) != 0
	if mode := c.Attrs.String("round_mode", "up"); mode != "up" && to == tensor.Float8E8M0 {
		return saturate, ops.BadAttr("round_mode", "%q is not supported for float8e8m0 (only up)", mode)
	}
	return saturate, nil
}
