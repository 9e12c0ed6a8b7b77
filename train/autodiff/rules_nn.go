package autodiff

import (
	"fmt"
	"math"
	"sort"

	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	register("Softmax", typed(gradSoftmax[float32], gradSoftmax[float64]), nil)
	register("LogSoftmax", typed(gradSoftmax[float32], gradSoftmax[float64]), nil)
	for _, op := range []string{"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSumSquare", "ReduceL2"} {
		register(op, typed(gradReduce[float32], gradReduce[float64]), nil)
	}
	register("GlobalAveragePool", typed(gradGlobalAvgPool[float32], gradGlobalAvgPool[float64]), nil)
	register("BatchNormalization", typed(gradBatchNorm[float32], gradBatchNorm[float64]), nil)
	register("LayerNormalization", typed(gradLayerNorm[float32], gradLayerNorm[float64]), nil)
	register("InstanceNormalization", typed(gradInstanceNorm[float32], gradInstanceNorm[float64]), nil)
}

// softmaxLayout returns (outer, n, inner) such that the softmax runs over n
// elements spaced inner apart, for the opset's axis semantics.
func softmaxLayout(c *Ctx, shape []int) (outer, n, inner int, err error) {
	rank := len(shape)
	if c.Opset < 13 {
		axis, err := axisOf(c.Attrs.Int("axis", 1), max(rank, 1))
		if err != nil {
			return 0, 0, 0, err
		}
		return prod(shape[:axis]), prod(shape[axis:]), 1, nil
	}
	axis, err := axisOf(c.Attrs.Int("axis", -1), rank)
	if err != nil {
		return 0, 0, 0, err
	}
	return prod(shape[:axis]), shape[axis], prod(shape[axis+1:]), nil
}

func gradSoftmax[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	y, gy := data[T](c.Out[0]), gradOr[T](c, 0)
	outer, n, inner, err := softmaxLayout(c, c.Out[0].Shape)
	if err != nil {
		return nil, err
	}
	logSoftmax := c.Node.OpType == "LogSoftmax"
	gx := make([]T, len(y))
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			base := o*n*inner + in
			var s T
			for j := 0; j < n; j++ {
				idx := base + j*inner
				if logSoftmax {
					s += gy[idx]
				} else {
					s += gy[idx] * y[idx]
				}
			}
			for j := 0; j < n; j++ {
				idx := base + j*inner
				if logSoftmax {
					gx[idx] = gy[idx] - T(math.Exp(float64(y[idx])))*s
				} else {
					gx[idx] = y[idx] * (gy[idx] - s)
				}
			}
		}
	}
	return []*tensor.Tensor{like(c.In[0], gx)}, nil
}

