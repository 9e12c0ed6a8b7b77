package math

import (
	gomath "math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

type num = tensor.Number

type integer interface {
	int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64
}

type arithOp int

const (
	opAdd arithOp = iota
	opSub
	opMul
	opDiv
	opMax
	opMin
)

var arithNames = [...]string{"Add", "Sub", "Mul", "Div", "Max", "Min"}

func init() {
	for _, op := range []arithOp{opAdd, opSub, opMul, opDiv} {
		op := op
		ops.Define(ops.Desc{Type: arithNames[op], Since: 1, Shape: ops.ShapeBroadcastInputs, Traits: ops.Elementwise, Kernel: func(c *ops.Config) (ops.Op, error) {
			threads := c.Threads
			return kernel(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
				if err := ops.NeedInputs(in, 2); err != nil {
					return nil, err
				}
				r, err := arith(ar, threads, op, nil, in[0], in[1])
				return one(ar, r, err)
			}), nil
		}})
	}
	ops.Define(ops.Desc{Type: "Pow", Since: 1, Shape: ops.ShapeBroadcastInputs, Traits: ops.Elementwise, Kernel: fixed(runPow)})
	// float Mod's gradient: train/autodiff/rules_arith.go
	ops.Define(ops.Desc{Type: "Mod", Since: 10, Shape: ops.ShapeBroadcastInputs, Grad: ops.GradRule{}, Traits: ops.Elementwise, Kernel: func(c *ops.Config) (ops.Op, error) {
		fm := c.Attrs.Int("fmod", 0)
		if fm != 0 && fm != 1 {
			return nil, ops.BadAttr("fmod", "must be 0 or 1, got %d", fm)
		}
		return kernel(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 2); err != nil {
				return nil, err
			}
			r, err := mod(ar, in[0], in[1], fm == 1)
			return one(ar, r, err)
		}), nil
	}})
}

// Kernel tables, built once: a generic closure allocates each time it is
// made, so the hot path only indexes these.
var (
	kF32 = arithKerns[float32]()
	kF64 = arithKerns[float64]()
	kI8  = arithKerns[int8]()
	kI16 = arithKerns[int16]()
	kI32 = arithKerns[int32]()
	kI64 = arithKerns[int64]()
	kU8  = arithKerns[uint8]()
	kU16 = arithKerns[uint16]()
	kU32 = arithKerns[uint32]()
	kU64 = arithKerns[uint64]()
)

func arithKerns[T num]() (k [opMin + 1]kern[T, T, T]) {
	for op := range k {
		k[op] = arithKern[T](arithOp(op))
	}
	return k
}

// arithKern returns the typed loops of op for T.
func arithKern[T num](op arithOp) kern[T, T, T] {
	switch op {
	case opAdd:
		return kern[T, T, T]{
			vv: func(o, a, b []T) {
				a, b = a[:len(o)], b[:len(o)]
				for i := range o {
					o[i] = a[i] + b[i]
				}
			},
			vs: func(o, a []T, s T) {
				a = a[:len(o)]
				for i := range o {
					o[i] = a[i] + s
				}
			},
			sv: func(o []T, s T, b []T) {
				b = b[:len(o)]
				for i := range o {
					o[i] = s + b[i]
				}
			},
		}
	case opSub:
		return kern[T, T, T]{
			vv: func(o, a, b []T) {
				a, b = a[:len(o)], b[:len(o)]
				for i := range o {
					o[i] = a[i] - b[i]
				}
			},
			vs: func(o, a []T, s T) {
				a = a[:len(o)]
				for i := range o {
					o[i] = a[i] - s
				}
			},
			sv: func(o []T, s T, b []T) {
				b = b[:len(o)]
				for i := range o {
					o[i] = s - b[i]
				}
			},
		}
	case opMul:
		return kern[T, T, T]{
			vv: func(o, a, b []T) {
				a, b = a[:len(o)], b[:len(o)]
				for i := range o {
					o[i] = a[i] * b[i]
				}
			},
			vs: func(o, a []T, s T) {
				a = a[:len(o)]
				for i := range o {
					o[i] = a[i] * s
				}
			},
			sv: func(o []T, s T, b []T) {
				b = b[:len(o)]
				for i := range o {
					o[i] = s * b[i]
				}
			},
		}
	case opDiv:
		return kern[T, T, T]{
			vv: func(o, a, b []T) {
				a, b = a[:len(o)], b[:len(o)]
				for i := range o {
					o[i] = a[i] / b[i]
				}
			},
			vs: func(o, a []T, s T) {
				a = a[:len(o)]
				for i := range o {
					o[i] = a[i] / s
				}
			},
			sv: func(o []T, s T, b []T) {
				b = b[:len(o)]
				for i := range o {
					o[i] = s / b[i]
				}
			},
		}
	case opMax:
		return elementwise(func(a, b T) T {
			if b > a || b != b { // NaN propagates, as in numpy.maximum
				return b
			}
			return a
		})
	default: // opMin
		return elementwise(func(a, b T) T {
			if b < a || b != b {
				return b
			}
			return a
		})
	}
}

