package math

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Register("", "Max", 1, fixed(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return one(variadic(opMax, false, in)) }))
	ops.Register("", "Min", 1, fixed(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return one(variadic(opMin, false, in)) }))
	ops.Register("", "Sum", 1, fixed(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return one(variadic(opAdd, false, in)) }))
	ops.Register("", "Mean", 1, fixed(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return one(variadic(opAdd, true, in)) }))
	ops.Register("", "Where", 9, fixed(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 3); err != nil {
			return nil, err
		}
		return one(where(in[0], in[1], in[2]))
	}))
}

// variadic folds op over the inputs with broadcasting, accumulating in place
// once the accumulator is its own buffer. mean divides by the input count.
func variadic(op arithOp, mean bool, in []*tensor.Tensor) (*tensor.Tensor, error) {
	if len(in) == 0 {
		return nil, errorf("need at least 1 input, got 0")
	}
	if err := ops.NeedInputs(in, len(in)); err != nil {
		return nil, err
	}
	if err := sameDType(in); err != nil {
		return nil, err
	}
	dt := in[0].DType
	if isHalf(dt) {
		w := make([]*tensor.Tensor, len(in))
		for i, t := range in {
			w[i] = toF32(t)
		}
		r, err := variadic(op, mean, w)
		if err != nil {
			return nil, err
		}
		return fromF32(r, dt), nil
	}
	if !dt.IsFloat() && !dt.IsInteger() {
		return nil, unsupported(0, in[0])
	}
	var acc *tensor.Tensor
	if len(in) == 1 {
		if err := lenMatches(0, in[0], tensor.DataLen(in[0].Data)); err != nil {
			return nil, err
		}
		acc = in[0].Clone()
	} else {
		var err error
		if acc, err = arith(op, nil, in[0], in[1]); err != nil {
			return nil, err
		}
		for i := 2; i < len(in); i++ {
			if acc, err = arith(op, acc, acc, in[i]); err != nil {
				return nil, ops.BadInput(i, "%v", err)
			}
		}
	}
	if mean && len(in) > 1 {
		switch d := acc.Data.(type) {
		case []float32:
			scaleDiv(d, len(in))
		case []float64:
			scaleDiv(d, len(in))
		case []int8:
			scaleDiv(d, len(in))
		case []int16:
			scaleDiv(d, len(in))
		case []int32:
			scaleDiv(d, len(in))
		case []int64:
			scaleDiv(d, len(in))
		case []uint8:
			scaleDiv(d, len(in))
		case []uint16:
			scaleDiv(d, len(in))
		case []uint32:
			scaleDiv(d, len(in))
		case []uint64:
			scaleDiv(d, len(in))
		}
	}
	return acc, nil
}

func scaleDiv[T num](d []T, n int) {
	nt := T(n)
	for i := range d {
		d[i] /= nt
	}
}

// where selects x where cond is true and y elsewhere, broadcasting all three.
func where(c, x, y *tensor.Tensor) (*tensor.Tensor, error) {
	cd, ok := c.Data.([]bool)
	if !ok {
		return nil, ops.BadInput(0, "dtype %v (shape %v): want bool", c.DType, c.Shape)
	}
	if y.DType != x.DType {
		return nil, ops.BadInput(2, "dtype %v (shape %v) differs from input 1's %v", y.DType, y.Shape, x.DType)
	}
	for i, t := range []*tensor.Tensor{c, x, y} {
		if err := lenMatches(i, t, tensor.DataLen(t.Data)); err != nil {
			return nil, err
		}
	}
	shape, idx, err := broadcastIndexes(c.Shape, x.Shape, y.Shape)
	if err != nil {
		return nil, errorf("inputs %v, %v, %v: %w", c, x, y, err)
	}
	var out any
	ok = false
	switch xd := x.Data.(type) {
	case []float32:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []float64:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []int8:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []int16:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []int32:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []int64:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []uint8:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []uint16:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []uint32:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []uint64:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []bool:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []string:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []tensor.Float16Bits:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	case []tensor.BFloat16Bits:
		out, ok = whereT(cd, xd, y.Data, idx, shape)
	default:
		return nil, unsupported(1, x)
	}
	if !ok {
		return nil, ops.BadInput(2, "%v tensor holds %T, input 1 holds %T", y.DType, y.Data, x.Data)
	}
	return &tensor.Tensor{DType: x.DType, Shape: shape, Data: out}, nil
}

func whereT[T any](c []bool, x []T, yAny any, idx [][]int, shape []int) (any, bool) {
	y, ok := yAny.([]T)
	if !ok {
		return nil, false
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	out := make([]T, n)
	if idx[0] == nil && idx[1] == nil && idx[2] == nil {
		c, x, y = c[:n], x[:n], y[:n]
		for i := range out {
			if c[i] {
				out[i] = x[i]
			} else {
				out[i] = y[i]
			}
		}
		return out, true
	}
	at := func(k, i int) int {
		if idx[k] == nil {
			return i
		}
		return idx[k][i]
	}
	for i := range out {
		if c[at(0, i)] {
			out[i] = x[at(1, i)]
		} else {
			out[i] = y[at(2, i)]
		}
	}
	return out, true
}
