package math

import (
	gomath "math"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Swish (opset 24) and SwiGLU (opset 28): x·sigmoid(alpha·x), and that
// applied to a gate times a value of the same shape. Computed in float64.

func init() {
	ops.Define(ops.Desc{Type: "Swish", Since: 24, Shape: ops.ShapeSameAsInput, Grad: swishGrad, Traits: ops.Elementwise, Kernel: func(c *ops.Config) (ops.Op, error) {
		alpha := float64(c.Attrs.Float("alpha", 1))
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 1); err != nil {
				return nil, err
			}
			return gate(in[0], nil, alpha)
		}), nil
	}})
	// gradient: train/autodiff/rules_transformer.go
	ops.Define(ops.Desc{Type: "SwiGLU", Since: 28, Shape: ops.ShapeSameAsInput, Grad: ops.GradRule{}, Traits: ops.Elementwise, Kernel: func(c *ops.Config) (ops.Op, error) {
		alpha := float64(c.Attrs.Float("alpha", 1))
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 2); err != nil {
				return nil, err
			}
			if !tensor.SameShape(in[0].Shape, in[1].Shape) || in[0].DType != in[1].DType {
				return nil, ops.BadInput(1, "SwiGLU gate %v and value %v must have one shape and dtype", in[0], in[1])
			}
			return gate(in[0], in[1], alpha)
		}), nil
	}})
}

// swishGrad is d/dx x·σ(αx) = σ(αx) + αx·σ(αx)·(1−σ(αx)).
var swishGrad = ops.Derivative(func(x, _ float64, a graph.Attrs) float64 {
	alpha := float64(a.Float("alpha", 1))
	s := 1 / (1 + gomath.Exp(-alpha*x))
	return s + alpha*x*s*(1-s)
})

func gate(a, b *tensor.Tensor, alpha float64) ([]*tensor.Tensor, error) {
	if !a.DType.IsFloat() {
		return nil, ops.BadInput(0, "needs a float tensor, got %v", a)
	}
	v, _ := tensor.AsFloat64(a)
	var w []float64
	if b != nil {
		w, _ = tensor.AsFloat64(b)
	}
	for i, x := range v {
		v[i] = x / (1 + gomath.Exp(-alpha*x))
		if w != nil {
			v[i] *= w[i]
		}
	}
	y, err := elems.FromFloats(a.DType, a.Shape, v)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{y}, nil
}