// arith computes a op b with broadcasting, writing into dst when it has the
// result's shape and dtype (dst may be a or b). Large float32 operands of
// one shape (or with a scalar) are split over threads.
func arith(ar *ops.Arena, threads int, op arithOp, dst, a, b *tensor.Tensor) (*tensor.Tensor, error) {
	if a.DType != b.DType {
		return nil, ops.BadInput(1, "dtype %v (shape %v) differs from input 0's %v (shape %v)", b.DType, b.Shape, a.DType, a.Shape)
	}
	switch a.DType {
	case tensor.Float32:
		if threads > 1 {
			if r, ok, err := parallelArith(ar, &kF32[op], dst, a, b, threads); ok {
				return r, err
			}
		}
		return binaryInto(ar, dst, a, b, kF32[op])
	case tensor.Float64:
		return binaryInto(ar, dst, a, b, kF64[op])
	case tensor.Float16, tensor.BFloat16:
		r, err := arith(ar, threads, op, nil, toF32(ar, a), toF32(ar, b))
		if err != nil {
			return nil, err
		}
		return fromF32(ar, r, a.DType), nil
	case tensor.Int8:
		return intArith(ar, op, dst, a, b, kI8[op])
	case tensor.Int16:
		return intArith(ar, op, dst, a, b, kI16[op])
	case tensor.Int32:
		return intArith(ar, op, dst, a, b, kI32[op])
	case tensor.Int64:
		return intArith(ar, op, dst, a, b, kI64[op])
	case tensor.Uint8:
		return intArith(ar, op, dst, a, b, kU8[op])
	case tensor.Uint16:
		return intArith(ar, op, dst, a, b, kU16[op])
	case tensor.Uint32:
		return intArith(ar, op, dst, a, b, kU32[op])
	case tensor.Uint64:
		return intArith(ar, op, dst, a, b, kU64[op])
	}
	return nil, unsupported(0, a)
}

// intArith guards integer division against a zero divisor (Go would panic)
// and otherwise runs the typed loops. Go's integer division truncates toward
// zero, as C and the ONNX reference do.
func intArith[T integer](ar *ops.Arena, op arithOp, dst, a, b *tensor.Tensor, k kern[T, T, T]) (*tensor.Tensor, error) {
	if op == opDiv {
		if bd, ok := b.Data.([]T); ok {
			for _, v := range bd {
				if v == 0 {
					return nil, ops.BadInput(1, "integer division by zero (%v divisor, shape %v)", b.DType, b.Shape)
				}
			}
		}
	}
	return binaryInto(ar, dst, a, b, k)
}

// ---- Pow ----

func runPow(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	r, err := pow(ar, in[0], in[1])
	return one(ar, r, err)
}

