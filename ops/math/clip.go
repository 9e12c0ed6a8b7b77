package math

import (
	gomath "math"
	"math/rand/v2"
	"sync"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Define(ops.Desc{Type: "Clip", Since: 1, Shape: ops.ShapeSameAsInput, Traits: ops.Elementwise, Kernel: newClip})
	ops.Define(ops.Desc{Type: "PRelu", Since: 7, Shape: ops.ShapeSameAsInput, Traits: ops.Elementwise, Kernel: fixed(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		r, err := prelu(ar, in[0], in[1])
		return one(ar, r, err)
	})})
	ops.Define(ops.Desc{Type: "Dropout", Since: 1, Traits: ops.Elementwise, Kernel: newDropout})
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
		return kernel(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 1); err != nil {
				return nil, err
			}
			r, err := clipAttrs(ar, in[0], lo, hi)
			return one(ar, r, err)
		}), nil
	}
	return kernel(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
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
		for i, t := range [2]*tensor.Tensor{lo, hi} {
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
		r, err := clip(ar, in[0], lo, hi)
		return one(ar, r, err)
	}), nil
}

// clipAttrs is Clip before opset 11: float inputs, bounds from attributes
// (±Inf when absent), rounded to the input's dtype.
func clipAttrs(ar *ops.Arena, x *tensor.Tensor, lo, hi float64) (*tensor.Tensor, error) {
	hasL, hasH := !gomath.IsInf(lo, -1), !gomath.IsInf(hi, 1)
	switch d := x.Data.(type) {
	case []float32:
		return clipT(ar, x, d, float32(lo), hasL, float32(hi), hasH)
	case []float64:
		return clipT(ar, x, d, lo, hasL, hi, hasH)
	case []tensor.Float16Bits:
		l := tensor.Float16ToFloat32(tensor.Float32ToFloat16(float32(lo)))
		h := tensor.Float16ToFloat32(tensor.Float32ToFloat16(float32(hi)))
		return clipHalf(ar, x, l, hasL, h, hasH)
	case []tensor.BFloat16Bits:
		l := tensor.BFloat16ToFloat32(tensor.Float32ToBFloat16(float32(lo)))
		h := tensor.BFloat16ToFloat32(tensor.Float32ToBFloat16(float32(hi)))
		return clipHalf(ar, x, l, hasL, h, hasH)
	}
	return nil, unsupported(0, x)
}

// clipHalf clips a float16/bfloat16 tensor in float32.
func clipHalf(ar *ops.Arena, x *tensor.Tensor, l float32, hasL bool, h float32, hasH bool) (*tensor.Tensor, error) {
	w := toF32(ar, x)
	r, err := clipT(ar, w, w.Data.([]float32), l, hasL, h, hasH)
	if err != nil {
		return nil, err
	}
	return fromF32(ar, r, x.DType), nil
}

// clip computes min(max(x, lo), hi); nil or empty bounds are absent.
func clip(ar *ops.Arena, x, lo, hi *tensor.Tensor) (*tensor.Tensor, error) {
	if isHalf(x.DType) {
		l, hasL := halfBound(lo)
		h, hasH := halfBound(hi)
		return clipHalf(ar, x, l, hasL, h, hasH)
	}
	switch d := x.Data.(type) {
	case []float32:
		return clipBounds(ar, x, d, lo, hi)
	case []float64:
		return clipBounds(ar, x, d, lo, hi)
	case []int8:
		return clipBounds(ar, x, d, lo, hi)
	case []int16:
		return clipBounds(ar, x, d, lo, hi)
	case []int32:
		return clipBounds(ar, x, d, lo, hi)
	case []int64:
		return clipBounds(ar, x, d, lo, hi)
	case []uint8:
		return clipBounds(ar, x, d, lo, hi)
	case []uint16:
		return clipBounds(ar, x, d, lo, hi)
	case []uint32:
		return clipBounds(ar, x, d, lo, hi)
	case []uint64:
		return clipBounds(ar, x, d, lo, hi)
	}
	return nil, unsupported(0, x)
}

// halfBound reads a float16/bfloat16 scalar bound as float32.
func halfBound(t *tensor.Tensor) (float32, bool) {
	if t == nil {
		return 0, false
	}
	switch d := t.Data.(type) {
	case []tensor.Float16Bits:
		if len(d) > 0 {
			return tensor.Float16ToFloat32(d[0]), true
		}
	case []tensor.BFloat16Bits:
		if len(d) > 0 {
			return tensor.BFloat16ToFloat32(d[0]), true
		}
	}
	return 0, false
}

// bound reads a scalar bound of type T; absent, empty or mistyped bounds
// are no bound.
func bound[T num](t *tensor.Tensor) (T, bool) {
	if t == nil {
		return 0, false
	}
	v, ok := t.Data.([]T)
	if !ok || len(v) == 0 {
		return 0, false
	}
	return v[0], true
}

