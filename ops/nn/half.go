package nn

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// halfCompute wraps the factory of a float32 kernel (MatMul, Gemm, Conv,
// ConvTranspose) so that float16 and bfloat16 inputs run too: they are
// widened to float32, the float32 kernel computes (accumulating in float32)
// and the outputs are rounded back once. Inputs of other dtypes go straight
// to the kernel. The widened copies are new on every run, so the kernel that
// serves them is built without constant inputs (it caches nothing by
// address).
func halfCompute(f ops.Factory) ops.Factory {
	return func(c *ops.Config) (ops.Op, error) {
		inner, err := f(c)
		if err != nil {
			return nil, err
		}
		hc := *c
		hc.ConstInputs = make([]bool, max(c.NumInputs, 1))
		innerHalf, err := f(&hc)
		if err != nil {
			return nil, err
		}
		return &halfOp{inner: inner, innerHalf: innerHalf}, nil
	}
}

type halfOp struct{ inner, innerHalf ops.Op }

// Run is RunWith(nil, in).
func (h *halfOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return h.RunWith(nil, in) }

// RunWith passes non-half inputs to the wrapped kernel (with the arena when
// it takes one) and runs half ones widened.
func (h *halfOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	dt := tensor.Undefined
	for _, t := range in {
		if t != nil && (t.DType == tensor.Float16 || t.DType == tensor.BFloat16) {
			dt = t.DType
		}
	}
	if dt == tensor.Undefined {
		if ao, ok := h.inner.(ops.ArenaOp); ok {
			return ao.RunWith(ar, in)
		}
		return h.inner.Run(in)
	}
	wide := make([]*tensor.Tensor, len(in))
	for i, t := range in {
		if t == nil || (t.DType != tensor.Float16 && t.DType != tensor.BFloat16) {
			wide[i] = t
			continue
		}
		f := make([]float32, t.Len())
		switch d := t.Data.(type) {
		case []tensor.Float16Bits:
			for j, v := range d {
				f[j] = tensor.Float16ToFloat32(v)
			}
		case []tensor.BFloat16Bits:
			for j, v := range d {
				f[j] = tensor.BFloat16ToFloat32(v)
			}
		}
		wide[i] = &tensor.Tensor{DType: tensor.Float32, Shape: t.Shape, Data: f}
	}
	out, err := h.innerHalf.Run(wide)
	if err != nil {
		return nil, err
	}
	res := make([]*tensor.Tensor, len(out))
	for i, t := range out {
		f, ok := t.Data.([]float32)
		if !ok {
			res[i] = t
			continue
		}
		n, err := tensor.New(dt, t.Shape)
		if err != nil {
			return nil, err
		}
		switch d := n.Data.(type) {
		case []tensor.Float16Bits:
			for j, v := range f {
				d[j] = tensor.Float32ToFloat16(v)
			}
		case []tensor.BFloat16Bits:
			for j, v := range f {
				d[j] = tensor.Float32ToBFloat16(v)
			}
		}
		res[i] = n
	}
	return res, nil
}
