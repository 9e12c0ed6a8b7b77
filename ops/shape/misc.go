package shape

import (
	"math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Define(ops.Desc{Type: "Range", Since: 11, Grad: ops.NotDifferentiable("no backward rule: its inputs are shape arithmetic, not parameters"), Traits: ops.ShapeOnly, Kernel: func(c *ops.Config) (ops.Op, error) {
		if c.Attrs.Int("stash_type", 1) != 1 {
			// Range-27 with stash_type 0 accumulates float16/bfloat16 in
			// their own precision, which mtlrun does not reproduce
			return kernel(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
				if len(in) > 0 && in[0] != nil && (in[0].DType == tensor.Float16 || in[0].DType == tensor.BFloat16) {
					return nil, ops.BadAttr("stash_type", "0 (accumulate in %v) is not supported; 1 (float32) is", in[0].DType)
				}
				return runRange(ar, in)
			}), nil
		}
		return kernel(runRange), nil
	}})
	ops.Define(ops.Desc{Type: "CumSum", Since: 11, Shape: ops.ShapeSameAsInput, Kernel: newCumSum})
	ops.Define(ops.Desc{Type: "Trilu", Since: 14, Shape: ops.ShapeSameAsInput, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: newTrilu})
	ops.Define(ops.Desc{Type: "ReverseSequence", Since: 10, Shape: ops.ShapeSameAsInput, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: newReverseSequence})
}

// ---- Range ----

func runRange(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 3); err != nil {
		return nil, err
	}
	for i := 0; i < 3; i++ {
		if in[i].Len() != 1 || tensor.DataLen(in[i].Data) != 1 {
			return nil, ops.BadInput(i, "Range inputs must be scalars, got %v", in[i])
		}
		if in[i].DType != in[0].DType {
			return nil, ops.BadInput(i, "Range input dtype %v differs from start's %v", in[i].DType, in[0].DType)
		}
	}
	switch in[0].DType {
	case tensor.Float32:
		return rangeT[float32](ar, in, true)
	case tensor.Float64:
		return rangeT[float64](ar, in, true)
	case tensor.Int16:
		return rangeT[int16](ar, in, false)
	case tensor.Int32:
		return rangeT[int32](ar, in, false)
	case tensor.Int64:
		return rangeT[int64](ar, in, false)
	case tensor.Int8:
		return rangeT[int8](ar, in, false)
	case tensor.Uint8:
		return rangeT[uint8](ar, in, false)
	case tensor.Uint16:
		return rangeT[uint16](ar, in, false)
	case tensor.Uint32:
		return rangeT[uint32](ar, in, false)
	case tensor.Uint64:
		return rangeT[uint64](ar, in, false)
	case tensor.Float16, tensor.BFloat16:
		// computed in float32 and rounded once (Range-27's default stash_type)
		f := make([]*tensor.Tensor, 3)
		for i := range f {
			v, _ := tensor.AsFloat64(in[i])
			f[i] = tensor.Scalar(float32(v[0]))
		}
		out, err := rangeT[float32](nil, f, true)
		if err != nil {
			return nil, err
		}
		y, _ := tensor.New(in[0].DType, out[0].Shape)
		for i, v := range out[0].Float32s() {
			if h, ok := y.Data.([]tensor.Float16Bits); ok {
				h[i] = tensor.Float32ToFloat16(v)
			} else {
				y.Data.([]tensor.BFloat16Bits)[i] = tensor.Float32ToBFloat16(v)
			}
		}
		return ar.Outputs(y), nil
	}
	return nil, ops.BadInput(0, "Range does not support %v", in[0])
}

func rangeT[T tensor.Number](ar *ops.Arena, in []*tensor.Tensor, isFloat bool) ([]*tensor.Tensor, error) {
	s, l, d := tensor.Data[T](in[0])[0], tensor.Data[T](in[1])[0], tensor.Data[T](in[2])[0]
	if d == 0 {
		return nil, ops.BadInput(2, "Range delta is 0")
	}
	var n float64
	if isFloat {
		n = math.Ceil((float64(l) - float64(s)) / float64(d))
	} else {
		// exact integer arithmetic in modular uint64 space
		var zero T
		if d > zero && l > s {
			span, step := uint64(l)-uint64(s), uint64(d)
			n = float64(span/step + min(span%step, 1))
		} else if d < zero && l < s {
			span, step := uint64(s)-uint64(l), -uint64(d)
			n = float64(span/step + min(span%step, 1))
		}
	}
	if n < 0 || math.IsNaN(n) {
		n = 0
	}
	if n > tensor.MaxElements {
		return nil, ops.BadInput(1, "Range from %v to %v by %v has too many elements", s, l, d)
	}
	shape := [1]int{int(n)}
	t, err := ar.Empty(tensor.DTypeOf[T](), shape[:])
	if err != nil {
		return nil, err
	}
	out := t.Data.([]T)
	for i := range out {
		out[i] = s + T(i)*d
	}
	return one(ar, t)
}