func clipBounds[T num](ar *ops.Arena, x *tensor.Tensor, d []T, lo, hi *tensor.Tensor) (*tensor.Tensor, error) {
	l, hasL := bound[T](lo)
	h, hasH := bound[T](hi)
	return clipT(ar, x, d, l, hasL, h, hasH)
}

func clipT[T num](ar *ops.Arena, x *tensor.Tensor, d []T, l T, hasL bool, h T, hasH bool) (*tensor.Tensor, error) {
	r, err := ar.Empty(x.DType, x.Shape)
	if err != nil {
		return nil, err
	}
	out := r.Data.([]T)[:len(d)]
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
	return r, nil
}

// ---- PRelu ----

// PRelu kernel tables, built once (see kF32).
var (
	preluF32 = preluKern[float32]()
	preluF64 = preluKern[float64]()
	preluI8  = preluKern[int8]()
	preluI16 = preluKern[int16]()
	preluI32 = preluKern[int32]()
	preluI64 = preluKern[int64]()
	preluU8  = preluKern[uint8]()
	preluU16 = preluKern[uint16]()
	preluU32 = preluKern[uint32]()
	preluU64 = preluKern[uint64]()
)

// prelu computes x < 0 ? slope*x : x, with slope broadcast to x's shape.
func prelu(ar *ops.Arena, x, slope *tensor.Tensor) (*tensor.Tensor, error) {
	if x.DType != slope.DType {
		return nil, ops.BadInput(1, "dtype %v (shape %v) differs from input 0's %v", slope.DType, slope.Shape, x.DType)
	}
	if s, ok := broadcastShape(ar, x.Shape, slope.Shape); !ok || !tensor.SameShape(s, x.Shape) {
		return nil, ops.BadInput(1, "slope shape %v does not broadcast to X's shape %v", slope.Shape, x.Shape)
	}
	switch x.DType {
	case tensor.Float32:
		return binary(ar, x, slope, preluF32)
	case tensor.Float64:
		return binary(ar, x, slope, preluF64)
	case tensor.Float16, tensor.BFloat16:
		r, err := prelu(ar, toF32(ar, x), toF32(ar, slope))
		if err != nil {
			return nil, err
		}
		return fromF32(ar, r, x.DType), nil
	case tensor.Int8:
		return binary(ar, x, slope, preluI8)
	case tensor.Int16:
		return binary(ar, x, slope, preluI16)
	case tensor.Int32:
		return binary(ar, x, slope, preluI32)
	case tensor.Int64:
		return binary(ar, x, slope, preluI64)
	case tensor.Uint8:
		return binary(ar, x, slope, preluU8)
	case tensor.Uint16:
		return binary(ar, x, slope, preluU16)
	case tensor.Uint32:
		return binary(ar, x, slope, preluU32)
	case tensor.Uint64:
		return binary(ar, x, slope, preluU64)
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

// Run is RunWith(nil, in).
func (d *dropout) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return d.RunWith(nil, in) }

// RunWith runs Dropout; in inference (the common case in exported models)
// the output is a view of the input and the mask comes from ar.
func (d *dropout) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
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
		y, err := ar.View(x, x.Shape)
		if err != nil {
			return nil, ops.BadInput(0, "%v", err)
		}
		if d.nOut < 2 {
			return ar.Outputs(y), nil
		}
		m, err := d.fullMask(ar, x)
		if err != nil {
			return nil, err
		}
		return ar.Outputs(y, m), nil
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
		src := toF32(nil, x).Data.([]float32)
		yd := make([]float32, n)
		for i, keep := range mask {
			if keep {
				yd[i] = src[i] * scale
			}
		}
		y = fromF32(nil, &tensor.Tensor{DType: tensor.Float32, Shape: append([]int{}, x.Shape...), Data: yd}, x.DType)
	}
	if d.nOut < 2 {
		return []*tensor.Tensor{y}, nil
	}
	return []*tensor.Tensor{y, {DType: tensor.Bool, Shape: append([]int{}, x.Shape...), Data: mask}}, nil
}

// fullMask is the all-kept mask: bool from opset 10, the input's dtype (ones)
// before.
func (d *dropout) fullMask(ar *ops.Arena, x *tensor.Tensor) (*tensor.Tensor, error) {
	if d.opset >= 10 || d.opset <= 0 {
		m, err := ar.Empty(tensor.Bool, x.Shape)
		if err != nil {
			return nil, err
		}
		md := m.Data.([]bool)
		for i := range md {
			md[i] = true
		}
		return m, nil
	}
	m, err := ar.Empty(x.DType, x.Shape)
	if err != nil {
		return nil, err
	}
	switch md := m.Data.(type) {
	case []float32:
		for i := range md {
			md[i] = 1
		}
	case []float64:
		for i := range md {
			md[i] = 1
		}
	case []tensor.Float16Bits:
		for i := range md {
			md[i] = tensor.Float32ToFloat16(1)
		}
	case []tensor.BFloat16Bits:
		for i := range md {
			md[i] = tensor.Float32ToBFloat16(1)
		}
	}
	return m, nil
}
