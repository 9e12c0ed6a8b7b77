package math

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// kernel is the shape of every arena-aware kernel in this package: it takes
// its outputs and scratch from a (nil: fresh memory). As a func type with
// methods it is an ops.ArenaOp without a struct per op, and since it is
// built once per node, calling it allocates nothing.
type kernel func(a *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error)

// Run is RunWith(nil, in).
func (k kernel) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return k(nil, in) }

// RunWith runs the kernel with outputs and scratch from a.
func (k kernel) RunWith(a *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return k(a, in)
}

var _ ops.ArenaOp = kernel(nil)

// isHalf reports whether dt is one of the 16-bit float formats, which the
// kernels compute in float32.
func isHalf(dt tensor.DType) bool { return dt == tensor.Float16 || dt == tensor.BFloat16 }

// toF32 widens a float16 or bfloat16 tensor to a float32 tensor from ar;
// other tensors are returned unchanged.
func toF32(ar *ops.Arena, t *tensor.Tensor) *tensor.Tensor {
	if t == nil {
		return nil
	}
	switch d := t.Data.(type) {
	case []tensor.Float16Bits:
		w, err := ar.Empty(tensor.Float32, t.Shape)
		if err != nil {
			return t // the shape is already valid: cannot happen
		}
		out := w.Data.([]float32)[:len(d)]
		for i, v := range d {
			out[i] = tensor.Float16ToFloat32(v)
		}
		return w
	case []tensor.BFloat16Bits:
		w, err := ar.Empty(tensor.Float32, t.Shape)
		if err != nil {
			return t
		}
		out := w.Data.([]float32)[:len(d)]
		for i, v := range d {
			out[i] = tensor.BFloat16ToFloat32(v)
		}
		return w
	}
	return t
}

// fromF32 narrows a float32 tensor to dt (float16 or bfloat16) in a tensor
// from ar; for any other dt it returns t unchanged.
func fromF32(ar *ops.Arena, t *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	if t == nil || t.DType != tensor.Float32 || !isHalf(dt) {
		return t
	}
	d := t.Data.([]float32)
	r, err := ar.Empty(dt, t.Shape)
	if err != nil {
		return t
	}
	switch out := r.Data.(type) {
	case []tensor.Float16Bits:
		out = out[:len(d)]
		for i, v := range d {
			out[i] = tensor.Float32ToFloat16(v)
		}
	case []tensor.BFloat16Bits:
		out = out[:len(d)]
		for i, v := range d {
			out[i] = tensor.Float32ToBFloat16(v)
		}
	}
	return r
}

// sameDType checks that inputs 1.. have the dtype of input 0 (nil inputs are
// skipped).
func sameDType(in []*tensor.Tensor) error {
	for i := 1; i < len(in); i++ {
		if in[i] != nil && in[i].DType != in[0].DType {
			return ops.BadInput(i, "dtype %v (shape %v) differs from input 0's %v", in[i].DType, in[i].Shape, in[0].DType)
		}
	}
	return nil
}

// unsupported is the error for a dtype an op does not implement.
func unsupported(i int, t *tensor.Tensor) error {
	return ops.BadInput(i, "dtype %v (shape %v) is not supported", t.DType, t.Shape)
}

// fixed returns a factory for an op without attributes.
func fixed(run kernel) ops.Factory {
	return func(*ops.Config) (ops.Op, error) { return run, nil }
}

// one wraps a single-output result in the arena's result list.
func one(a *ops.Arena, t *tensor.Tensor, err error) ([]*tensor.Tensor, error) {
	if err != nil {
		return nil, err
	}
	return a.Outputs(t), nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
