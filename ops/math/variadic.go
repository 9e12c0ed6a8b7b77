package math

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	reg := func(name string, op arithOp, mean bool) {
		ops.Define(ops.Desc{Type: name, Since: 1, Shape: ops.ShapeBroadcastInputs, Grad: noRuleYet, Traits: ops.Elementwise, Kernel: func(c *ops.Config) (ops.Op, error) {
			threads := c.Threads
			return kernel(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
				r, err := variadic(ar, threads, op, mean, in)
				return one(ar, r, err)
			}), nil
		}})
	}
	reg("Max", opMax, false)
	reg("Min", opMin, false)
	reg("Sum", opAdd, false)
	reg("Mean", opAdd, true)
	ops.Define(ops.Desc{Type: "Where", Since: 9, Traits: ops.Elementwise, Kernel: fixed(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 3); err != nil {
			return nil, err
		}
		r, err := where(ar, in[0], in[1], in[2])
		return one(ar, r, err)
	})})
}

// variadic folds op over the inputs with broadcasting, accumulating in place
// once the accumulator is its own buffer (never an input). mean divides by
// the input count.
func variadic(ar *ops.Arena, threads int, op arithOp, mean bool, in []*tensor.Tensor) (*tensor.Tensor, error) {
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
	half := isHalf(dt)
	if !half && !dt.IsFloat() && !dt.IsInteger() {
		return nil, unsupported(0, in[0])
	}
	// Float16/bfloat16 inputs are widened one at a time and folded in
	// float32, then narrowed once.
	var acc *tensor.Tensor
	if len(in) == 1 {
		x := in[0]
		if err := lenMatches(0, x, tensor.DataLen(x.Data)); err != nil {
			return nil, err
		}
		if half {
			return fromF32(ar, toF32(ar, x), dt), nil
		}
		var err error
		if acc, err = ar.Empty(dt, x.Shape); err != nil {
			return nil, err
		}
		copyData(acc.Data, x.Data)
		return acc, nil
	}
	var err error
	if acc, err = arith(ar, threads, op, nil, toF32(ar, in[0]), toF32(ar, in[1])); err != nil {
		return nil, err
	}
	for i := 2; i < len(in); i++ {
		if acc, err = arith(ar, threads, op, acc, acc, toF32(ar, in[i])); err != nil {
			return nil, ops.BadInput(i, "%v", err)
		}
	}
	if mean {
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
	if half {
		return fromF32(ar, acc, dt), nil
	}
	return acc, nil
}

// copyData copies between two data slices of the same type.
func copyData(dst, src any) {
	switch s := src.(type) {
	case []float32:
		copy(dst.([]float32), s)
	case []float64:
		copy(dst.([]float64), s)
	case []int8:
		copy(dst.([]int8), s)
	case []int16:
		copy(dst.([]int16), s)
	case []int32:
		copy(dst.([]int32), s)
	case []int64:
		copy(dst.([]int64), s)
	case []uint8:
		copy(dst.([]uint8), s)
	case []uint16:
		copy(dst.([]uint16), s)
	case []uint32:
		copy(dst.([]uint32), s)
	case []uint64:
		copy(dst.([]uint64), s)
	case []bool:
		copy(dst.([]bool), s)
	case []string:
		copy(dst.([]string), s)
	case []tensor.Float16Bits:
		copy(dst.([]tensor.Float16Bits), s)
	case []tensor.BFloat16Bits:
		copy(dst.([]tensor.BFloat16Bits), s)
	}
}

func scaleDiv[T num](d []T, n int) {
	nt := T(n)
	for i := range d {
		d[i] /= nt
	}
}

// where selects x where cond is true and y elsewhere, broadcasting all three.
func where(ar *ops.Arena, c, x, y *tensor.Tensor) (*tensor.Tensor, error) {
	cd, ok := c.Data.([]bool)
	if !ok {
		return nil, ops.BadInput(0, "dtype %v (shape %v): want bool", c.DType, c.Shape)
	}
	if y.DType != x.DType {
		return nil, ops.BadInput(2, "dtype %v (shape %v) differs from input 1's %v", y.DType, y.Shape, x.DType)
	}
	for i, t := range [3]*tensor.Tensor{c, x, y} {
		if err := lenMatches(i, t, tensor.DataLen(t.Data)); err != nil {
			return nil, err
		}
	}
	// The output shape, then per input the flat source index of each output
	// element (nil where the input already has the output's shape).
	s1, ok1 := broadcastShape(ar, c.Shape, x.Shape)
	shape, ok2 := s1, ok1
	if ok1 {
		shape, ok2 = broadcastShape(ar, s1, y.Shape)
	}
	if !ok1 || !ok2 {
		return nil, errorf("inputs %v, %v, %v: %w", c, x, y, broadcastErr(c.Shape, x.Shape, y.Shape))
	}
	n, err := tensor.NumElements(shape)
	if err != nil {
		return nil, err
	}
	var idx [3][]int
	var st, cnt []int
	for i, t := range [3]*tensor.Tensor{c, x, y} {
		if tensor.SameShape(t.Shape, shape) {
			continue
		}
		if st == nil {
			st, cnt = ar.Ints(len(shape)), ar.Ints(len(shape))
		}
		idx[i] = ar.Ints(n)
		broadcastIndex(idx[i], t.Shape, shape, st, cnt)
	}
	out, err := ar.Empty(x.DType, shape)
	if err != nil {
		return nil, err
	}
	ok = false
	switch xd := x.Data.(type) {
	case []float32:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []float64:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []int8:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []int16:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []int32:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []int64:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []uint8:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []uint16:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []uint32:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []uint64:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []bool:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []string:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []tensor.Float16Bits:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	case []tensor.BFloat16Bits:
		ok = whereT(out.Data, cd, xd, y.Data, &idx)
	default:
		return nil, unsupported(1, x)
	}
	if !ok {
		return nil, ops.BadInput(2, "%v tensor holds %T, input 1 holds %T", y.DType, y.Data, x.Data)
	}
	return out, nil
}

func whereT[T any](outAny any, c []bool, x []T, yAny any, idx *[3][]int) bool {
	y, ok := yAny.([]T)
	if !ok {
		return false
	}
	out := outAny.([]T)
	n := len(out)
	if idx[0] == nil && idx[1] == nil && idx[2] == nil {
		c, x, y = c[:n], x[:n], y[:n]
		for i := range out {
			if c[i] {
				out[i] = x[i]
			} else {
				out[i] = y[i]
			}
		}
		return true
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
	return true
}
