package autodiff

import (
	"fmt"

	"github.com/mtlrun/mtlrun/tensor"
)

// typed picks the float32 or float64 instance of a generic rule by the
// dtype of the node's first input.
func typed(f32, f64 Rule) Rule {
	return func(c *Ctx) ([]*tensor.Tensor, error) {
		var dt tensor.DType
		for _, x := range c.In {
			if x != nil && x.DType.IsFloat() {
				dt = x.DType
				break
			}
		}
		switch dt {
		case tensor.Float32:
			return f32(c)
		case tensor.Float64:
			return f64(c)
		}
		return nil, errDType
	}
}

func data[T tensor.Float](t *tensor.Tensor) []T { return tensor.Data[T](t) }

// gradOr returns the output gradient, or zeros shaped like the output.
func gradOr[T tensor.Float](c *Ctx, i int) []T {
	if c.GradOut[i] != nil {
		return data[T](c.GradOut[i])
	}
	return make([]T, c.Out[i].Len())
}

// suffixBroadcast reports whether shape `small` (leading 1s aside) is the
// trailing part of `big`, so that broadcasting repeats it whole; it returns
// its element count.
func suffixBroadcast(small, big []int) (int, bool) {
	for len(small) > 0 && small[0] == 1 {
		small = small[1:]
	}
	if len(small) > len(big) {
		return 0, false
	}
	tail := big[len(big)-len(small):]
	if !tensor.SameShape(small, tail) {
		return 0, false
	}
	return prod(small), true
}

// sumTo reduces a gradient of broadcast shape `from` to shape `to`.
func sumTo[T tensor.Float](g []T, from, to []int) []T {
	if tensor.SameShape(from, to) {
		return g
	}
	if n, ok := suffixBroadcast(to, from); ok && n > 0 {
		// a bias: sum the repeated rows
		out := make([]T, n)
		for o := 0; o+n <= len(g); o += n {
			for j, v := range g[o : o+n] {
				out[j] += v
			}
		}
		return out
	}
	out := make([]T, prod(to))
	idx := tensor.BroadcastIndex(to, from)
	for i, v := range g {
		out[idx[i]] += v
	}
	return out
}

// bcast returns x's values at every position of the broadcast shape.
func bcast[T tensor.Float](x []T, shape, to []int) []T {
	if tensor.SameShape(shape, to) {
		return x
	}
	if n, ok := suffixBroadcast(shape, to); ok && n > 0 {
		out := make([]T, prod(to))
		for o := 0; o < len(out); o += n {
			copy(out[o:o+n], x)
		}
		return out
	}
	idx := tensor.BroadcastIndex(shape, to)
	out := make([]T, len(idx))
	for i, j := range idx {
		out[i] = x[j]
	}
	return out
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func like[T tensor.Float](x *tensor.Tensor, v []T) *tensor.Tensor {
	return &tensor.Tensor{DType: x.DType, Shape: append([]int{}, x.Shape...), Data: v}
}

// axisOf normalises an axis attribute.
func axisOf(axis int64, rank int) (int, error) {
	a := int(axis)
	if a < 0 {
		a += rank
	}
	if a < 0 || a >= rank {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	return a, nil
}