// Pow kernel tables, built once (see kF32).
var (
	powF32 = powKern[float32]()
	powF64 = powKern[float64]()

	ipowI8  = elementwise(ipow[int8])
	ipowI16 = elementwise(ipow[int16])
	ipowI32 = elementwise(ipow[int32])
	ipowI64 = elementwise(ipow[int64])
	ipowU8  = elementwise(ipow[uint8])
	ipowU16 = elementwise(ipow[uint16])
	ipowU32 = elementwise(ipow[uint32])
	ipowU64 = elementwise(ipow[uint64])

	fpowF32 = elementwise(fpow[float32])
	fpowF64 = elementwise(fpow[float64])
	fpowI8  = elementwise(fpow[int8])
	fpowI16 = elementwise(fpow[int16])
	fpowI32 = elementwise(fpow[int32])
	fpowI64 = elementwise(fpow[int64])
	fpowU8  = elementwise(fpow[uint8])
	fpowU16 = elementwise(fpow[uint16])
	fpowU32 = elementwise(fpow[uint32])
	fpowU64 = elementwise(fpow[uint64])
)

// pow computes base**exp; the result has the base's dtype.
func pow(ar *ops.Arena, a, b *tensor.Tensor) (*tensor.Tensor, error) {
	if isHalf(a.DType) {
		r, err := pow(ar, toF32(ar, a), toF32(ar, b))
		if err != nil {
			return nil, err
		}
		return fromF32(ar, r, a.DType), nil
	}
	if isHalf(b.DType) {
		b = toF32(ar, b)
	}
	if !b.DType.IsFloat() && !b.DType.IsInteger() {
		return nil, unsupported(1, b)
	}
	// Exact-type float paths with the common constant exponents.
	switch a.DType {
	case tensor.Float32:
		if b.DType == tensor.Float32 {
			return binary(ar, a, b, powF32)
		}
	case tensor.Float64:
		if b.DType == tensor.Float64 {
			return binary(ar, a, b, powF64)
		}
	}
	if a.DType.IsInteger() && b.DType.IsInteger() {
		et, err := castTo(ar, b, tensor.Int64)
		if err != nil {
			return nil, ops.BadInput(1, "%v", err)
		}
		switch a.DType {
		case tensor.Int8:
			return binary(ar, a, et, ipowI8)
		case tensor.Int16:
			return binary(ar, a, et, ipowI16)
		case tensor.Int32:
			return binary(ar, a, et, ipowI32)
		case tensor.Int64:
			return binary(ar, a, et, ipowI64)
		case tensor.Uint8:
			return binary(ar, a, et, ipowU8)
		case tensor.Uint16:
			return binary(ar, a, et, ipowU16)
		case tensor.Uint32:
			return binary(ar, a, et, ipowU32)
		case tensor.Uint64:
			return binary(ar, a, et, ipowU64)
		}
	}
	et, err := castTo(ar, b, tensor.Float64)
	if err != nil {
		return nil, ops.BadInput(1, "%v", err)
	}
	switch a.DType {
	case tensor.Float32:
		return binary(ar, a, et, fpowF32)
	case tensor.Float64:
		return binary(ar, a, et, fpowF64)
	case tensor.Int8:
		return binary(ar, a, et, fpowI8)
	case tensor.Int16:
		return binary(ar, a, et, fpowI16)
	case tensor.Int32:
		return binary(ar, a, et, fpowI32)
	case tensor.Int64:
		return binary(ar, a, et, fpowI64)
	case tensor.Uint8:
		return binary(ar, a, et, fpowU8)
	case tensor.Uint16:
		return binary(ar, a, et, fpowU16)
	case tensor.Uint32:
		return binary(ar, a, et, fpowU32)
	case tensor.Uint64:
		return binary(ar, a, et, fpowU64)
	}
	return nil, unsupported(0, a)
}

func fpow[T num](a T, e float64) T { return T(gomath.Pow(float64(a), e)) }

// ipow is integer exponentiation by squaring with wrap-around, as numpy.
// A negative exponent gives 0 except for bases 1 and -1.
func ipow[T integer](a T, e int64) T {
	if e < 0 {
		switch {
		case a == 1:
			return 1
		case int64(a) == -1 && a < 0: // signed -1
			if e%2 == 0 {
				return 1
			}
			return a
		}
		return 0
	}
	r := T(1)
	for e > 0 {
		if e&1 == 1 {
			r *= a
		}
		a *= a
		e >>= 1
	}
	return r
}