// reduceAxes resolves the reduced axes of a Reduce* node in either the
// attribute (older opsets) or the input form.
func reduceAxes(c *Ctx) ([]int, error) {
	rank := c.In[0].Rank()
	var raw []int64
	inputForm := (c.Node.OpType == "ReduceSum" && c.Opset >= 13) || c.Opset >= 18
	if inputForm {
		if len(c.In) > 1 && c.In[1] != nil {
			v, err := tensor.AsInt64(c.In[1])
			if err != nil {
				return nil, err
			}
			raw = v
		}
		if len(raw) == 0 && c.Attrs.Int("noop_with_empty_axes", 0) != 0 {
			return nil, nil
		}
	} else {
		raw = c.Attrs.Ints("axes")
	}
	if len(raw) == 0 {
		all := make([]int, rank)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	axes := make([]int, 0, len(raw))
	for _, a := range raw {
		ax, err := axisOf(a, rank)
		if err != nil {
			return nil, err
		}
		axes = append(axes, ax)
	}
	sort.Ints(axes)
	return axes, nil
}

func gradReduce[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	x := c.In[0]
	axes, err := reduceAxes(c)
	if err != nil {
		return nil, err
	}
	if axes == nil { // noop
		return []*tensor.Tensor{like(x, gradOr[T](c, 0))}, nil
	}
	kept := append([]int{}, x.Shape...)
	count := 1
	for _, a := range axes {
		count *= kept[a]
		kept[a] = 1
	}
	gy := bcast(gradOr[T](c, 0), kept, x.Shape)
	xv := data[T](x)
	gx := make([]T, len(xv))
	switch c.Node.OpType {
	case "ReduceSum":
		copy(gx, gy)
	case "ReduceMean":
		for i, g := range gy {
			gx[i] = g / T(count)
		}
	case "ReduceSumSquare":
		for i, g := range gy {
			gx[i] = 2 * xv[i] * g
		}
	case "ReduceL2":
		y := bcast(data[T](c.Out[0]), kept, x.Shape)
		for i, g := range gy {
			if y[i] != 0 {
				gx[i] = g * xv[i] / y[i]
			}
		}
	case "ReduceMax", "ReduceMin":
		// the gradient goes to every element equal to the extremum, shared
		// evenly among ties (as torch.amax/amin)
		y := bcast(data[T](c.Out[0]), kept, x.Shape)
		ties := make([]T, prod(kept))
		idx := tensor.BroadcastIndex(kept, x.Shape)
		for i := range xv {
			if xv[i] == y[i] {
				ties[idx[i]]++
			}
		}
		for i := range xv {
			if xv[i] == y[i] {
				gx[i] = gy[i] / ties[idx[i]]
			}
		}
	default:
		return nil, fmt.Errorf("no rule for %s", c.Node.OpType)
	}
	out := make([]*tensor.Tensor, len(c.In))
	out[0] = like(x, gx)
	return out, nil
}

func gradGlobalAvgPool[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	x := c.In[0]
	if x.Rank() < 2 {
		return nil, fmt.Errorf("input rank %d", x.Rank())
	}
	spatial := prod(x.Shape[2:])
	gy := gradOr[T](c, 0)
	gx := make([]T, x.Len())
	for nc := 0; nc < x.Shape[0]*x.Shape[1]; nc++ {
		g := gy[nc] / T(spatial)
		for s := 0; s < spatial; s++ {
			gx[nc*spatial+s] = g
		}
	}
	return []*tensor.Tensor{like(x, gx)}, nil
}

// gradBatchNorm differentiates inference-mode BatchNormalization (running
// statistics are constants), which is how exported models use it.
func gradBatchNorm[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	x, scaleT, mean, variance := c.In[0], c.In[1], c.In[3], c.In[4]
	eps := T(c.Attrs.Float("epsilon", 1e-5))
	ch := x.Shape[1]
	spatial := prod(x.Shape[2:])
	xv, sc, mu, vr := data[T](x), data[T](scaleT), data[T](mean), data[T](variance)
	gy := gradOr[T](c, 0)
	gx := make([]T, len(xv))
	gs, gb := make([]T, ch), make([]T, ch)
	for n := 0; n < x.Shape[0]; n++ {
		for k := 0; k < ch; k++ {
			inv := 1 / T(math.Sqrt(float64(vr[k]+eps)))
			base := (n*ch + k) * spatial
			for s := 0; s < spatial; s++ {
				g := gy[base+s]
				gx[base+s] = g * sc[k] * inv
				gs[k] += g * (xv[base+s] - mu[k]) * inv
				gb[k] += g
			}
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	out[0] = like(x, gx)
	out[1] = like(scaleT, gs)
	out[2] = like(c.In[2], gb)
	return out, nil
}

func gradLayerNorm[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	x := c.In[0]
	axis, err := axisOf(c.Attrs.Int("axis", -1), x.Rank())
	if err != nil {
		return nil, err
	}
	eps := float64(c.Attrs.Float("epsilon", 1e-5))
	rows, n := prod(x.Shape[:axis]), prod(x.Shape[axis:])
	xv, gamma := data[T](x), data[T](c.In[1])
	gy := gradOr[T](c, 0)
	gx, gg, gbeta := make([]T, len(xv)), make([]T, n), make([]T, n)
	xhat := make([]float64, n)
	for r := 0; r < rows; r++ {
		row := xv[r*n : (r+1)*n]
		mean, inv := normStats(row, eps)
		var sumG, sumGX float64
		for j, a := range row {
			xhat[j] = (float64(a) - mean) * inv
			g := float64(gy[r*n+j])
			gg[j] += T(g * xhat[j])
			gbeta[j] += T(g)
			gh := g * float64(gamma[j])
			sumG += gh
			sumGX += gh * xhat[j]
		}
		for j := range row {
			gh := float64(gy[r*n+j]) * float64(gamma[j])
			gx[r*n+j] = T(inv / float64(n) * (float64(n)*gh - sumG - xhat[j]*sumGX))
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	out[0] = like(x, gx)
	out[1] = like(c.In[1], gg)
	if len(c.In) > 2 && c.In[2] != nil {
		out[2] = like(c.In[2], gbeta)
	}
	return out, nil
}

// gradInstanceNorm: each (n, c) plane is normalised over its spatial
// elements, then scaled and shifted per channel.
func gradInstanceNorm[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	x := c.In[0]
	if x.Rank() < 3 {
		return nil, fmt.Errorf("input rank %d, want N×C×spatial", x.Rank())
	}
	eps := float64(c.Attrs.Float("epsilon", 1e-5))
	ch, n := x.Shape[1], prod(x.Shape[2:])
	xv, gamma, gy := data[T](x), data[T](c.In[1]), gradOr[T](c, 0)
	gx, gg, gb := make([]T, len(xv)), make([]T, ch), make([]T, ch)
	xhat := make([]float64, n)
	for pl := 0; pl < x.Shape[0]*ch; pl++ {
		k := pl % ch
		row, grow := xv[pl*n:(pl+1)*n], gy[pl*n:(pl+1)*n]
		mean, inv := normStats(row, eps)
		var sumG, sumGX float64
		for j, a := range row {
			xhat[j] = (float64(a) - mean) * inv
			g := float64(grow[j])
			sumG += g
			sumGX += g * xhat[j]
		}
		gg[k] += T(sumGX)
		gb[k] += T(sumG)
		sc := float64(gamma[k])
		for j := range row {
			gx[pl*n+j] = T(sc * inv / float64(n) * (float64(n)*float64(grow[j]) - sumG - xhat[j]*sumGX))
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	out[0], out[1] = like(x, gx), like(c.In[1], gg)
	if len(c.In) > 2 && c.In[2] != nil {
		out[2] = like(c.In[2], gb)
	}
	return out, nil
}

// normStats gives a row's mean and 1/sqrt(population variance + eps), in
// float64, as the normalisation rules' backward passes need them.
func normStats[T tensor.Float](row []T, eps float64) (mean, inv float64) {
	var v float64
	for _, a := range row {
		mean += float64(a)
	}
	mean /= float64(len(row))
	for _, a := range row {
		v += (float64(a) - mean) * (float64(a) - mean)
	}
	return mean, 1 / math.Sqrt(v/float64(len(row))+eps)
}
