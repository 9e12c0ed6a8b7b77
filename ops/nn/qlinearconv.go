package nn

import (
	"math"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// QLinearConv: the convolution of (x - x_zero_point) and (w - w_zero_point)
// (per tensor, or per output channel for w) plus the int32 bias, exact in
// float64 (the integer sums stay far below 2^53), requantized with
// x_scale·w_scale/y_scale, rounded half to even, saturated.

func init() {
	ops.Define(ops.Desc{Type: "QLinearConv", Since: 10, Grad: ops.NotDifferentiable("quantized integer tensors"), Kernel: func(c *ops.Config) (ops.Op, error) {
		cc := *c
		cc.ConstInputs = nil // the float64 copies are new each run; nothing is cached by address
		inner, err := newConv(&cc)
		if err != nil {
			return nil, err
		}
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return qlinearConv(inner, in) }), nil
	}})
}

func qlinearConv(conv *conv, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 8); err != nil {
		return nil, err
	}
	num := func(i int) ([]float64, error) {
		v, err := tensor.AsFloat64(in[i])
		if err != nil {
			return nil, ops.BadInput(i, "%v", err)
		}
		return v, nil
	}
	var p [9][]float64
	for i := 0; i < 8; i++ {
		var err error
		if p[i], err = num(i); err != nil {
			return nil, err
		}
	}
	x, w := in[0], in[3]
	if w.Rank() < 3 || x.Rank() != w.Rank() {
		return nil, ops.BadInput(3, "QLinearConv weights %v do not fit input %v", w, x)
	}
	M := w.Shape[0]
	per := func(v []float64, m int) float64 {
		if len(v) == 1 {
			return v[0]
		}
		return v[m]
	}
	if len(p[1]) != 1 || len(p[2]) != 1 || len(p[6]) != 1 || len(p[7]) != 1 || (len(p[4]) != 1 && len(p[4]) != M) || (len(p[5]) != 1 && len(p[5]) != M) {
		return nil, ops.BadInput(4, "QLinearConv scales and zero points: x and y per tensor, w per tensor or per output channel")
	}
	xv := p[0]
	for i := range xv {
		xv[i] -= p[2][0]
	}
	wv := p[3]
	perM := len(wv) / M
	for i := range wv {
		wv[i] -= per(p[5], i/perM)
	}
	convIn := []*tensor.Tensor{
		{DType: tensor.Float64, Shape: x.Shape, Data: xv},
		{DType: tensor.Float64, Shape: w.Shape, Data: wv},
	}
	if len(in) > 8 && in[8] != nil {
		b, err := num(8)
		if err != nil {
			return nil, err
		}
		convIn = append(convIn, &tensor.Tensor{DType: tensor.Float64, Shape: in[8].Shape, Data: b})
	}
	out, err := conv.Run(convIn)
	if err != nil {
		return nil, err
	}
	acc := out[0].Float64s()
	lo, hi, ok := qRange(in[7].DType)
	if !ok {
		return nil, ops.BadInput(7, "QLinearConv output %v not supported", in[7])
	}
	sp := len(acc) / (out[0].Shape[0] * M)
	res := make([]float64, len(acc))
	for i, a := range acc {
		m := i / sp % M
		f := float64(float32(p[1][0]) * float32(per(p[4], m)) / float32(p[6][0]))
		res[i] = math.Max(lo, math.Min(hi, math.RoundToEven(a*f)+p[7][0]))
	}
	y, err := elems.FromFloats(in[7].DType, out[0].Shape, res)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{y}, nil
}
