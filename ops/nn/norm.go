package nn

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Normalisations: statistics are accumulated in float64, the per-element
// pass runs in the input's own type (float32 and float64 directly, other
// float types through float64).

func init() {
	ops.Define(ops.Desc{Type: "BatchNormalization", Since: 1, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) {
		return &batchNorm{eps: float64(c.Attrs.Float("epsilon", 1e-5)), momentum: float64(c.Attrs.Float("momentum", 0.9)),
			training: c.Opset >= 14 && c.Attrs.Int("training_mode", 0) != 0, outputs: c.NumOutputs}, nil
	}})
	ops.Define(ops.Desc{Type: "LayerNormalization", Since: 1, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) {
		return &layerNorm{axis: int(c.Attrs.Int("axis", -1)), eps: float64(c.Attrs.Float("epsilon", 1e-5))}, nil
	}})
	ops.Define(ops.Desc{Type: "InstanceNormalization", Since: 1, Shape: ops.ShapeSameAsInput, Kernel: func(c *ops.Config) (ops.Op, error) {
		return &instanceNorm{eps: float64(c.Attrs.Float("epsilon", 1e-5))}, nil
	}})
	// MeanVarianceNormalization, LRN: gradients in train/autodiff/rules_norm.go
	ops.Define(ops.Desc{Type: "MeanVarianceNormalization", Since: 1, Shape: ops.ShapeSameAsInput, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) {
		axes := c.Attrs.Ints("axes")
		if !c.Attrs.Has("axes") {
			axes = []int64{0, 2, 3}
		}
		return &mvn{axes: axes}, nil
	}})
	ops.Define(ops.Desc{Type: "LRN", Since: 1, Shape: ops.ShapeSameAsInput, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) {
		size := c.Attrs.Int("size", 0)
		if size < 1 {
			return nil, ops.BadAttr("size", "must be ≥ 1, got %d", size)
		}
		return &lrn{alpha: float64(c.Attrs.Float("alpha", 1e-4)), beta: float64(c.Attrs.Float("beta", 0.75)),
			bias: float64(c.Attrs.Float("bias", 1)), size: int(size)}, nil
	}})
}

// affine computes y = x·a[c] + b[c] over [N, C, sp] in x's type.
func affine(x *tensor.Tensor, a, b []float64, N, C, sp int) (*tensor.Tensor, error) {
	switch x.DType {
	case tensor.Float32:
		y := make([]float32, len(x.Float32s()))
		affineT(x.Float32s(), y, a, b, N, C, sp)
		return tensor.From(x.Shape, y), nil
	case tensor.Float64:
		y := make([]float64, len(x.Float64s()))
		affineT(x.Float64s(), y, a, b, N, C, sp)
		return tensor.From(x.Shape, y), nil
	}
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	y := make([]float64, len(xv))
	affineT(xv, y, a, b, N, C, sp)
	t, err := fromFloat64(x.DType, x.Shape, y)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	return t, nil
}

func affineT[T float32 | float64](x, y []T, a, b []float64, N, C, sp int) {
	for n := 0; n < N; n++ {
		for c := 0; c < C; c++ {
			av, bv := T(a[c]), T(b[c])
			off := (n*C + c) * sp
			src, dst := x[off:off+sp], y[off:off+sp]
			for i, v := range src {
				dst[i] = v*av + bv
			}
		}
	}
}

// channelStats returns per-channel mean and (biased) variance over [N, C, sp].
func channelStats(x *tensor.Tensor, N, C, sp int) (mean, variance []float64, err error) {
	mean, variance = make([]float64, C), make([]float64, C)
	switch x.DType {
	case tensor.Float32:
		statsT(x.Float32s(), mean, variance, N, C, sp)
	case tensor.Float64:
		statsT(x.Float64s(), mean, variance, N, C, sp)
	default:
		xv, err := tensor.AsFloat64(x)
		if err != nil {
			return nil, nil, ops.BadInput(0, "%v", err)
		}
		statsT(xv, mean, variance, N, C, sp)
	}
	return mean, variance, nil
}

func statsT[T float32 | float64](x []T, mean, variance []float64, N, C, sp int) {
	cnt := float64(N * sp)
	for c := 0; c < C; c++ {
		var s float64
		for n := 0; n < N; n++ {
			for _, v := range x[(n*C+c)*sp : (n*C+c+1)*sp] {
				s += float64(v)
			}
		}
		m := s / cnt
		var s2 float64
		for n := 0; n < N; n++ {
			for _, v := range x[(n*C+c)*sp : (n*C+c+1)*sp] {
				d := float64(v) - m
				s2 += d * d
			}
		}
		mean[c], variance[c] = m, s2/cnt
	}
}

