package nn

import (
	"math"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// RMSNormalization (opset 23) and LpNormalization, computed in float64.

func init() {
	// gradients: train/autodiff/rules_transformer.go, rules_norm.go
	ops.Define(ops.Desc{Type: "RMSNormalization", Since: 23, Shape: ops.ShapeSameAsInput, Grad: ops.GradRule{}, Kernel: newRMSNorm})
	ops.Define(ops.Desc{Type: "LpNormalization", Since: 1, Shape: ops.ShapeSameAsInput, Grad: ops.GradRule{}, Kernel: newLpNorm})
}

// newRMSNorm builds RMSNormalization: X over the axes [axis, rank) divided by
// sqrt(mean(X²) + epsilon), times scale (broadcast to those axes).
func newRMSNorm(c *ops.Config) (ops.Op, error) {
	axisAttr := c.Attrs.Int("axis", -1)
	eps := float64(c.Attrs.Float("epsilon", 1e-5))
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		x, scale := in[0], in[1]
		if !x.DType.IsFloat() {
			return nil, ops.BadInput(0, "RMSNormalization needs a float tensor, got %v", x)
		}
		axis, err := ops.NormAxis(int(axisAttr), x.Rank())
		if err != nil {
			return nil, ops.BadInput(0, "RMSNormalization axis %d invalid for %v", axisAttr, x)
		}
		norm := x.Shape[axis:]
		if _, err := tensor.BroadcastShapes(norm, scale.Shape); err != nil || scale.Rank() > len(norm) {
			return nil, ops.BadInput(1, "RMSNormalization scale %v does not broadcast to %v", scale, norm)
		}
		v, _ := tensor.AsFloat64(x)
		s, err := tensor.AsFloat64(scale)
		if err != nil {
			return nil, ops.BadInput(1, "%v", err)
		}
		si := tensor.BroadcastIndex(scale.Shape, norm)
		m := elems.Prod(norm)
		for o := 0; o*m < len(v); o++ {
			row := v[o*m : (o+1)*m]
			sq := 0.0
			for _, f := range row {
				sq += f * f
			}
			r := 1 / math.Sqrt(sq/float64(m)+eps)
			for j := range row {
				row[j] *= r * s[si[j]]
			}
		}
		y, err := elems.FromFloats(x.DType, x.Shape, v)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{y}, nil
	}), nil
}

// newLpNorm builds LpNormalization: x divided by its L1 or L2 norm along axis.
func newLpNorm(c *ops.Config) (ops.Op, error) {
	axisAttr := c.Attrs.Int("axis", -1)
	p := c.Attrs.Int("p", 2)
	if p != 1 && p != 2 {
		return nil, ops.BadAttr("p", "must be 1 or 2, got %d", p)
	}
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if !x.DType.IsFloat() {
			return nil, ops.BadInput(0, "LpNormalization needs a float tensor, got %v", x)
		}
		axis, err := ops.NormAxis(int(axisAttr), x.Rank())
		if err != nil || x.Rank() == 0 {
			return nil, ops.BadInput(0, "LpNormalization axis %d invalid for %v", axisAttr, x)
		}
		v, _ := tensor.AsFloat64(x)
		outer, k, inner := elems.Prod(x.Shape[:axis]), x.Shape[axis], elems.Prod(x.Shape[axis+1:])
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				s := 0.0
				for j := 0; j < k; j++ {
					f := v[(o*k+j)*inner+i]
					if p == 1 {
						s += math.Abs(f)
					} else {
						s += f * f
					}
				}
				if p == 2 {
					s = math.Sqrt(s)
				}
				for j := 0; j < k; j++ {
					if s == 0 { // a zero vector stays zero (the reference's choice), not NaN
						v[(o*k+j)*inner+i] = 0
					} else {
						v[(o*k+j)*inner+i] /= s
					}
				}
			}
		}
		y, err := elems.FromFloats(x.DType, x.Shape, v)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{y}, nil
	}), nil
}
