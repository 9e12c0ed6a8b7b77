package shape

import (
	"math"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Selection and generator kernels: OneHot, NonZero, Compress, EyeLike.

func init() {
	ops.Define(ops.Desc{Type: "OneHot", Since: 9, Grad: ops.NotDifferentiable("its inputs are indices and the on/off values"), Kernel: newOneHot})
	ops.Define(ops.Desc{Type: "NonZero", Since: 9, Grad: ops.ZeroGradient("its output is indices"), Traits: ops.ShapeOnly, Kernel: func(*ops.Config) (ops.Op, error) { return ops.OpFunc(runNonZero), nil }})
	ops.Define(ops.Desc{Type: "Compress", Since: 9, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: newCompress})
	ops.Define(ops.Desc{Type: "EyeLike", Since: 9, Grad: ops.ZeroGradient("its output depends only on the input shape"), Kernel: newEyeLike})
}

// ---- OneHot ----

func newOneHot(c *ops.Config) (ops.Op, error) {
	axisAttr := c.Attrs.Int("axis", -1)
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 3); err != nil {
			return nil, err
		}
		ind, depthT, values := in[0], in[1], in[2]
		if values.Len() != 2 || values.Rank() > 1 {
			return nil, ops.BadInput(2, "OneHot values must be [off, on], got %v", values)
		}
		df, err := tensor.AsFloat64(depthT)
		if err != nil || len(df) != 1 {
			return nil, ops.BadInput(1, "OneHot depth must be one number, got %v", depthT)
		}
		depth := int(df[0])
		if depth < 1 || float64(depth) != math.Trunc(df[0]) {
			return nil, ops.BadInput(1, "OneHot depth must be a positive integer, got %v", df[0])
		}
		idx, err := tensor.AsFloat64(ind)
		if err != nil {
			return nil, ops.BadInput(0, "OneHot indices: %v", err)
		}
		r := ind.Rank() + 1
		axis, err := normAxis(axisAttr, r)
		if err != nil {
			return nil, ops.BadInput(0, "OneHot axis %d invalid for output rank %d", axisAttr, r)
		}
		shape := append(append(append([]int{}, ind.Shape[:axis]...), depth), ind.Shape[axis:]...)
		outer, inner := elems.Prod(ind.Shape[:axis]), elems.Prod(ind.Shape[axis:])
		pick := make([]int, outer*depth*inner) // 0 = off value, 1 = on value
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				v := int64(idx[o*inner+i]) // indices truncate toward zero, as float inputs allow
				if v < 0 {
					v += int64(depth)
				}
				if v >= 0 && v < int64(depth) {
					pick[(o*depth+int(v))*inner+i] = 1
				}
			}
		}
		out, err := elems.Take(values, shape, pick)
		if err != nil {
			return nil, ops.BadInput(2, "OneHot: %v", err)
		}
		return []*tensor.Tensor{out}, nil
	}), nil
}

// ---- NonZero ----

func runNonZero(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	v, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, ops.BadInput(0, "NonZero: %v", err)
	}
	var hits []int
	for i, f := range v {
		if f != 0 {
			hits = append(hits, i)
		}
	}
	r := x.Rank()
	st := tensor.Strides(x.Shape)
	if r == 0 { // a scalar reads as rank 1 of length 1 (onnxruntime and numpy agree)
		r, st = 1, []int{1}
	}
	out := make([]int64, r*len(hits))
	for j, h := range hits {
		for d := 0; d < r; d++ {
			out[d*len(hits)+j] = int64(h / st[d])
			h %= st[d]
		}
	}
	return []*tensor.Tensor{tensor.From([]int{r, len(hits)}, out)}, nil
}

// ---- Compress ----

func newCompress(c *ops.Config) (ops.Op, error) {
	hasAxis := c.Attrs.Has("axis")
	axisAttr := c.Attrs.Int("axis", 0)
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		x, cond := in[0], in[1]
		cv, err := tensor.AsFloat64(cond)
		if err != nil || cond.Rank() != 1 {
			return nil, ops.BadInput(1, "Compress condition must be a 1-D bool tensor, got %v", cond)
		}
		shape := x.Shape
		if !hasAxis {
			shape = []int{x.Len()}
		}
		axis, err := normAxis(axisAttr, len(shape))
		if err != nil {
			return nil, ops.BadInput(0, "Compress axis %d invalid for %v", axisAttr, x)
		}
		if len(cv) > shape[axis] {
			return nil, ops.BadInput(1, "Compress condition %v longer than axis %d of %v", cond, axis, x)
		}
		var keep []int
		for i, f := range cv {
			if f != 0 {
				keep = append(keep, i)
			}
		}
		outer, k, inner := elems.Prod(shape[:axis]), shape[axis], elems.Prod(shape[axis+1:])
		src := make([]int, 0, outer*len(keep)*inner)
		for o := 0; o < outer; o++ {
			for _, j := range keep {
				for i := 0; i < inner; i++ {
					src = append(src, (o*k+j)*inner+i)
				}
			}
		}
		oshape := append([]int{}, shape...)
		oshape[axis] = len(keep)
		out, err := elems.Take(x, oshape, src)
		if err != nil {
			return nil, ops.BadInput(0, "Compress: %v", err)
		}
		return []*tensor.Tensor{out}, nil
	}), nil
}

// ---- EyeLike ----

func newEyeLike(c *ops.Config) (ops.Op, error) {
	dt := tensor.DType(c.Attrs.Int("dtype", 0))
	if c.Attrs.Has("dtype") && !dt.Supported() {
		return nil, ops.BadAttr("dtype", "unsupported dtype %v", dt)
	}
	k := int(c.Attrs.Int("k", 0))
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if x.Rank() != 2 {
			return nil, ops.BadInput(0, "EyeLike needs a 2-D input, got %v", x)
		}
		odt := dt
		if odt == tensor.Undefined {
			odt = x.DType
		}
		rows, cols := x.Shape[0], x.Shape[1]
		v := make([]float64, rows*cols)
		for i := 0; i < rows; i++ {
			if j := i + k; j >= 0 && j < cols {
				v[i*cols+j] = 1
			}
		}
		out, err := elems.FromFloats(odt, x.Shape, v)
		if err != nil {
			return nil, ops.BadInput(0, "EyeLike: %v", err)
		}
		return []*tensor.Tensor{out}, nil
	}), nil
}
