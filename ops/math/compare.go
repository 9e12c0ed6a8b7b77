package math

import (
	"cmp"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

type cmpOp int

const (
	cmpEq cmpOp = iota
	cmpLt
	cmpGt
	cmpLe
	cmpGe
)

func init() {
	for name, op := range map[string]cmpOp{"Equal": cmpEq, "Less": cmpLt, "Greater": cmpGt, "LessOrEqual": cmpLe, "GreaterOrEqual": cmpGe} {
		op := op
		ops.Register("", name, 1, fixed(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 2); err != nil {
				return nil, err
			}
			return one(compare(op, in[0], in[1]))
		}))
	}
	for name, f := range map[string]func(a, b bool) bool{
		"And": func(a, b bool) bool { return a && b },
		"Or":  func(a, b bool) bool { return a || b },
		"Xor": func(a, b bool) bool { return a != b },
	} {
		k := elementwise(f)
		ops.Register("", name, 1, fixed(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 2); err != nil {
				return nil, err
			}
			for i := 0; i < 2; i++ {
				if in[i].DType != tensor.Bool {
					return nil, ops.BadInput(i, "dtype %v (shape %v): want bool", in[i].DType, in[i].Shape)
				}
			}
			return one(binary(in[0], in[1], k))
		}))
	}
	ops.Register("", "Not", 1, fixed(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		x, ok := in[0].Data.([]bool)
		if !ok {
			return nil, ops.BadInput(0, "dtype %v (shape %v): want bool", in[0].DType, in[0].Shape)
		}
		out := make([]bool, len(x))
		for i, v := range x {
			out[i] = !v
		}
		return []*tensor.Tensor{{DType: tensor.Bool, Shape: append([]int{}, in[0].Shape...), Data: out}}, nil
	}))
	ops.Register("", "BitShift", 11, func(c *ops.Config) (ops.Op, error) {
		dir := c.Attrs.String("direction", "")
		if dir != "LEFT" && dir != "RIGHT" {
			return nil, ops.BadAttr("direction", "must be LEFT or RIGHT, got %q", dir)
		}
		left := dir == "LEFT"
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 2); err != nil {
				return nil, err
			}
			if err := sameDType(in[:2]); err != nil {
				return nil, err
			}
			switch in[0].DType {
			case tensor.Uint8:
				return one(binary(in[0], in[1], shiftKern[uint8](left)))
			case tensor.Uint16:
				return one(binary(in[0], in[1], shiftKern[uint16](left)))
			case tensor.Uint32:
				return one(binary(in[0], in[1], shiftKern[uint32](left)))
			case tensor.Uint64:
				return one(binary(in[0], in[1], shiftKern[uint64](left)))
			}
			return nil, unsupported(0, in[0])
		}), nil
	})
}

func shiftKern[T integer](left bool) kern[T, T, T] {
	if left {
		return elementwise(func(a, b T) T { return a << b })
	}
	return elementwise(func(a, b T) T { return a >> b })
}

func cmpKern[T cmp.Ordered](op cmpOp) kern[T, T, bool] {
	switch op {
	case cmpEq:
		return elementwise(func(a, b T) bool { return a == b })
	case cmpLt:
		return elementwise(func(a, b T) bool { return a < b })
	case cmpGt:
		return elementwise(func(a, b T) bool { return a > b })
	case cmpLe:
		return elementwise(func(a, b T) bool { return a <= b })
	}
	return elementwise(func(a, b T) bool { return a >= b })
}

func compare(op cmpOp, a, b *tensor.Tensor) (*tensor.Tensor, error) {
	if a.DType != b.DType {
		return nil, ops.BadInput(1, "dtype %v (shape %v) differs from input 0's %v (shape %v)", b.DType, b.Shape, a.DType, a.Shape)
	}
	switch a.DType {
	case tensor.Float32:
		return binary(a, b, cmpKern[float32](op))
	case tensor.Float64:
		return binary(a, b, cmpKern[float64](op))
	case tensor.Float16, tensor.BFloat16:
		return compare(op, toF32(a), toF32(b))
	case tensor.Int8:
		return binary(a, b, cmpKern[int8](op))
	case tensor.Int16:
		return binary(a, b, cmpKern[int16](op))
	case tensor.Int32:
		return binary(a, b, cmpKern[int32](op))
	case tensor.Int64:
		return binary(a, b, cmpKern[int64](op))
	case tensor.Uint8:
		return binary(a, b, cmpKern[uint8](op))
	case tensor.Uint16:
		return binary(a, b, cmpKern[uint16](op))
	case tensor.Uint32:
		return binary(a, b, cmpKern[uint32](op))
	case tensor.Uint64:
		return binary(a, b, cmpKern[uint64](op))
	case tensor.String:
		return binary(a, b, cmpKern[string](op))
	case tensor.Bool:
		if op == cmpEq {
			return binary(a, b, elementwise(func(x, y bool) bool { return x == y }))
		}
		// false < true, as numpy orders booleans.
		au, bu := boolToU8(a), boolToU8(b)
		if au == nil || bu == nil {
			return nil, ops.BadInput(0, "bool tensors hold %T and %T", a.Data, b.Data)
		}
		return compare(op, au, bu)
	}
	return nil, unsupported(0, a)
}

func boolToU8(t *tensor.Tensor) *tensor.Tensor {
	d, ok := t.Data.([]bool)
	if !ok {
		return nil
	}
	out := make([]uint8, len(d))
	for i, v := range d {
		if v {
			out[i] = 1
		}
	}
	return &tensor.Tensor{DType: tensor.Uint8, Shape: t.Shape, Data: out}
}
