package autodiff

import (
	"fmt"

	"github.com/mtlrun/mtlrun/tensor"
)

// Data-movement ops (Reshape, Transpose, Slice, Gather, Concat, Split, ...)
// share one backward rule: run the node's own forward kernel on a tensor of
// element positions (1-based int64, 0 marks "no source", e.g. padding) in
// place of each differentiable input. The result says, for every output
// element, which input element it came from; the gradient is then a
// scatter-add. This reuses the forward semantics exactly, so every attribute
// and opset variant the kernel supports is differentiated correctly.

// The ops using it declare ops.Movement(dataInputs...) in their
// descriptors: the inputs that carry data (others are indices, shapes or
// axes; none listed means every input).

// movement returns the rule for an op whose data inputs are dataIns (nil:
// every input).
func movement(dataIns []int) Rule {
	return func(c *Ctx) ([]*tensor.Tensor, error) { return gradMovement(c, dataIns) }
}

func gradMovement(c *Ctx, dataIns []int) ([]*tensor.Tensor, error) {
	if dataIns == nil {
		for i := range c.In {
			dataIns = append(dataIns, i)
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	for _, i := range dataIns {
		if i >= len(c.In) || !c.Need[i] {
			continue
		}
		probe := make([]*tensor.Tensor, len(c.In))
		copy(probe, c.In)
		for _, j := range dataIns {
			if j < len(c.In) && c.In[j] != nil {
				z, err := tensor.New(tensor.Int64, c.In[j].Shape)
				if err != nil {
					return nil, err
				}
				probe[j] = z
			}
		}
		pos := make([]int64, c.In[i].Len())
		for k := range pos {
			pos[k] = int64(k + 1)
		}
		probe[i] = tensor.From(c.In[i].Shape, pos)
		if c.Node.OpType == "Pad" && len(probe) > 2 && probe[2] != nil {
			probe[2] = tensor.Scalar(int64(0)) // constant_value: padding has no source
		}
		routed, err := c.Kernel.Run(probe)
		if err != nil {
			return nil, fmt.Errorf("routing input %d: %w", i, err)
		}
		var err2 error
		switch c.In[i].DType {
		case tensor.Float32:
			out[i], err2 = scatter[float32](c, routed, c.In[i])
		case tensor.Float64:
			out[i], err2 = scatter[float64](c, routed, c.In[i])
		default:
			return nil, errDType
		}
		if err2 != nil {
			return nil, err2
		}
	}
	return out, nil
}

func scatter[T tensor.Float](c *Ctx, routed []*tensor.Tensor, in *tensor.Tensor) (*tensor.Tensor, error) {
	gx := make([]T, in.Len())
	for k, r := range routed {
		if r == nil || k >= len(c.GradOut) || c.GradOut[k] == nil {
			continue
		}
		src := tensor.Data[int64](r)
		gy := data[T](c.GradOut[k])
		if len(src) != len(gy) {
			return nil, fmt.Errorf("output %d: routing has %d elements, gradient %d", k, len(src), len(gy))
		}
		for e, s := range src {
			if s > 0 {
				gx[s-1] += gy[e]
			}
		}
	}
	return like(in, gx), nil
}
