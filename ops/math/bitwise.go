package math

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// BitwiseAnd, BitwiseOr, BitwiseXor (broadcasting) and BitwiseNot on the
// integer dtypes (opset 18).

func init() {
	for name, f := range map[string]func(a, b uint64) uint64{
		"BitwiseAnd": func(a, b uint64) uint64 { return a & b },
		"BitwiseOr":  func(a, b uint64) uint64 { return a | b },
		"BitwiseXor": func(a, b uint64) uint64 { return a ^ b },
	} {
		ops.Define(ops.Desc{Type: name, Since: 18, Shape: ops.ShapeBroadcastInputs, Grad: ops.NotDifferentiable("integer bit operations"), Traits: ops.Elementwise, Kernel: func(*ops.Config) (ops.Op, error) {
			return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return bitwise2(name, f, in) }), nil
		}})
	}
	ops.Define(ops.Desc{Type: "BitwiseNot", Since: 18, Shape: ops.ShapeSameAsInput, Grad: ops.NotDifferentiable("integer bit operations"), Traits: ops.Elementwise, Kernel: func(*ops.Config) (ops.Op, error) {
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 1); err != nil {
				return nil, err
			}
			x := in[0]
			if !x.DType.IsInteger() {
				return nil, ops.BadInput(0, "BitwiseNot needs an integer tensor, got %v", x)
			}
			v, _ := tensor.AsInt64(x)
			for i := range v {
				v[i] = ^v[i]
			}
			return fromBits(x.DType, x.Shape, v)
		}), nil
	}})
}

func bitwise2(name string, f func(a, b uint64) uint64, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if !a.DType.IsInteger() || a.DType != b.DType {
		return nil, ops.BadInput(1, "%s needs two integer tensors of one dtype, got %v and %v", name, a, b)
	}
	shape, err := tensor.BroadcastShapes(a.Shape, b.Shape)
	if err != nil {
		return nil, ops.BadInput(1, "%s: %v", name, err)
	}
	av, _ := tensor.AsInt64(a)
	bv, _ := tensor.AsInt64(b)
	ia, ib := tensor.BroadcastIndex(a.Shape, shape), tensor.BroadcastIndex(b.Shape, shape)
	out := make([]int64, len(ia))
	for i := range out {
		out[i] = int64(f(uint64(av[ia[i]]), uint64(bv[ib[i]])))
	}
	return fromBits(a.DType, shape, out)
}

// fromBits narrows int64 bit patterns to dt (two's complement truncation).
func fromBits(dt tensor.DType, shape []int, v []int64) ([]*tensor.Tensor, error) {
	t, err := tensor.New(dt, shape)
	if err != nil {
		return nil, err
	}
	switch d := t.Data.(type) {
	case []int8:
		for i, x := range v {
			d[i] = int8(x)
		}
	case []int16:
		for i, x := range v {
			d[i] = int16(x)
		}
	case []int32:
		for i, x := range v {
			d[i] = int32(x)
		}
	case []int64:
		copy(d, v)
	case []uint8:
		for i, x := range v {
			d[i] = uint8(x)
		}
	case []uint16:
		for i, x := range v {
			d[i] = uint16(x)
		}
	case []uint32:
		for i, x := range v {
			d[i] = uint32(x)
		}
	case []uint64:
		for i, x := range v {
			d[i] = uint64(x)
		}
	}
	return []*tensor.Tensor{t}, nil
}
