package autodiff

import "github.com/mtlrun/mtlrun/tensor"

// gradPReluAnyOpset is PRelu's rule at every opset: before opset 7 a slope
// of shape [C] applies along axis 1 (ops/math/prelu6.go), so it is viewed
// as [C, 1, ..., 1] for opset 7's broadcasting rule and its gradient
// reshaped back.
func gradPReluAnyOpset(c *Ctx) ([]*tensor.Tensor, error) {
	rule := typed(gradPRelu[float32], gradPRelu[float64])
	x, slope := c.In[0], c.In[1]
	if c.Opset >= 7 || slope.Rank() != 1 || slope.Len() <= 1 || x.Rank() < 2 || slope.Shape[0] != x.Shape[1] {
		return rule(c)
	}
	shape := make([]int, x.Rank()-1)
	shape[0] = slope.Shape[0]
	for i := 1; i < len(shape); i++ {
		shape[i] = 1
	}
	v, err := slope.Reshaped(shape)
	if err != nil {
		return nil, err
	}
	cc := *c
	cc.In = append([]*tensor.Tensor{}, c.In...)
	cc.In[1] = v
	out, err := rule(&cc)
	if err != nil {
		return nil, err
	}
	if len(out) > 1 && out[1] != nil {
		if out[1], err = out[1].Reshaped(slope.Shape); err != nil {
			return nil, err
		}
	}
	return out, nil
}
