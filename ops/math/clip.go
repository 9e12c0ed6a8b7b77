package math

import (
	gomath "math"
	"math/rand/v2"
	"sync"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Register("", "Clip", 1, newClip)
	ops.Register("", "PRelu", 1, fixed(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		return one(prelu(in[0], in[1]))
	}))
	ops.Register("", "Dropout", 1, newDropout)
}

// ---- Clip ----

func newClip(c *ops.Config) (ops.Op, error) {
	if c.Opset < 11 && c.Opset > 0 {
		lo := float64(c.Attrs.Float("min", float32(gomath.Inf(-1))))
		hi := float64(c.Attrs.Float("max", float32(gomath.Inf(1))))
		if !c.Attrs.Has("min") {
			lo = gomath.Inf(-1)
		}
		if !c.Attrs.Has("max") {
			hi = gomath.Inf(1)
		}
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			if !x.DType.IsFloat() {
				return nil, unsupported(0, x)
			}
			var lt, ht *tensor.Tensor
			if !gomath.IsInf(lo, -1) {
				lt = tensor.Scalar(lo)
			}
			if !gomath.IsInf(hi, 1) {
				ht = tensor.Scalar(hi)
			}
			return one(clip(x, castScalar(lt, x.DType), castScalar(ht, x.DType)))
		}), nil
	}
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		var lo, hi *tensor.Tensor
		if len(in) > 1 {
			lo = in[1]
		}
		if len(in) > 2 {
			hi = in[2]
		}
		for i, t := range []*tensor.Tensor{lo, hi} {
			if t == nil {
				continue
			}
			if t.DType != in[0].DType {
				return nil, ops.BadInput(i+1, "dtype %v differs from input 0's %v", t.DType, in[0].DType)
			}
			if tensor.DataLen(t.Data) > 1 {
				return nil, ops.BadInput(i+1, "want a scalar bound, got shape %v", t.Shape)
			}
		}
		return one(clip(in[0], lo, hi))
	}), nil
}

// castScalar converts a float64 scalar bound to dt (nil stays nil).
func castScalar(t *tensor.Tensor, dt tensor.DType) *tensor.Tensor {
	if t == nil {
		return nil
	}
	r, err := cast(t, dt)
	if err != nil {
		return nil
	}
	return r
}

// clip computes min(max(x, lo), hi); nil or empty bounds are absent.
func clip(x, lo, hi *tensor.Tensor) (*tensor.Tensor, error) {
	if isHalf(x.DType) {
		r, err := clip(toF32(x), toF32(lo), toF32(hi))
		if err != nil {
			return nil, err
		}
		return fromF32(r, x.DType), nil
	}
	switch d := x.Data.(type) {
	case []float32:
		return clipT(x, d, lo, hi)
	case []float64:
		return clipT(x, d, lo, hi)
	case []int8:
		return clipT(x, d, lo, hi)
	case []int16:
		return clipT(x, d, lo, hi)
	case []int32:
		return clipT(x, d, lo, hi)
	case []int64:
		return clipT(x, d, lo, hi)
	case []uint8:
		return clipT(x, d, lo, hi)
	case []uint16:
		return clipT(x, d, lo, hi)
	case []uint32:
		return clipT(x, d, lo, hi)
	case []uint64:
		return clipT(x, d, lo, hi)
	}
	return nil, unsupported(0, x)
}

func clipT[T num](x *tensor.Tensor, d []T, lo, hi *tensor.Tensor) (*tensor.Tensor, error) {
	bound := func(t *tensor.Tensor) (T, bool) {
		if t == nil {
			return 0, false
		}
		v, ok := t.Data.([]T)
		if !ok || len(v) == 0 {
			return 0, false
		}
		return v[0], true
	}
	l, hasL := bound(lo)
	h, hasH := bound(hi)
	out := make([]T, len(d))
	switch {
	case hasL && hasH:
		for i, v := range d {
			if v < l {
				v = l
			}
			if v > h {
				v = h
			}
			out[i] = v
		}
	case hasL:
		for i, v := range d {
			if v < l {
				v = l
			}
			out[i] = v
		}
	case hasH:
		for i, v := range d {
			if v > h {
				v = h
			}
			out[i] = v
		}
	default:
		copy(out, d)
	}
	return &tensor.Tensor{DType: x.DType, Shape: append([]int{}, x.Shape...), Data: out}, nil
}

// ---- PRelu ----

// prelu computes x < 0 ? slope*x : x, with slope broadcast to x's shape.
func prelu(x, slope *tensor.Tensor) (*tensor.Tensor, error) {
	if x.DType != slope.DType {
		return nil, ops.BadInput(1, "dtype %v (shape %v) differs from input 0's %v", slope.DType, slope.Shape, x.DType)
	}
	s, err := tensor.BroadcastShapes(x.Shape, slope.Shape)
	if err != nil || !tensor.SameShape(s, x.Shape) {
		return nil, ops.BadInput(1, "slope shape %v does not broadcast to X's shape %v", slope.Shape, x.Shape)
	}
	switch x.DType {
	case tensor.Float32:
		return binary(x, slope, preluKern[float32]())
	case tensor.Float64:
		return binary(x, slope, preluKern[float64]())
	case tensor.Float16, tensor.BFloat16:
		r, err := prelu(toF32(x), toF32(slope))
		if err != nil {
			return nil, err
		}
		return fromF32(r, x.DType), nil
	case tensor.Int8:
		return binary(x, slope, preluKern[int8]())
	case tensor.Int16:
		return binary(x, slope, preluKern[int16]())
	case tensor.Int32:
		return binary(x, slope, preluKern[int32]())
	case tensor.Int64:
		return binary(x, slope, preluKern[int64]())
	case tensor.Uint8:
		return binary(x, slope, preluKern[uint8]())
	case tensor.Uint16:
		return binary(x, slope, preluKern[uint16]())
	case tensor.Uint32:
		return binary(x, slope, preluKern[uint32]())
	case tensor.Uint64:
		return binary(x, slope, preluKern[uint64]())
	}
	return nil, unsupported(0, x)
}

