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
		ops.Define(ops.Desc{Type: name, Since: 1, Shape: ops.ShapeCompare, Grad: ops.ZeroGradient("bool output"), Traits: ops.Elementwise, Kernel: fixed(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 2); err != nil {
				return nil, err
			}
			r, err := compare(ar, op, in[0], in[1])
			return one(ar, r, err)
		})})
	}
	for name, f := range map[string]func(a, b bool) bool{
		"And": func(a, b bool) bool { return a && b },
		"Or":  func(a, b bool) bool { return a || b },
		"Xor": func(a, b bool) bool { return a != b },
	} {
		k := elementwise(f)
		ops.Define(ops.Desc{Type: name, Since: 1, Shape: ops.ShapeCompare, Grad: ops.ZeroGradient("bool output"), Traits: ops.Elementwise, Kernel: fixed(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 2); err != nil {
				return nil, err
			}
			for i := 0; i < 2; i++ {
				if in[i].DType != tensor.Bool {
					return nil, ops.BadInput(i, "dtype %v (shape %v): want bool", in[i].DType, in[i].Shape)
				}
			}
			r, err := binary(ar, in[0], in[1], k)
			return one(ar, r, err)
		})})
	}
	ops.Define(ops.Desc{Type: "Not", Since: 1, Shape: ops.ShapeSameAsInputBool, Grad: ops.ZeroGradient("bool input and output"), Traits: ops.Elementwise, Kernel: fixed(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		x, ok := in[0].Data.([]bool)
		if !ok {
			return nil, ops.BadInput(0, "dtype %v (shape %v): want bool", in[0].DType, in[0].Shape)
		}
		if err := lenMatches(0, in[0], len(x)); err != nil {
			return nil, err
		}
		r, err := ar.Empty(tensor.Bool, in[0].Shape)
		if err != nil {
			return nil, err
		}
		out := r.Data.([]bool)[:len(x)]
		for i, v := range x {
			out[i] = !v
		}
		return ar.Outputs(r), nil
	})})
	ops.Define(ops.Desc{Type: "BitShift", Since: 11, Shape: ops.ShapeBroadcastInputs, Grad: ops.ZeroGradient("unsigned integer input and output"), Traits: ops.Elementwise, Kernel: func(c *ops.Config) (ops.Op, error) {
		dir := c.Attrs.String("direction", "")
		if dir != "LEFT" && dir != "RIGHT" {
			return nil, ops.BadAttr("direction", "must be LEFT or RIGHT, got %q", dir)
		}
		left := dir == "LEFT"
		k8, k16, k32, k64 := shiftKern[uint8](left), shiftKern[uint16](left), shiftKern[uint32](left), shiftKern[uint64](left)
		return kernel(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 2); err != nil {
				return nil, err
			}
			if err := sameDType(in[:2]); err != nil {
				return nil, err
			}
			var r *tensor.Tensor
			var err error
			switch in[0].DType {
			case tensor.Uint8:
				r, err = binary(ar, in[0], in[1], k8)
			case tensor.Uint16:
				r, err = binary(ar, in[0], in[1], k16)
			case tensor.Uint32:
				r, err = binary(ar, in[0], in[1], k32)
			case tensor.Uint64:
				r, err = binary(ar, in[0], in[1], k64)
			default:
				return nil, unsupported(0, in[0])
			}
			return one(ar, r, err)
		}), nil
	}})
}

func shiftKern[T integer](left bool) kern[T, T, T] {
	if left {
		return elementwise(func(a, b T) T { return a << b })
	}
	return elementwise(func(a, b T) T { return a >> b })
}