// powKern is float**float with the exponents 2, 0.5 and 1 special-cased when
// the exponent is a constant over the run.
func powKern[T tensor.Float]() kern[T, T, T] {
	k := elementwise(func(a, b T) T { return T(gomath.Pow(float64(a), float64(b))) })
	general := k.vs
	k.vs = func(o, a []T, s T) {
		a = a[:len(o)]
		switch s {
		case 2:
			for i, v := range a {
				o[i] = v * v
			}
		case 1:
			copy(o, a)
		case 0.5:
			for i, v := range a {
				o[i] = T(gomath.Sqrt(float64(v)))
			}
		default:
			general(o, a, s)
		}
	}
	return k
}

// ---- Mod ----

// Mod kernel tables, [0] floored (numpy.mod), [1] fmod; built once.
var (
	modF32 = [2]kern[float32, float32, float32]{elementwise(fmodF[float32](false)), elementwise(fmodF[float32](true))}
	modF64 = [2]kern[float64, float64, float64]{elementwise(fmodF[float64](false)), elementwise(fmodF[float64](true))}
	modI8  = imodKerns[int8]()
	modI16 = imodKerns[int16]()
	modI32 = imodKerns[int32]()
	modI64 = imodKerns[int64]()
	modU8  = imodKerns[uint8]()
	modU16 = imodKerns[uint16]()
	modU32 = imodKerns[uint32]()
	modU64 = imodKerns[uint64]()
)

func mod(ar *ops.Arena, a, b *tensor.Tensor, fmod bool) (*tensor.Tensor, error) {
	if a.DType != b.DType {
		return nil, ops.BadInput(1, "dtype %v (shape %v) differs from input 0's %v", b.DType, b.Shape, a.DType)
	}
	f := b2i(fmod)
	switch a.DType {
	case tensor.Float32:
		return binary(ar, a, b, modF32[f])
	case tensor.Float64:
		return binary(ar, a, b, modF64[f])
	case tensor.Float16, tensor.BFloat16:
		r, err := mod(ar, toF32(ar, a), toF32(ar, b), fmod)
		if err != nil {
			return nil, err
		}
		return fromF32(ar, r, a.DType), nil
	case tensor.Int8:
		return imod(ar, a, b, modI8[f])
	case tensor.Int16:
		return imod(ar, a, b, modI16[f])
	case tensor.Int32:
		return imod(ar, a, b, modI32[f])
	case tensor.Int64:
		return imod(ar, a, b, modI64[f])
	case tensor.Uint8:
		return imod(ar, a, b, modU8[f])
	case tensor.Uint16:
		return imod(ar, a, b, modU16[f])
	case tensor.Uint32:
		return imod(ar, a, b, modU32[f])
	case tensor.Uint64:
		return imod(ar, a, b, modU64[f])
	}
	return nil, unsupported(0, a)
}

// fmodF: fmod=1 is C fmod (sign of the dividend); fmod=0 is the floored
// modulo of numpy.mod (sign of the divisor).
func fmodF[T tensor.Float](fmod bool) func(a, b T) T {
	return func(a, b T) T {
		r := gomath.Mod(float64(a), float64(b))
		if !fmod && r != 0 && (r < 0) != (b < 0) {
			r += float64(b)
		}
		return T(r)
	}
}

func imodKerns[T integer]() [2]kern[T, T, T] {
	return [2]kern[T, T, T]{
		elementwise(func(x, y T) T {
			r := x % y
			if r != 0 && (r < 0) != (y < 0) {
				r += y
			}
			return r
		}),
		elementwise(func(x, y T) T { return x % y }),
	}
}

func imod[T integer](ar *ops.Arena, a, b *tensor.Tensor, k kern[T, T, T]) (*tensor.Tensor, error) {
	if bd, ok := b.Data.([]T); ok {
		for _, v := range bd {
			if v == 0 {
				return nil, ops.BadInput(1, "integer modulo by zero (%v divisor, shape %v)", b.DType, b.Shape)
			}
		}
	}
	return binary(ar, a, b, k)
}
