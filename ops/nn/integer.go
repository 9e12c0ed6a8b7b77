package nn

import (
	"math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// MatMulInteger and ConvInteger: 8-bit operands minus their zero points,
// multiplied exactly into int32.

func init() {
	ops.Define(ops.Desc{Type: "MatMulInteger", Since: 10, Grad: ops.ZeroGradient("integer inputs and output"), Kernel: func(c *ops.Config) (ops.Op, error) { return &matMulInteger{}, nil }})
	ops.Define(ops.Desc{Type: "ConvInteger", Since: 10, Grad: ops.ZeroGradient("integer inputs and output"), Kernel: func(c *ops.Config) (ops.Op, error) {
		w, err := parseWindow(c)
		if err != nil {
			return nil, err
		}
		return &convInteger{conv: conv{window: w, packs: make([]packCache, w.group)}}, nil
	}})
}

// shifted returns t's values minus its zero point: zp is nil, a scalar, or
// a vector applied along dim `axis` of t (negative: from the end).
func shifted(t, zp *tensor.Tensor, idx, zpIdx, axis int) ([]int64, error) {
	if t.DType != tensor.Uint8 && t.DType != tensor.Int8 {
		return nil, ops.BadInput(idx, "dtype %v not supported (want uint8 or int8)", t.DType)
	}
	v, err := tensor.AsInt64(t)
	if err != nil {
		return nil, ops.BadInput(idx, "%v", err)
	}
	if zp == nil {
		return v, nil
	}
	if zp.DType != t.DType {
		return nil, ops.BadInput(zpIdx, "zero point dtype %v differs from %v", zp.DType, t.DType)
	}
	z, err := tensor.AsInt64(zp)
	if err != nil {
		return nil, ops.BadInput(zpIdx, "%v", err)
	}
	out := make([]int64, len(v))
	if len(z) == 1 {
		for i, x := range v {
			out[i] = x - z[0]
		}
		return out, nil
	}
	if axis < 0 {
		axis += t.Rank()
	}
	if axis < 0 || axis >= t.Rank() || len(z) != t.Shape[axis] {
		return nil, ops.BadInput(zpIdx, "zero point of shape %v does not fit input %v", zp.Shape, t.Shape)
	}
	inner := prodInts(t.Shape[axis+1:])
	n := t.Shape[axis]
	for i, x := range v {
		out[i] = x - z[(i/inner)%n]
	}
	return out, nil
}

func optIn(in []*tensor.Tensor, i int) *tensor.Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

type matMulInteger struct{ mm linMatMul }

func (m *matMulInteger) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	aAxis := -2
	if a.Rank() == 1 {
		aAxis = 0
	}
	av, err := shifted(a, optIn(in, 2), 0, 2, aAxis)
	if err != nil {
		return nil, err
	}
	bv, err := shifted(b, optIn(in, 3), 1, 3, -1)
	if err != nil {
		return nil, err
	}
	a32, b32 := make([]int32, len(av)), make([]int32, len(bv))
	for i, v := range av {
		a32[i] = int32(v)
	}
	for i, v := range bv {
		b32[i] = int32(v)
	}
	return m.mm.Run([]*tensor.Tensor{tensor.From(a.Shape, a32), tensor.From(b.Shape, b32)})
}

type convInteger struct{ conv conv }

func (c *convInteger) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x, w := in[0], in[1]
	xv, err := shifted(x, optIn(in, 2), 0, 2, 0)
	if err != nil {
		return nil, err
	}
	if zp := optIn(in, 2); zp != nil && zp.Len() != 1 {
		return nil, ops.BadInput(2, "x_zero_point must be a scalar, got shape %v", zp.Shape)
	}
	wv, err := shifted(w, optIn(in, 3), 1, 3, 0)
	if err != nil {
		return nil, err
	}
	xf, wf := make([]float64, len(xv)), make([]float64, len(wv))
	for i, v := range xv {
		xf[i] = float64(v)
	}
	for i, v := range wv {
		wf[i] = float64(v)
	}
	out, err := c.conv.Run([]*tensor.Tensor{tensor.From(x.Shape, xf), tensor.From(w.Shape, wf)})
	if err != nil {
		return nil, err
	}
	yf := out[0].Float64s()
	y := make([]int32, len(yf))
	for i, v := range yf {
		y[i] = int32(math.Round(v))
	}
	return []*tensor.Tensor{tensor.From(out[0].Shape, y)}, nil
}
