package nn

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Register("", "BatchNormalization", 1, func(c *ops.Config) (ops.Op, error) {
		return &batchNorm{eps: float64(c.Attrs.Float("epsilon", 1e-5)), momentum: float64(c.Attrs.Float("momentum", 0.9)),
			training: c.Attrs.Int("training_mode", 0) != 0, outputs: c.NumOutputs}, nil
	})
	ops.Register("", "LayerNormalization", 1, func(c *ops.Config) (ops.Op, error) {
		return &layerNorm{axis: int(c.Attrs.Int("axis", -1)), eps: float64(c.Attrs.Float("epsilon", 1e-5))}, nil
	})
}

// batchNorm: inference uses the running statistics; training_mode (opset
// 14+) normalises with the batch's statistics and returns the updated
// running mean and variance.
type batchNorm struct {
	eps, momentum float64
	training      bool
	outputs       int
}

func (b *batchNorm) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 5); err != nil {
		return nil, err
	}
	x := in[0]
	if x.Rank() < 2 {
		return nil, fmt.Errorf("BatchNormalization needs rank ≥ 2, got %v", x.Shape)
	}
	N, C := x.Shape[0], x.Shape[1]
	sp := prodInts(x.Shape[2:])
	vals := make([][]float64, 5)
	for i := 0; i < 5; i++ {
		v, err := tensor.AsFloat64(in[i])
		if err != nil {
			return nil, ops.BadInput(i, "%v", err)
		}
		if i > 0 && len(v) != C {
			return nil, ops.BadInput(i, "has %d values for %d channels", len(v), C)
		}
		vals[i] = v
	}
	xv, scale, bias, mean, variance := vals[0], vals[1], vals[2], vals[3], vals[4]
	useMean, useVar := mean, variance
	var runMean, runVar []float64
	if b.training {
		useMean, useVar = make([]float64, C), make([]float64, C)
		cnt := float64(N * sp)
		for c := 0; c < C; c++ {
			var s, s2 float64
			for n := 0; n < N; n++ {
				for _, v := range xv[(n*C+c)*sp : (n*C+c+1)*sp] {
					s += v
				}
			}
			m := s / cnt
			for n := 0; n < N; n++ {
				for _, v := range xv[(n*C+c)*sp : (n*C+c+1)*sp] {
					s2 += (v - m) * (v - m)
				}
			}
			useMean[c], useVar[c] = m, s2/cnt
		}
		runMean, runVar = make([]float64, C), make([]float64, C)
		for c := 0; c < C; c++ {
			runMean[c] = mean[c]*b.momentum + useMean[c]*(1-b.momentum)
			runVar[c] = variance[c]*b.momentum + useVar[c]*(1-b.momentum)
		}
	}
	y := make([]float64, len(xv))
	for n := 0; n < N; n++ {
		for c := 0; c < C; c++ {
			inv := 1 / math.Sqrt(useVar[c]+b.eps)
			for i := (n*C + c) * sp; i < (n*C+c+1)*sp; i++ {
				y[i] = (xv[i]-useMean[c])*inv*scale[c] + bias[c]
			}
		}
	}
	yt, err := fromFloat64(x.DType, x.Shape, y)
	if err != nil {
		return nil, err
	}
	outs := []*tensor.Tensor{yt}
	if b.outputs > 1 && runMean != nil {
		rm, err := fromFloat64(in[3].DType, in[3].Shape, runMean)
		if err != nil {
			return nil, err
		}
		rv, err := fromFloat64(in[4].DType, in[4].Shape, runVar)
		if err != nil {
			return nil, err
		}
		outs = append(outs, rm, rv)
	}
	return outs, nil
}

// layerNorm normalises over the axes from `axis` to the end; outputs Y,
// and optionally Mean and InvStdDev (shaped with the normalised axes as 1).
type layerNorm struct {
	axis int
	eps  float64
}

func (l *layerNorm) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x := in[0]
	axis, err := ops.NormAxis(l.axis, x.Rank())
	if err != nil {
		return nil, ops.BadAttr("axis", "%v", err)
	}
	rows, n := prodInts(x.Shape[:axis]), prodInts(x.Shape[axis:])
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	norm := x.Shape[axis:]
	scale, err := tensor.AsFloat64(in[1])
	if err != nil {
		return nil, ops.BadInput(1, "%v", err)
	}
	sIdx := tensor.BroadcastIndex(in[1].Shape, norm)
	var bias []float64
	var bIdx []int
	if len(in) > 2 && in[2] != nil {
		if bias, err = tensor.AsFloat64(in[2]); err != nil {
			return nil, ops.BadInput(2, "%v", err)
		}
		bIdx = tensor.BroadcastIndex(in[2].Shape, norm)
	}
	y := make([]float64, len(xv))
	means, invs := make([]float64, rows), make([]float64, rows)
	for r := 0; r < rows; r++ {
		row := xv[r*n : (r+1)*n]
		var m, v float64
		for _, a := range row {
			m += a
		}
		m /= float64(n)
		for _, a := range row {
			v += (a - m) * (a - m)
		}
		inv := 1 / math.Sqrt(v/float64(n)+l.eps)
		means[r], invs[r] = m, inv
		for j, a := range row {
			o := (a - m) * inv * scale[sIdx[j]]
			if bias != nil {
				o += bias[bIdx[j]]
			}
			y[r*n+j] = o
		}
	}
	yt, err := fromFloat64(x.DType, x.Shape, y)
	if err != nil {
		return nil, err
	}
	statShape := append([]int{}, x.Shape[:axis]...)
	for range norm {
		statShape = append(statShape, 1)
	}
	mt, err := fromFloat64(tensor.Float32, statShape, means)
	if err != nil {
		return nil, err
	}
	it, err := fromFloat64(tensor.Float32, statShape, invs)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{yt, mt, it}, nil
}
