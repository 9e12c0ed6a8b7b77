package autodiff

import (
	"fmt"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
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

// gradScatter: with reduction none the op moves elements (data where no
// update lands, the update that lands last elsewhere), so the shared
// movement rule routes the gradient exactly as the kernel wrote; with
// reduction add, data's gradient is the output's and each update's is the
// output gradient where it landed (GatherElements / GatherND of it). The
// multiplicative and min/max reductions have no rule yet.
func gradScatter(c *Ctx) ([]*tensor.Tensor, error) {
	switch red := c.Attrs.String("reduction", "none"); red {
	case "none":
		return gradMovement(c, []int{0, 2})
	case "add":
	default:
		return nil, fmt.Errorf("training supports %s with reduction none or add, not %q", c.Node.OpType, red)
	}
	out := make([]*tensor.Tensor, len(c.In))
	g := c.GradOut[0]
	if g == nil {
		return out, nil
	}
	if c.Need[0] {
		out[0] = g
	}
	if c.Need[2] {
		op, attrs := "GatherND", graph.Attrs{}
		if c.Node.OpType != "ScatterND" {
			op = "GatherElements"
			attrs["axis"] = graph.Attr{Type: graph.AttrInt, Int: c.Attrs.Int("axis", 0)}
		}
		k, err := ops.New(&ops.Config{Name: c.Node.Label(), OpType: op, Opset: max(c.Opset, 13), Attrs: attrs, NumInputs: 2, NumOutputs: 1})
		if err != nil {
			return nil, err
		}
		gu, err := k.Run([]*tensor.Tensor{g, c.In[1]})
		if err != nil {
			return nil, fmt.Errorf("gradient of the updates: %w", err)
		}
		out[2] = gu[0]
	}
	return out, nil
}
