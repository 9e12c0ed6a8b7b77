package autodiff

import (
	"math"

	"github.com/mtlrun/mtlrun/tensor"
)

// Mod on floats: y = a − b·q with q the whole number of b's taken out
// (truncated with fmod=1, floored otherwise), piecewise constant in a and
// b, so da = g and db = −g·q. Integer Mod carries no gradient (its values
// are never on a float path).

func init() {
	register("Mod", typed(gradMod[float32], gradMod[float64]), nil)
}

func gradMod[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil {
		return out, nil
	}
	a, b, gy := binaryParts[T](c)
	y := data[T](c.Out[0])
	ys := c.Out[0].Shape
	if c.Need[0] {
		out[0] = like(c.In[0], sumTo(append([]T(nil), gy...), ys, c.In[0].Shape))
	}
	if c.Need[1] {
		gb := make([]T, len(gy))
		for i, g := range gy {
			q := math.Round(float64(a[i]-y[i]) / float64(b[i]))
			gb[i] = -g * T(q)
		}
		out[1] = like(c.In[1], sumTo(gb, ys, c.In[1].Shape))
	}
	return out, nil
}
