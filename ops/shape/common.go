package shape

import (
	"fmt"
	"unsafe"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// The data-movement kernels in this package never look at element values,
// only at their bits, so every dtype is handled through one of five "raw"
// views: numeric and bool slices are reinterpreted (no copy) as unsigned
// integers of the same width, strings stay strings. float32 thus runs the
// same tight typed loop as int32 and uint32.

// kind is the raw class of a dtype.
type kind uint8

const (
	kInvalid kind = iota
	k1            // int8, uint8, bool
	k2            // int16, uint16, float16, bfloat16
	k4            // float32, int32, uint32
	k8            // float64, int64, uint64
	kStr          // string
)

// word is the set of raw element types.
type word interface {
	uint8 | uint16 | uint32 | uint64 | string
}

// raw is a tensor's data seen through its raw class.
type raw struct {
	k  kind
	b1 []uint8
	b2 []uint16
	b4 []uint32
	b8 []uint64
	s  []string
}

func reinterpret[D, S any](s []S) []D {
	if len(s) == 0 {
		return []D{}
	}
	return unsafe.Slice((*D)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

// rawOf views t's data by its raw class. It fails for a tensor whose Data
// is not one of the supported slice types.
func rawOf(t *tensor.Tensor) (raw, error) {
	switch d := t.Data.(type) {
	case []float32:
		return raw{k: k4, b4: reinterpret[uint32](d)}, nil
	case []int32:
		return raw{k: k4, b4: reinterpret[uint32](d)}, nil
	case []uint32:
		return raw{k: k4, b4: d}, nil
	case []float64:
		return raw{k: k8, b8: reinterpret[uint64](d)}, nil
	case []int64:
		return raw{k: k8, b8: reinterpret[uint64](d)}, nil
	case []uint64:
		return raw{k: k8, b8: d}, nil
	case []int16:
		return raw{k: k2, b2: reinterpret[uint16](d)}, nil
	case []uint16:
		return raw{k: k2, b2: d}, nil
	case []tensor.Float16Bits:
		return raw{k: k2, b2: reinterpret[uint16](d)}, nil
	case []tensor.BFloat16Bits:
		return raw{k: k2, b2: reinterpret[uint16](d)}, nil
	case []int8:
		return raw{k: k1, b1: reinterpret[uint8](d)}, nil
	case []uint8:
		return raw{k: k1, b1: d}, nil
	case []bool:
		return raw{k: k1, b1: reinterpret[uint8](d)}, nil
	case []string:
		return raw{k: kStr, s: d}, nil
	}
	return raw{}, fmt.Errorf("unsupported tensor data %T (dtype %v)", t.Data, t.DType)
}

// alloc takes a tensor of dtype dt and shape from ar, and returns its raw
// view. The contents are undefined: every caller writes every element.
func alloc(ar *ops.Arena, dt tensor.DType, shape []int) (*tensor.Tensor, raw, error) {
	return withRaw(ar.Empty(dt, shape))
}

// allocZero is alloc with zeroed contents.
func allocZero(ar *ops.Arena, dt tensor.DType, shape []int) (*tensor.Tensor, raw, error) {
	return withRaw(ar.New(dt, shape))
}

func withRaw(t *tensor.Tensor, err error) (*tensor.Tensor, raw, error) {
	if err != nil {
		return nil, raw{}, err
	}
	r, err := rawOf(t)
	if err != nil {
		return nil, raw{}, err
	}
	return t, r, nil
}

// inputRaw checks input i is present and returns its raw view.
func inputRaw(in []*tensor.Tensor, i int) (raw, error) {
	r, err := rawOf(in[i])
	if err != nil {
		return raw{}, ops.BadInput(i, "%v", err)
	}
	return r, nil
}

// copyRaw copies n elements src[so:] → dst[do:].
func copyRaw(dst, src raw, do, so, n int) {
	switch src.k {
	case k1:
		copy(dst.b1[do:do+n], src.b1[so:so+n])
	case k2:
		copy(dst.b2[do:do+n], src.b2[so:so+n])
	case k4:
		copy(dst.b4[do:do+n], src.b4[so:so+n])
	case k8:
		copy(dst.b8[do:do+n], src.b8[so:so+n])
	case kStr:
		copy(dst.s[do:do+n], src.s[so:so+n])
	}
}

// prod multiplies dims.
func prod(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// intsInput reads an optional integer tensor input as int64s. ok is false
// when the input is absent. An int64 input's own data is returned (callers
// only read it); int32 data is widened into a tensor from ar.
func intsInput(ar *ops.Arena, in []*tensor.Tensor, i int, what string) (v []int64, ok bool, err error) {
	if i >= len(in) || in[i] == nil {
		return nil, false, nil
	}
	t := in[i]
	if t.DType != tensor.Int64 && t.DType != tensor.Int32 {
		return nil, true, ops.BadInput(i, "%s must be int32 or int64, got %v", what, t)
	}
	if t.Rank() > 1 {
		return nil, true, ops.BadInput(i, "%s must be a 1-D tensor, got %v", what, t)
	}
	if err := t.Validate(); err != nil {
		return nil, true, ops.BadInput(i, "%s: %v", what, err)
	}
	switch d := t.Data.(type) {
	case []int64:
		return d, true, nil
	case []int32:
		w, err := ar.Empty(tensor.Int64, t.Shape)
		if err != nil {
			return nil, true, ops.BadInput(i, "%s: %v", what, err)
		}
		v = w.Data.([]int64)
		for k, x := range d {
			v[k] = int64(x)
		}
		return v, true, nil
	}
	return nil, true, ops.BadInput(i, "%s: %v tensor holds %T", what, t.DType, t.Data)
}

// scalarInt reads a one-element integer input.
func scalarInt(in []*tensor.Tensor, i int, what string) (v int64, ok bool, err error) {
	if i >= len(in) || in[i] == nil {
		return 0, false, nil
	}
	t := in[i]
	if t.DType != tensor.Int64 && t.DType != tensor.Int32 {
		return 0, true, ops.BadInput(i, "%s must be int32 or int64, got %v", what, t)
	}
	if t.Len() != 1 || tensor.DataLen(t.Data) != 1 {
		return 0, true, ops.BadInput(i, "%s must have one element, got %v", what, t)
	}
	switch d := t.Data.(type) {
	case []int64:
		return d[0], true, nil
	case []int32:
		return int64(d[0]), true, nil
	}
	return 0, true, ops.BadInput(i, "%s: %v tensor holds %T", what, t.DType, t.Data)
}

// normAxes normalizes axes against rank into scratch from ar, rejecting
// out-of-range values and duplicates.
func normAxes(ar *ops.Arena, axes []int64, rank int) ([]int, error) {
	out := ar.Ints(len(axes))
	seen := ar.Ints(rank)
	for i, a := range axes {
		if a < -int64(rank) || a >= int64(rank) {
			return nil, fmt.Errorf("axis %d out of range for rank %d", a, rank)
		}
		if a < 0 {
			a += int64(rank)
		}
		if seen[a] != 0 {
			return nil, fmt.Errorf("axis %d repeated in %v", axes[i], axes)
		}
		seen[a] = 1
		out[i] = int(a)
	}
	return out, nil
}

// strides writes the row-major strides of shape into scratch from ar.
func strides(ar *ops.Arena, shape []int) []int {
	st := ar.Ints(len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = s
		s *= shape[i]
	}
	return st
}

// normAxis normalizes one axis attribute against rank.
func normAxis(axis int64, rank int) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

// one wraps a single-output result in the arena's result list.
func one(ar *ops.Arena, t *tensor.Tensor) ([]*tensor.Tensor, error) { return ar.Outputs(t), nil }

// kernel adapts a function of (arena, inputs) to ops.ArenaOp, for ops
// without attributes: built once, calling it allocates nothing.
type kernel func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error)

// Run is RunWith(nil, in).
func (k kernel) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return k(nil, in) }

// RunWith runs the kernel with outputs and scratch from ar.
func (k kernel) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return k(ar, in)
}
