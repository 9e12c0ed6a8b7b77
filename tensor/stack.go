package tensor

import (
	"fmt"
	"reflect"
)

// Stack joins same-shaped tensors along a new leading axis.
func Stack(ts []*Tensor) (*Tensor, error) {
	if len(ts) == 0 {
		return nil, fmt.Errorf("tensor: Stack of nothing")
	}
	first := ts[0]
	shape := append([]int{len(ts)}, first.Shape...)
	out, err := New(first.DType, shape)
	if err != nil {
		return nil, err
	}
	per := first.Len()
	dst := reflect.ValueOf(out.Data)
	for i, t := range ts {
		if t.DType != first.DType || !SameShape(t.Shape, first.Shape) {
			return nil, fmt.Errorf("tensor: Stack element %d is %v, element 0 is %v", i, t, first)
		}
		reflect.Copy(dst.Slice(i*per, (i+1)*per), reflect.ValueOf(t.Data))
	}
	return out, nil
}

// Unstack splits a tensor along its leading axis into views that share data.
func Unstack(t *Tensor) ([]*Tensor, error) {
	if t.Rank() == 0 {
		return nil, fmt.Errorf("tensor: cannot unstack a scalar")
	}
	n := t.Shape[0]
	inner := t.Shape[1:]
	per := 1
	for _, d := range inner {
		per *= d
	}
	src := reflect.ValueOf(t.Data)
	out := make([]*Tensor, n)
	for i := range out {
		out[i] = &Tensor{DType: t.DType, Shape: append([]int{}, inner...), Data: src.Slice(i*per, (i+1)*per).Interface()}
	}
	return out, nil
}