// batchNorm: inference uses the running statistics; training_mode (opset
// 14+) normalises with the batch's statistics and returns the updated
// running mean and variance.
type batchNorm struct {
	eps, momentum float64
	training      bool
	outputs       int
}

func (b *batchNorm) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return b.RunWith(nil, in) }

// RunWith has an allocation-free path for the common case (float32
// inference, one output); the others allocate as Run always did.
func (b *batchNorm) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(in) >= 5 && !b.training && b.outputs <= 1 && allFloat32(in[:5]) && in[0].Rank() >= 2 {
		return b.inferF32(ar, in)
	}
	return b.run(in)
}

func allFloat32(ts []*tensor.Tensor) bool {
	for _, t := range ts {
		if t == nil || t.DType != tensor.Float32 {
			return false
		}
	}
	return true
}

// inferF32 is the float32 inference path: y = x·a[c] + sh[c] with a and sh
// computed in float64 and rounded once, exactly as the general path does.
func (b *batchNorm) inferF32(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	N, C := x.Shape[0], x.Shape[1]
	sp := prodInts(x.Shape[2:])
	if sp > 1 && in[1].Len() == C*sp {
		C, sp = C*sp, 1
	}
	for i := 1; i < 5; i++ {
		if in[i].Len() != C {
			return nil, ops.BadInput(i, "has %d values (shape %v) for %d channels", in[i].Len(), in[i].Shape, C)
		}
	}
	scale, bias, mean, variance := in[1].Float32s(), in[2].Float32s(), in[3].Float32s(), in[4].Float32s()
	y, err := ar.Empty(tensor.Float32, x.Shape)
	if err != nil {
		return nil, err
	}
	xv, yv := x.Float32s(), y.Float32s()
	for c := 0; c < C; c++ {
		a := float64(scale[c]) / math.Sqrt(float64(variance[c])+b.eps)
		av, bv := float32(a), float32(float64(bias[c])-float64(mean[c])*a)
		for n := 0; n < N; n++ {
			off := (n*C + c) * sp
			src, dst := xv[off:off+sp], yv[off:off+sp]
			for i, v := range src {
				dst[i] = v*av + bv
			}
		}
	}
	return ar.Outputs(y), nil
}

func (b *batchNorm) run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 5); err != nil {
		return nil, err
	}
	x := in[0]
	if x.Rank() < 2 {
		return nil, ops.BadInput(0, "BatchNormalization needs rank ≥ 2, got %v", x.Shape)
	}
	if !x.DType.IsFloat() {
		return nil, ops.BadInput(0, "dtype %v not supported", x.DType)
	}
	N, C := x.Shape[0], x.Shape[1]
	sp := prodInts(x.Shape[2:])
	if sp > 1 && in[1].Len() == C*sp && !b.training {
		// spatial=0 (opset < 9): statistics per channel and position
		C, sp = C*sp, 1
	}
	vals := make([][]float64, 5)
	for i := 1; i < 5; i++ {
		v, err := tensor.AsFloat64(in[i])
		if err != nil {
			return nil, ops.BadInput(i, "%v", err)
		}
		if len(v) != C {
			return nil, ops.BadInput(i, "has %d values (shape %v) for %d channels", len(v), in[i].Shape, C)
		}
		vals[i] = v
	}
	scale, bias, mean, variance := vals[1], vals[2], vals[3], vals[4]
	useMean, useVar := mean, variance
	var runMean, runVar []float64
	if b.training {
		var err error
		if useMean, useVar, err = channelStats(x, N, C, sp); err != nil {
			return nil, err
		}
		runMean, runVar = make([]float64, C), make([]float64, C)
		for c := 0; c < C; c++ {
			runMean[c] = mean[c]*b.momentum + useMean[c]*(1-b.momentum)
			runVar[c] = variance[c]*b.momentum + useVar[c]*(1-b.momentum)
		}
	}
	a, sh := make([]float64, C), make([]float64, C)
	for c := 0; c < C; c++ {
		a[c] = scale[c] / math.Sqrt(useVar[c]+b.eps)
		sh[c] = bias[c] - useMean[c]*a[c]
	}
	y, err := affine(x, a, sh, N, C, sp)
	if err != nil {
		return nil, err
	}
	outs := []*tensor.Tensor{y}
	if b.outputs > 1 {
		if runMean == nil {
			// not training: the statistics pass through unchanged
			runMean, runVar = mean, variance
		}
		rm, err := fromFloat64(in[3].DType, in[3].Shape, runMean)
		if err != nil {
			return nil, ops.BadInput(3, "%v", err)
		}
		rv, err := fromFloat64(in[4].DType, in[4].Shape, runVar)
		if err != nil {
			return nil, ops.BadInput(4, "%v", err)
		}
		outs = append(outs, rm, rv)
		for len(outs) < b.outputs {
			// saved mean / saved variance (opset < 14 training outputs)
			if len(outs) == 3 {
				outs = append(outs, rm)
			} else {
				outs = append(outs, rv)
			}
		}
	}
	return outs, nil
}

