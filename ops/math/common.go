package math

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// isHalf reports whether dt is one of the 16-bit float formats, which the
// kernels compute in float32.
func isHalf(dt tensor.DType) bool { return dt == tensor.Float16 || dt == tensor.BFloat16 }

// toF32 widens a float16 or bfloat16 tensor to a new float32 tensor; other
// tensors are returned unchanged.
func toF32(t *tensor.Tensor) *tensor.Tensor {
	if t == nil {
		return nil
	}
	switch d := t.Data.(type) {
	case []tensor.Float16Bits:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = tensor.Float16ToFloat32(v)
		}
		return &tensor.Tensor{DType: tensor.Float32, Shape: t.Shape, Data: out}
	case []tensor.BFloat16Bits:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = tensor.BFloat16ToFloat32(v)
		}
		return &tensor.Tensor{DType: tensor.Float32, Shape: t.Shape, Data: out}
	}
	return t
}

// fromF32 narrows a float32 tensor to dt (float16 or bfloat16); for any other
// dt it returns t unchanged.
func fromF32(t *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	if t == nil || t.DType != tensor.Float32 {
		return t
	}
	d := t.Data.([]float32)
	switch dt {
	case tensor.Float16:
		out := make([]tensor.Float16Bits, len(d))
		for i, v := range d {
			out[i] = tensor.Float32ToFloat16(v)
		}
		return &tensor.Tensor{DType: dt, Shape: t.Shape, Data: out}
	case tensor.BFloat16:
		out := make([]tensor.BFloat16Bits, len(d))
		for i, v := range d {
			out[i] = tensor.Float32ToBFloat16(v)
		}
		return &tensor.Tensor{DType: dt, Shape: t.Shape, Data: out}
	}
	return t
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

// checkData verifies that every non-nil input's Data matches its dtype and
// shape, so the typed kernels can assert freely.
func checkData(in []*tensor.Tensor) error {
	for i, t := range in {
		if t == nil {
			continue
		}
		if err := t.Validate(); err != nil {
			return ops.BadInput(i, "%v", err)
		}
	}
	return nil
}

// unsupported is the error for a dtype an op does not implement.
func unsupported(i int, t *tensor.Tensor) error {
	return ops.BadInput(i, "dtype %v (shape %v) is not supported", t.DType, t.Shape)
}

// fixed returns a factory for an op without attributes.
func fixed(run func([]*tensor.Tensor) ([]*tensor.Tensor, error)) ops.Factory {
	return func(*ops.Config) (ops.Op, error) { return ops.OpFunc(run), nil }
}

// one wraps a single-output result.
func one(t *tensor.Tensor, err error) ([]*tensor.Tensor, error) {
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{t}, nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