// cmpKerns builds the comparison loops of T once, written out per op (an
// indirect call per element would cost several times the comparison).
func cmpKerns[T cmp.Ordered]() [cmpGe + 1]kern[T, T, bool] {
	return [...]kern[T, T, bool]{
		cmpEq: {
			vv: func(out []bool, a, b []T) {
				a, b = a[:len(out)], b[:len(out)]
				for i := range out {
					out[i] = a[i] == b[i]
				}
			},
			vs: func(out []bool, a []T, s T) {
				a = a[:len(out)]
				for i := range out {
					out[i] = a[i] == s
				}
			},
			sv: func(out []bool, s T, b []T) {
				b = b[:len(out)]
				for i := range out {
					out[i] = s == b[i]
				}
			},
		},
		cmpLt: {
			vv: func(out []bool, a, b []T) {
				a, b = a[:len(out)], b[:len(out)]
				for i := range out {
					out[i] = a[i] < b[i]
				}
			},
			vs: func(out []bool, a []T, s T) {
				a = a[:len(out)]
				for i := range out {
					out[i] = a[i] < s
				}
			},
			sv: func(out []bool, s T, b []T) {
				b = b[:len(out)]
				for i := range out {
					out[i] = s < b[i]
				}
			},
		},
		cmpGt: {
			vv: func(out []bool, a, b []T) {
				a, b = a[:len(out)], b[:len(out)]
				for i := range out {
					out[i] = a[i] > b[i]
				}
			},
			vs: func(out []bool, a []T, s T) {
				a = a[:len(out)]
				for i := range out {
					out[i] = a[i] > s
				}
			},
			sv: func(out []bool, s T, b []T) {
				b = b[:len(out)]
				for i := range out {
					out[i] = s > b[i]
				}
			},
		},
		cmpLe: {
			vv: func(out []bool, a, b []T) {
				a, b = a[:len(out)], b[:len(out)]
				for i := range out {
					out[i] = a[i] <= b[i]
				}
			},
			vs: func(out []bool, a []T, s T) {
				a = a[:len(out)]
				for i := range out {
					out[i] = a[i] <= s
				}
			},
			sv: func(out []bool, s T, b []T) {
				b = b[:len(out)]
				for i := range out {
					out[i] = s <= b[i]
				}
			},
		},
		cmpGe: {
			vv: func(out []bool, a, b []T) {
				a, b = a[:len(out)], b[:len(out)]
				for i := range out {
					out[i] = a[i] >= b[i]
				}
			},
			vs: func(out []bool, a []T, s T) {
				a = a[:len(out)]
				for i := range out {
					out[i] = a[i] >= s
				}
			},
			sv: func(out []bool, s T, b []T) {
				b = b[:len(out)]
				for i := range out {
					out[i] = s >= b[i]
				}
			},
		},
	}
}

var (
	cmpF32  = cmpKerns[float32]()
	cmpF64  = cmpKerns[float64]()
	cmpI8   = cmpKerns[int8]()
	cmpI16  = cmpKerns[int16]()
	cmpI32  = cmpKerns[int32]()
	cmpI64  = cmpKerns[int64]()
	cmpU8   = cmpKerns[uint8]()
	cmpU16  = cmpKerns[uint16]()
	cmpU32  = cmpKerns[uint32]()
	cmpU64  = cmpKerns[uint64]()
	cmpStr  = cmpKerns[string]()
	eqBools = elementwise(func(x, y bool) bool { return x == y })
)

func compare(ar *ops.Arena, op cmpOp, a, b *tensor.Tensor) (*tensor.Tensor, error) {
	if a.DType != b.DType {
		return nil, ops.BadInput(1, "dtype %v (shape %v) differs from input 0's %v (shape %v)", b.DType, b.Shape, a.DType, a.Shape)
	}
	switch a.DType {
	case tensor.Float32:
		return binary(ar, a, b, cmpF32[op])
	case tensor.Float64:
		return binary(ar, a, b, cmpF64[op])
	case tensor.Float16, tensor.BFloat16:
		return compare(ar, op, toF32(ar, a), toF32(ar, b))
	case tensor.Int8:
		return binary(ar, a, b, cmpI8[op])
	case tensor.Int16:
		return binary(ar, a, b, cmpI16[op])
	case tensor.Int32:
		return binary(ar, a, b, cmpI32[op])
	case tensor.Int64:
		return binary(ar, a, b, cmpI64[op])
	case tensor.Uint8:
		return binary(ar, a, b, cmpU8[op])
	case tensor.Uint16:
		return binary(ar, a, b, cmpU16[op])
	case tensor.Uint32:
		return binary(ar, a, b, cmpU32[op])
	case tensor.Uint64:
		return binary(ar, a, b, cmpU64[op])
	case tensor.String:
		return binary(ar, a, b, cmpStr[op])
	case tensor.Bool:
		if op == cmpEq {
			return binary(ar, a, b, eqBools)
		}
		// false < true, as numpy orders booleans.
		au, bu := boolToU8(ar, a), boolToU8(ar, b)
		if au == nil || bu == nil {
			return nil, ops.BadInput(0, "bool tensors hold %T and %T", a.Data, b.Data)
		}
		return compare(ar, op, au, bu)
	}
	return nil, unsupported(0, a)
}

// boolToU8 is t as 0/1 uint8s in a tensor from ar (nil if t is not bool).
func boolToU8(ar *ops.Arena, t *tensor.Tensor) *tensor.Tensor {
	d, ok := t.Data.([]bool)
	if !ok {
		return nil
	}
	r, err := ar.Empty(tensor.Uint8, t.Shape)
	if err != nil {
		return nil
	}
	if !castInto(r.Data.([]uint8), d) {
		return nil
	}
	return r
}
