package autodiff

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops/nn"
	"github.com/mtlrun/mtlrun/tensor"
)

// Resize and Upsample are linear in their data input: every mode (nearest,
// linear, cubic, antialiased) is a per-axis sum of weighted taps
// (nn.ResizePlan). The gradient is the transpose: each axis step, last
// first, scatters an output position's gradient back to its taps with the
// same weights. Extrapolated positions (tf_crop_and_resize outside the roi)
// are constants and pass nothing back. roi, scales and sizes are not
// differentiated.

func init() {
	register("Resize", gradResize, nil)
	register("Upsample", gradResize, nil)
}

func gradResize(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil || !c.Need[0] {
		return out, nil
	}
	steps, err := nn.ResizePlan(c.Kernel, c.In)
	if err != nil {
		return nil, err
	}
	x := c.In[0]
	// the shape before each step
	shapes := make([][]int, len(steps)+1)
	shapes[0] = append([]int{}, x.Shape...)
	for i, st := range steps {
		s := append([]int{}, shapes[i]...)
		s[st.Axis] = st.OutLen
		shapes[i+1] = s
	}
	if !tensor.SameShape(shapes[len(steps)], c.GradOut[0].Shape) {
		return nil, fmt.Errorf("gradient shape %v, output %v", c.GradOut[0].Shape, shapes[len(steps)])
	}
	switch x.DType {
	case tensor.Float32:
		out[0] = like(x, resizeBack(data[float32](c.GradOut[0]), steps, shapes))
	case tensor.Float64:
		out[0] = like(x, resizeBack(data[float64](c.GradOut[0]), steps, shapes))
	default:
		return nil, errDType
	}
	return out, nil
}

// resizeBack applies the transposed steps to the output gradient g.
func resizeBack[T tensor.Float](g []T, steps []nn.ResizeStep, shapes [][]int) []T {
	for s := len(steps) - 1; s >= 0; s-- {
		st, shape := steps[s], shapes[s]
		a, inW, outW := st.Axis, st.InLen, st.OutLen
		outer, inner := prod(shape[:a]), prod(shape[a+1:])
		gx := make([]T, outer*inW*inner)
		for y := 0; y < outW; y++ {
			if st.Extrapolated[y] {
				continue
			}
			idx, w := st.Index[y], st.Weight[y]
			for o := 0; o < outer; o++ {
				src := g[(o*outW+y)*inner:][:inner]
				for t, p := range idx {
					if w[t] == 0 {
						continue
					}
					wt := T(w[t])
					dst := gx[(o*inW+p)*inner:][:inner]
					for i, v := range src {
						dst[i] += wt * v
					}
				}
			}
		}
		g = gx
	}
	return g
}
