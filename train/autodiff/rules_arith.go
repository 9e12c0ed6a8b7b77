package autodiff

import "github.com/mtlrun/mtlrun/tensor"

// Mod on floats: y = a − b·q with q the whole number of b's taken out
// (truncated with fmod=1, floored otherwise) and piecewise constant, so
// da = g. The divisor is a constant of training (flow.go's gradInputs: a
// period is not a weight). Integer Mod carries no gradient (its values are
// never on a float path).

func init() {
	register("Mod", typed(gradMod[float32], gradMod[float64]), nil)
}

func gradMod[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil {
		return out, nil
	}
	if c.Need[0] {
		gy := gradOr[T](c, 0)
		out[0] = like(c.In[0], sumTo(append([]T(nil), gy...), c.Out[0].Shape, c.In[0].Shape))
	}
	return out, nil
}