// layerNorm normalises over the axes from `axis` to the end; outputs Y,
// and optionally Mean and InvStdDev (shaped with the normalised axes as 1).
type layerNorm struct {
	axis int
	eps  float64
}

// expandTo returns t's values broadcast to shape, as float64.
func expandTo(t *tensor.Tensor, shape []int, idx int) ([]float64, error) {
	v, err := tensor.AsFloat64(t)
	if err != nil {
		return nil, ops.BadInput(idx, "%v", err)
	}
	if _, err := tensor.BroadcastShapes(t.Shape, shape); err != nil || t.Rank() > len(shape) {
		return nil, ops.BadInput(idx, "shape %v does not broadcast to %v", t.Shape, shape)
	}
	if len(v) == prodInts(shape) {
		return v, nil
	}
	bi := tensor.BroadcastIndex(t.Shape, shape)
	out := make([]float64, len(bi))
	for i, j := range bi {
		out[i] = v[j]
	}
	return out, nil
}

func (l *layerNorm) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return l.RunWith(nil, in) }

// RunWith has an allocation-free path for float32 with full-size float32
// scale and bias; other cases allocate as Run always did.
func (l *layerNorm) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(in) >= 2 && allFloat32(in[:2]) && (len(in) < 3 || in[2] == nil || in[2].DType == tensor.Float32) {
		x := in[0]
		if axis, err := ops.NormAxis(l.axis, x.Rank()); err == nil {
			norm := x.Shape[axis:]
			if fullTail(in[1], norm) && (len(in) < 3 || in[2] == nil || fullTail(in[2], norm)) {
				return l.runF32(ar, in, axis)
			}
		}
	}
	return l.run(in)
}

// fullTail reports whether t has exactly shape's elements laid out the same
// way (shape's dims right-aligned, any extra leading dims of shape being 1).
func fullTail(t *tensor.Tensor, shape []int) bool {
	if t.Rank() > len(shape) || t.Len() != prodInts(shape) {
		return false
	}
	off := len(shape) - t.Rank()
	for i, d := range t.Shape {
		if d != shape[off+i] {
			return false
		}
	}
	return true
}

func (l *layerNorm) runF32(ar *ops.Arena, in []*tensor.Tensor, axis int) ([]*tensor.Tensor, error) {
	x := in[0]
	rows, n := prodInts(x.Shape[:axis]), prodInts(x.Shape[axis:])
	statShape := ar.Ints(x.Rank())
	copy(statShape, x.Shape[:axis])
	for i := axis; i < len(statShape); i++ {
		statShape[i] = 1
	}
	y, err := ar.Empty(tensor.Float32, x.Shape)
	if err != nil {
		return nil, err
	}
	mt, err := ar.Empty(tensor.Float32, statShape)
	if err != nil {
		return nil, err
	}
	it, err := ar.Empty(tensor.Float32, statShape)
	if err != nil {
		return nil, err
	}
	scale := in[1].Float32s()
	var bias []float32
	if len(in) > 2 && in[2] != nil {
		bias = in[2].Float32s()
	}
	xv, yv, means, invs := x.Float32s(), y.Float32s(), mt.Float32s(), it.Float32s()
	for r := 0; r < rows; r++ {
		row, dst := xv[r*n:(r+1)*n], yv[r*n:(r+1)*n]
		var m, v float64
		for _, a := range row {
			m += float64(a)
		}
		m /= float64(n)
		for _, a := range row {
			d := float64(a) - m
			v += d * d
		}
		inv := 1 / math.Sqrt(v/float64(n)+l.eps)
		means[r], invs[r] = float32(m), float32(inv)
		if bias != nil {
			for j, a := range row {
				dst[j] = float32((float64(a)-m)*inv*float64(scale[j]) + float64(bias[j]))
			}
		} else {
			for j, a := range row {
				dst[j] = float32((float64(a) - m) * inv * float64(scale[j]))
			}
		}
	}
	return ar.Outputs(y, mt, it), nil
}