func preluKern[T num]() kern[T, T, T] {
	return kern[T, T, T]{
		vv: func(o, a, b []T) {
			a, b = a[:len(o)], b[:len(o)]
			for i := range o {
				v := a[i]
				if v < 0 {
					v *= b[i]
				}
				o[i] = v
			}
		},
		vs: func(o, a []T, s T) {
			a = a[:len(o)]
			for i := range o {
				v := a[i]
				if v < 0 {
					v *= s
				}
				o[i] = v
			}
		},
		sv: func(o []T, s T, b []T) {
			b = b[:len(o)]
			for i := range o {
				v := s
				if v < 0 {
					v *= b[i]
				}
				o[i] = v
			}
		},
	}
}

// ---- Dropout ----

// dropout keeps a deterministic random stream per node, seeded from the seed
// attribute (0 when absent), so training-mode runs are reproducible.
type dropout struct {
	opset int
	nOut  int
	ratio float32 // the attribute, before opset 12
	mu    sync.Mutex
	rng   *rand.Rand
}

func newDropout(c *ops.Config) (ops.Op, error) {
	d := &dropout{opset: c.Opset, nOut: c.NumOutputs, ratio: c.Attrs.Float("ratio", 0.5)}
	seed := uint64(c.Attrs.Int("seed", 0))
	d.rng = rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	if d.opset < 12 && (d.ratio < 0 || d.ratio >= 1) {
		return nil, ops.BadAttr("ratio", "must be in [0, 1), got %v", d.ratio)
	}
	return d, nil
}

func (d *dropout) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if !x.DType.IsFloat() {
		return nil, unsupported(0, x)
	}
	ratio, training := float64(d.ratio), false
	if d.opset >= 12 || d.opset <= 0 {
		ratio = 0.5
		if len(in) > 1 && in[1] != nil {
			r, err := tensor.AsFloat64(in[1])
			if err != nil || len(r) != 1 {
				return nil, ops.BadInput(1, "ratio must be a float scalar, got %v", in[1])
			}
			ratio = r[0]
		}
		if len(in) > 2 && in[2] != nil {
			t, ok := in[2].Data.([]bool)
			if !ok || len(t) != 1 {
				return nil, ops.BadInput(2, "training_mode must be a bool scalar, got %v", in[2])
			}
			training = t[0]
		}
		if training && (ratio < 0 || ratio > 1) {
			return nil, ops.BadInput(1, "ratio must be in [0, 1], got %v", ratio)
		}
	}
	n := tensor.DataLen(x.Data)
	if !training || ratio == 0 {
		y := &tensor.Tensor{DType: x.DType, Shape: append([]int{}, x.Shape...), Data: x.Data}
		if d.nOut < 2 {
			return []*tensor.Tensor{y}, nil
		}
		return []*tensor.Tensor{y, d.fullMask(x, n)}, nil
	}
	if err := x.Validate(); err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	mask := make([]bool, n)
	d.mu.Lock()
	for i := range mask {
		mask[i] = d.rng.Float64() >= ratio
	}
	d.mu.Unlock()
	scale := float32(0)
	if ratio < 1 {
		scale = float32(1 / (1 - ratio))
	}
	var y *tensor.Tensor
	if x.DType == tensor.Float64 {
		xd := x.Data.([]float64)
		yd := make([]float64, n)
		s64 := 0.0
		if ratio < 1 {
			s64 = 1 / (1 - ratio)
		}
		for i, keep := range mask {
			if keep {
				yd[i] = xd[i] * s64
			}
		}
		y = &tensor.Tensor{DType: x.DType, Shape: append([]int{}, x.Shape...), Data: yd}
	} else {
		src := toF32(x).Data.([]float32)
		yd := make([]float32, n)
		for i, keep := range mask {
			if keep {
				yd[i] = src[i] * scale
			}
		}
		y = fromF32(&tensor.Tensor{DType: tensor.Float32, Shape: append([]int{}, x.Shape...), Data: yd}, x.DType)
	}
	if d.nOut < 2 {
		return []*tensor.Tensor{y}, nil
	}
	return []*tensor.Tensor{y, {DType: tensor.Bool, Shape: append([]int{}, x.Shape...), Data: mask}}, nil
}

// fullMask is the all-kept mask: bool from opset 10, the input's dtype (ones)
// before.
func (d *dropout) fullMask(x *tensor.Tensor, n int) *tensor.Tensor {
	shape := append([]int{}, x.Shape...)
	if d.opset >= 10 || d.opset <= 0 {
		m := make([]bool, n)
		for i := range m {
			m[i] = true
		}
		return &tensor.Tensor{DType: tensor.Bool, Shape: shape, Data: m}
	}
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	t, err := cast(&tensor.Tensor{DType: tensor.Float32, Shape: shape, Data: ones}, x.DType)
	if err != nil {
		return nil
	}
	return t
}