// ---- CumSum ----

type cumSumOp struct{ exclusive, reverse bool }

func newCumSum(c *ops.Config) (ops.Op, error) {
	return &cumSumOp{exclusive: c.Attrs.Int("exclusive", 0) != 0, reverse: c.Attrs.Int("reverse", 0) != 0}, nil
}

// Run is RunWith(nil, in).
func (c *cumSumOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return c.RunWith(nil, in) }

// RunWith sums into a tensor from ar (float16/bfloat16 allocate).
func (c *cumSumOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, axis, err := scanAxis(in, "CumSum")
	if err != nil {
		return nil, err
	}
	if err := x.Validate(); err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	outer, k, inner := prod(x.Shape[:axis]), x.Shape[axis], prod(x.Shape[axis+1:])
	var out *tensor.Tensor
	switch d := x.Data.(type) {
	case []float32:
		out, err = cumSumT(ar, x, d, outer, k, inner, c)
	case []float64:
		out, err = cumSumT(ar, x, d, outer, k, inner, c)
	case []int32:
		out, err = cumSumT(ar, x, d, outer, k, inner, c)
	case []int64:
		out, err = cumSumT(ar, x, d, outer, k, inner, c)
	case []uint32:
		out, err = cumSumT(ar, x, d, outer, k, inner, c)
	case []uint64:
		out, err = cumSumT(ar, x, d, outer, k, inner, c)
	case []int8:
		out, err = cumSumT(ar, x, d, outer, k, inner, c)
	case []int16:
		out, err = cumSumT(ar, x, d, outer, k, inner, c)
	case []uint8:
		out, err = cumSumT(ar, x, d, outer, k, inner, c)
	case []uint16:
		out, err = cumSumT(ar, x, d, outer, k, inner, c)
	case []tensor.Float16Bits, []tensor.BFloat16Bits:
		f, err := tensor.AsFloat64(x)
		if err != nil {
			return nil, ops.BadInput(0, "%v", err)
		}
		yt, err := cumSumT(nil, &tensor.Tensor{DType: tensor.Float64, Shape: x.Shape, Data: f}, f, outer, k, inner, c)
		if err != nil {
			return nil, err
		}
		y := yt.Float64s()
		if out, err = tensor.New(x.DType, x.Shape); err != nil {
			return nil, err
		}
		if h, ok := out.Data.([]tensor.Float16Bits); ok {
			for i, v := range y {
				h[i] = tensor.Float32ToFloat16(float32(v))
			}
		} else {
			b := out.Data.([]tensor.BFloat16Bits)
			for i, v := range y {
				b[i] = tensor.Float32ToBFloat16(float32(v))
			}
		}
	default:
		return nil, ops.BadInput(0, "CumSum does not support %v", x)
	}
	if err != nil {
		return nil, err
	}
	return one(ar, out)
}

func cumSumT[T tensor.Number](ar *ops.Arena, x *tensor.Tensor, src []T, outer, k, inner int, c *cumSumOp) (*tensor.Tensor, error) {
	t, err := ar.New(x.DType, x.Shape) // exclusive sums leave their first row 0
	if err != nil {
		return nil, err
	}
	dst := t.Data.([]T)
	for o := 0; o < outer; o++ {
		s := src[o*k*inner : (o+1)*k*inner]
		d := dst[o*k*inner : (o+1)*k*inner]
		var prev []T // previous output row
		for step := 0; step < k; step++ {
			i := step
			if c.reverse {
				i = k - 1 - step
			}
			row := d[i*inner : (i+1)*inner]
			if c.exclusive {
				if step > 0 {
					pi := i - 1
					if c.reverse {
						pi = i + 1
					}
					xs := s[pi*inner : (pi+1)*inner]
					for j := range row {
						row[j] = prev[j] + xs[j]
					}
				}
			} else {
				xs := s[i*inner : (i+1)*inner]
				if step == 0 {
					copy(row, xs)
				} else {
					for j := range row {
						row[j] = prev[j] + xs[j]
					}
				}
			}
			prev = row
		}
	}
	return t, nil
}