func (l *layerNorm) run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x := in[0]
	if !x.DType.IsFloat() {
		return nil, ops.BadInput(0, "dtype %v not supported", x.DType)
	}
	axis, err := ops.NormAxis(l.axis, x.Rank())
	if err != nil {
		return nil, ops.BadAttr("axis", "%v", err)
	}
	rows, n := prodInts(x.Shape[:axis]), prodInts(x.Shape[axis:])
	norm := x.Shape[axis:]
	scale, err := expandTo(in[1], norm, 1)
	if err != nil {
		return nil, err
	}
	var bias []float64
	if len(in) > 2 && in[2] != nil {
		if bias, err = expandTo(in[2], norm, 2); err != nil {
			return nil, err
		}
	}
	means, invs := make([]float32, rows), make([]float32, rows)
	var yt *tensor.Tensor
	switch x.DType {
	case tensor.Float32:
		y := make([]float32, rows*n)
		layerNormT(x.Float32s(), y, scale, bias, means, invs, rows, n, l.eps)
		yt = tensor.From(x.Shape, y)
	case tensor.Float64:
		y := make([]float64, rows*n)
		layerNormT(x.Float64s(), y, scale, bias, means, invs, rows, n, l.eps)
		yt = tensor.From(x.Shape, y)
	default:
		xv, err := tensor.AsFloat64(x)
		if err != nil {
			return nil, ops.BadInput(0, "%v", err)
		}
		y := make([]float64, rows*n)
		layerNormT(xv, y, scale, bias, means, invs, rows, n, l.eps)
		if yt, err = fromFloat64(x.DType, x.Shape, y); err != nil {
			return nil, ops.BadInput(0, "%v", err)
		}
	}
	statShape := append([]int{}, x.Shape[:axis]...)
	for range norm {
		statShape = append(statShape, 1)
	}
	return []*tensor.Tensor{yt, tensor.From(statShape, means), tensor.From(statShape, invs)}, nil
}

func layerNormT[T float32 | float64](x, y []T, scale, bias []float64, means, invs []float32, rows, n int, eps float64) {
	for r := 0; r < rows; r++ {
		row, dst := x[r*n:(r+1)*n], y[r*n:(r+1)*n]
		var m, v float64
		for _, a := range row {
			m += float64(a)
		}
		m /= float64(n)
		for _, a := range row {
			d := float64(a) - m
			v += d * d
		}
		inv := 1 / math.Sqrt(v/float64(n)+eps)
		means[r], invs[r] = float32(m), float32(inv)
		if bias != nil {
			for j, a := range row {
				dst[j] = T((float64(a)-m)*inv*scale[j] + bias[j])
			}
		} else {
			for j, a := range row {
				dst[j] = T((float64(a) - m) * inv * scale[j])
			}
		}
	}
}

// instanceNorm normalises each (n, c) plane with its own statistics.
type instanceNorm struct{ eps float64 }

func (l *instanceNorm) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return l.RunWith(nil, in) }

// RunWith has an allocation-free float32 path computing each plane's
// statistics and affine map on the fly, with the general path's arithmetic.
func (l *instanceNorm) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(in) >= 3 && allFloat32(in[:3]) && in[0].Rank() >= 2 && in[1].Len() == in[0].Shape[1] && in[2].Len() == in[0].Shape[1] {
		x := in[0]
		N, C := x.Shape[0], x.Shape[1]
		sp := prodInts(x.Shape[2:])
		y, err := ar.Empty(tensor.Float32, x.Shape)
		if err != nil {
			return nil, err
		}
		xv, yv, scale, bias := x.Float32s(), y.Float32s(), in[1].Float32s(), in[2].Float32s()
		for i := 0; i < N*C; i++ {
			c := i % C
			plane, dst := xv[i*sp:(i+1)*sp], yv[i*sp:(i+1)*sp]
			var s float64
			for _, v := range plane {
				s += float64(v)
			}
			m := s / float64(sp)
			var s2 float64
			for _, v := range plane {
				d := float64(v) - m
				s2 += d * d
			}
			a := float64(scale[c]) / math.Sqrt(s2/float64(sp)+l.eps)
			av, bv := float32(a), float32(float64(bias[c])-m*a)
			for j, v := range plane {
				dst[j] = v*av + bv
			}
		}
		return ar.Outputs(y), nil
	}
	return l.run(in)
}

