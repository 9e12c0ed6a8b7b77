package autodiff

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops/shape"
	"github.com/mtlrun/mtlrun/tensor"
)

// Backward rules of the selecting and scattering ops: TopK (the values'
// gradient goes to the positions its indices output names) and the
// scatters (ScatterElements, ScatterND and the deprecated Scatter).

func init() {
	register("TopK", typed(gradTopK[float32], gradTopK[float64]), nil)
	for _, op := range []string{"ScatterElements", "ScatterND", "Scatter"} {
		register(op, gradScatter, nil)
	}
}

// gradTopK scatters the values' gradient to the selected elements, read
// from the node's own indices output (ties and NaNs are resolved as the
// forward pass resolved them).
func gradTopK[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil || !c.Need[0] {
		return out, nil
	}
	x := c.In[0]
	axis, err := axisOf(c.Attrs.Int("axis", -1), x.Rank())
	if err != nil {
		return nil, err
	}
	ind, err := tensor.AsInt64(c.Out[1])
	if err != nil {
		return nil, err
	}
	outer, n, inner := prod(x.Shape[:axis]), x.Shape[axis], prod(x.Shape[axis+1:])
	k := c.Out[1].Shape[axis]
	gy := data[T](c.GradOut[0])
	if len(gy) != outer*k*inner || len(ind) != len(gy) {
		return nil, fmt.Errorf("gradient has %d elements, indices %d, want %d", len(gy), len(ind), outer*k*inner)
	}
	gx := make([]T, x.Len())
	for o := 0; o < outer; o++ {
		for j := 0; j < k; j++ {
			for i := 0; i < inner; i++ {
				e := (o*k+j)*inner + i
				p := ind[e]
				if p < 0 || p >= int64(n) {
					return nil, fmt.Errorf("index %d out of range for axis of size %d", p, n)
				}
				gx[(o*n+int(p))*inner+i] += gy[e]
			}
		}
	}
	out[0] = like(x, gx)
	return out, nil
}

// gradScatter differentiates every reduction through the data offset each
// update element goes to (shape.ScatterTargets, the kernel's own index
// arithmetic), in the kernel's order:
//   - none: the last update written to a position receives its gradient;
//     data keeps the gradient only where nothing was written;
//   - add: data and every update landing on a position receive its gradient;
//   - mul: y = data·Π updates, each factor receives g times the product of
//     the others (computed without dividing, so exact at zeros);
//   - max, min: the gradient goes to the elements equal to the result, data
//     and updates alike, shared evenly among ties (as ReduceMax).
func gradScatter(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil {
		return out, nil
	}
	red := c.Attrs.String("reduction", "none")
	switch red {
	case "none", "add", "mul", "max", "min":
	default:
		return nil, fmt.Errorf("%s reduction %q has no gradient rule", c.Node.OpType, red)
	}
	dst, err := shape.ScatterTargets(c.Node.OpType, c.Attrs.Int("axis", 0), c.In)
	if err != nil {
		return nil, err
	}
	data, err := tensor.AsFloat64(c.In[0])
	if err != nil {
		return nil, err
	}
	upd, err := tensor.AsFloat64(c.In[2])
	if err != nil {
		return nil, err
	}
	y, err := tensor.AsFloat64(c.Out[0])
	if err != nil {
		return nil, err
	}
	g, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	gd, gu := make([]float64, len(data)), make([]float64, len(upd))
	// the updates landing on each position, in order
	landing := map[int][]int{}
	for u, p := range dst {
		landing[p] = append(landing[p], u)
	}
	for p := range data {
		us := landing[p]
		if len(us) == 0 {
			gd[p] = g[p]
			continue
		}
		switch red {
		case "none":
			gu[us[len(us)-1]] = g[p]
		case "add":
			gd[p] = g[p]
			for _, u := range us {
				gu[u] = g[p]
			}
		case "mul":
			// factors: data[p] then the updates; each gets g·Π(others)
			f := append([]float64{data[p]}, make([]float64, len(us))...)
			for i, u := range us {
				f[1+i] = upd[u]
			}
			for i := range f {
				prod := g[p]
				for j, v := range f {
					if j != i {
						prod *= v
					}
				}
				if i == 0 {
					gd[p] = prod
				} else {
					gu[us[i-1]] = prod
				}
			}
		default: // max, min
			ties := 0.0
			if data[p] == y[p] {
				ties++
			}
			for _, u := range us {
				if upd[u] == y[p] {
					ties++
				}
			}
			if ties == 0 {
				continue
			}
			share := g[p] / ties
			if data[p] == y[p] {
				gd[p] = share
			}
			for _, u := range us {
				if upd[u] == y[p] {
					gu[u] = share
				}
			}
		}
	}
	if c.Need[0] {
		if out[0], err = asDType(c.In[0], c.In[0].Shape, gd); err != nil {
			return nil, err
		}
	}
	if c.Need[2] {
		if out[2], err = asDType(c.In[2], c.In[2].Shape, gu); err != nil {
			return nil, err
		}
	}
	return out, nil
}