// ---- Trilu ----

type triluOp struct{ upper bool }

func newTrilu(c *ops.Config) (ops.Op, error) {
	return &triluOp{upper: c.Attrs.Int("upper", 1) != 0}, nil
}

// Run is RunWith(nil, in).
func (t *triluOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return t.RunWith(nil, in) }

// RunWith writes into a zeroed tensor from ar.
func (t *triluOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	r := x.Rank()
	if r < 2 {
		return nil, ops.BadInput(0, "Trilu needs rank >= 2, got %v", x)
	}
	k, _, err := scalarInt(in, 1, "k")
	if err != nil {
		return nil, err
	}
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	if err := x.Validate(); err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	out, dst, err := allocZero(ar, x.DType, x.Shape)
	if err != nil {
		return nil, err
	}
	rows, cols := x.Shape[r-2], x.Shape[r-1]
	batch := prod(x.Shape[:r-2])
	// For row i the kept columns are [lo, hi).
	for b := 0; b < batch; b++ {
		for i := 0; i < rows; i++ {
			var lo, hi int64
			if t.upper {
				lo, hi = clamp(int64(i)+k, 0, int64(cols)), int64(cols)
			} else {
				lo, hi = 0, clamp(int64(i)+k+1, 0, int64(cols))
			}
			if hi > lo {
				off := (b*rows + i) * cols
				copyRaw(dst, src, off+int(lo), off+int(lo), int(hi-lo))
			}
		}
	}
	return one(ar, out)
}

// ---- ReverseSequence ----

type reverseSequenceOp struct{ batchAxis, timeAxis int64 }

func newReverseSequence(c *ops.Config) (ops.Op, error) {
	r := &reverseSequenceOp{batchAxis: c.Attrs.Int("batch_axis", 1), timeAxis: c.Attrs.Int("time_axis", 0)}
	if !(r.batchAxis == 0 && r.timeAxis == 1 || r.batchAxis == 1 && r.timeAxis == 0) {
		return nil, ops.BadAttr("batch_axis", "batch_axis %d and time_axis %d must be 0 and 1 in some order", r.batchAxis, r.timeAxis)
	}
	return r, nil
}

// Run is RunWith(nil, in).
func (rs *reverseSequenceOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return rs.RunWith(nil, in)
}

// RunWith reverses into a tensor from ar.
func (rs *reverseSequenceOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x := in[0]
	if x.Rank() < 2 {
		return nil, ops.BadInput(0, "ReverseSequence needs rank >= 2, got %v", x)
	}
	lens, _, err := intsInput(ar, in, 1, "sequence_lens")
	if err != nil {
		return nil, err
	}
	bsz, tsz := x.Shape[rs.batchAxis], x.Shape[rs.timeAxis]
	if len(lens) != bsz {
		return nil, ops.BadInput(1, "ReverseSequence sequence_lens has %d values, batch size of %v is %d", len(lens), x, bsz)
	}
	for b, l := range lens {
		if l < 0 || l > int64(tsz) {
			return nil, ops.BadInput(1, "ReverseSequence length %d (batch %d) out of range [0, %d]", l, b, tsz)
		}
	}
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	if err := x.Validate(); err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	out, dst, err := alloc(ar, x.DType, x.Shape)
	if err != nil {
		return nil, err
	}
	inner := prod(x.Shape[2:])
	if inner == 0 {
		return one(ar, out)
	}
	off := func(b, t int) int {
		if rs.timeAxis == 0 {
			return (t*bsz + b) * inner
		}
		return (b*tsz + t) * inner
	}
	for b := 0; b < bsz; b++ {
		l := int(lens[b])
		for t := 0; t < tsz; t++ {
			s := t
			if t < l {
				s = l - 1 - t
			}
			copyRaw(dst, src, off(b, t), off(b, s), inner)
		}
	}
	return one(ar, out)
}

// scanAxis checks a cumulative op's inputs (x and a scalar axis) and gives x
// with its normalised axis.
func scanAxis(in []*tensor.Tensor, op string) (*tensor.Tensor, int, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, 0, err
	}
	x := in[0]
	a, _, err := scalarInt(in, 1, "axis")
	if err != nil {
		return nil, 0, err
	}
	axis, err := normAxis(a, x.Rank())
	if err != nil || x.Rank() == 0 {
		return nil, 0, ops.BadInput(1, "%s axis %d invalid for %v", op, a, x)
	}
	return x, axis, nil
}