func (l *instanceNorm) run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 3); err != nil {
		return nil, err
	}
	x := in[0]
	if x.Rank() < 2 || !x.DType.IsFloat() {
		return nil, ops.BadInput(0, "InstanceNormalization needs a float tensor of rank ≥ 2, got %v %v", x.DType, x.Shape)
	}
	N, C := x.Shape[0], x.Shape[1]
	sp := prodInts(x.Shape[2:])
	scale, err := tensor.AsFloat64(in[1])
	if err != nil || len(scale) != C {
		return nil, ops.BadInput(1, "scale %v %v does not fit %d channels", in[1].DType, in[1].Shape, C)
	}
	bias, err := tensor.AsFloat64(in[2])
	if err != nil || len(bias) != C {
		return nil, ops.BadInput(2, "bias %v %v does not fit %d channels", in[2].DType, in[2].Shape, C)
	}
	// per (n, c) statistics: view X as [1, N·C, sp]
	mean, variance, err := channelStats(x, 1, N*C, sp)
	if err != nil {
		return nil, err
	}
	a, b := make([]float64, N*C), make([]float64, N*C)
	for i := range a {
		c := i % C
		a[i] = scale[c] / math.Sqrt(variance[i]+l.eps)
		b[i] = bias[c] - mean[i]*a[i]
	}
	y, err := affine(x, a, b, 1, N*C, sp)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{y}, nil
}

// mvn is MeanVarianceNormalization: (X − E[X]) / (sqrt(E[X²] − E[X]²) + 1e-9)
// over `axes`.
type mvn struct{ axes []int64 }

func (m *mvn) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if !x.DType.IsFloat() {
		return nil, ops.BadInput(0, "dtype %v not supported", x.DType)
	}
	rank := x.Rank()
	kept := append([]int{}, x.Shape...)
	for _, a := range m.axes {
		ax, err := ops.NormAxis(int(a), rank)
		if err != nil {
			return nil, ops.BadAttr("axes", "%v for input %v", err, x.Shape)
		}
		kept[ax] = 1
	}
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	nk := prodInts(kept)
	s, s2, cnt := make([]float64, nk), make([]float64, nk), make([]int, nk)
	idx := tensor.BroadcastIndex(kept, x.Shape)
	for i, j := range idx {
		s[j] += xv[i]
		s2[j] += xv[i] * xv[i]
		cnt[j]++
	}
	for j := range s {
		if cnt[j] > 0 {
			s[j] /= float64(cnt[j])
			s2[j] = math.Sqrt(math.Max(0, s2[j]/float64(cnt[j])-s[j]*s[j])) + 1e-9
		}
	}
	y := make([]float64, len(xv))
	for i, j := range idx {
		y[i] = (xv[i] - s[j]) / s2[j]
	}
	t, err := fromFloat64(x.DType, x.Shape, y)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	return []*tensor.Tensor{t}, nil
}

// lrn is local response normalisation across channels.
type lrn struct {
	alpha, beta, bias float64
	size              int
}

func (l *lrn) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if x.Rank() < 2 || !x.DType.IsFloat() {
		return nil, fmt.Errorf("LRN needs a float tensor of rank ≥ 2, got %v %v", x.DType, x.Shape)
	}
	N, C := x.Shape[0], x.Shape[1]
	sp := prodInts(x.Shape[2:])
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	lo, hi := (l.size-1)/2, (l.size-1)-(l.size-1)/2
	y := make([]float64, len(xv))
	for n := 0; n < N; n++ {
		for c := 0; c < C; c++ {
			for i := 0; i < sp; i++ {
				var s float64
				for cc := max(0, c-lo); cc <= min(C-1, c+hi); cc++ {
					v := xv[(n*C+cc)*sp+i]
					s += v * v
				}
				p := (n*C+c)*sp + i
				y[p] = xv[p] / math.Pow(l.bias+l.alpha/float64(l.size)*s, l.beta)
			}
		}
	}
	t, err := fromFloat64(x.DType, x.Shape, y)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	return []*tensor.Tensor{t}, nil
}
