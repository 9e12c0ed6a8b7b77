package autodiff

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/tensor"
)

// Backward rules of the reductions rules_nn.go's gradReduce leaves out
// (ReduceProd, ReduceL1, ReduceLogSum, ReduceLogSumExp) and of CumProd.
// Computed in float64.

func init() {
	for _, op := range []string{"ReduceProd", "ReduceL1", "ReduceLogSum", "ReduceLogSumExp"} {
		register(op, gradReduceMore, nil)
	}
	register("CumProd", gradCumProd, nil)
}

// gradReduceMore: ReduceL1 passes g·sign(x); ReduceLogSum g/Σx = g·e^−y;
// ReduceLogSumExp g·e^(x−y); ReduceProd g times the product of the other
// elements of the group (exactly, also where elements are zero).
func gradReduceMore(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil || !c.Need[0] {
		return out, nil
	}
	x := c.In[0]
	axes, err := reduceAxes(c)
	if err != nil {
		return nil, err
	}
	g, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	if axes == nil { // noop: the input unchanged
		out[0], err = asDType(x, x.Shape, g)
		return out, err
	}
	kept := append([]int{}, x.Shape...)
	for _, a := range axes {
		kept[a] = 1
	}
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, err
	}
	yk, err := tensor.AsFloat64(c.Out[0])
	if err != nil {
		return nil, err
	}
	idx := tensor.BroadcastIndex(kept, x.Shape)
	gx := make([]float64, len(xv))
	switch c.Node.OpType {
	case "ReduceL1":
		for i, j := range idx {
			switch {
			case xv[i] > 0:
				gx[i] = g[j]
			case xv[i] < 0:
				gx[i] = -g[j]
			}
		}
	case "ReduceLogSum":
		for i, j := range idx {
			gx[i] = g[j] * math.Exp(-yk[j])
		}
	case "ReduceLogSumExp":
		for i, j := range idx {
			gx[i] = g[j] * math.Exp(xv[i]-yk[j])
		}
	case "ReduceProd":
		nk := prod(kept)
		zeros, nz := make([]int, nk), make([]float64, nk)
		for j := range nz {
			nz[j] = 1
		}
		for i, j := range idx {
			if xv[i] == 0 {
				zeros[j]++
			} else {
				nz[j] *= xv[i]
			}
		}
		for i, j := range idx {
			switch {
			case zeros[j] == 0:
				gx[i] = g[j] * nz[j] / xv[i]
			case zeros[j] == 1 && xv[i] == 0:
				gx[i] = g[j] * nz[j]
			}
		}
	default:
		return nil, fmt.Errorf("no rule for %s", c.Node.OpType)
	}
	out[0], err = asDType(x, x.Shape, gx)
	return out, err
}

// gradCumProd: along each line z (in scan order), the output at t is the
// product of z over its window (u ≤ t, or u < t when exclusive), so
// dz_s = Σ_{t: s in window(t)} g_t·Π_{u in window(t), u≠s} z_u, summed in
// O(k²) per line without dividing (exact at zeros).
func gradCumProd(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil || !c.Need[0] {
		return out, nil
	}
	x := c.In[0]
	av, err := tensor.AsInt64(c.In[1])
	if err != nil || len(av) != 1 {
		return nil, fmt.Errorf("CumProd axis %v", c.In[1])
	}
	axis, err := axisOf(av[0], x.Rank())
	if err != nil {
		return nil, err
	}
	exclusive, reverse := c.Attrs.Int("exclusive", 0) != 0, c.Attrs.Int("reverse", 0) != 0
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, err
	}
	g, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	outer, k, inner := prod(x.Shape[:axis]), x.Shape[axis], prod(x.Shape[axis+1:])
	gx := make([]float64, len(xv))
	pos := make([]int, k) // scan order → flat offset
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			for t := range pos {
				e := t
				if reverse {
					e = k - 1 - t
				}
				pos[t] = (o*k+e)*inner + i
			}
			pre := 1.0 // Π_{u<s} z_u
			for s := 0; s < k; s++ {
				acc, sum := pre, 0.0
				if exclusive {
					for t := s + 1; t < k; t++ {
						if t-1 > s {
							acc *= xv[pos[t-1]]
						}
						sum += g[pos[t]] * acc
					}
				} else {
					for t := s; t < k; t++ {
						if t > s {
							acc *= xv[pos[t]]
						}
						sum += g[pos[t]] * acc
					}
				}
				gx[pos[s]] = sum
				pre *= xv[pos[s]]
			}
		}
	}
	out[0], err = asDType(x, x.Shape, gx)
	return out, err
}
