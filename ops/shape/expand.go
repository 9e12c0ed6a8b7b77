package shape

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Define(ops.Desc{Type: "Expand", Since: 8, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: func(*ops.Config) (ops.Op, error) { return kernel(runExpand), nil }})
	ops.Define(ops.Desc{Type: "Tile", Since: 1, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: func(*ops.Config) (ops.Op, error) { return kernel(runTile), nil }})
}

func runExpand(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x := in[0]
	spec, _, err := intsInput(ar, in, 1, "shape")
	if err != nil {
		return nil, err
	}
	want := ar.Ints(len(spec))
	for i, d := range spec {
		if d < 0 || d > tensor.MaxElements {
			return nil, ops.BadInput(1, "Expand shape %v has invalid dim %d", spec, d)
		}
		want[i] = int(d)
	}
	shape, ok := broadcastShape(ar, x.Shape, want)
	if !ok {
		_, err := tensor.BroadcastShapes(x.Shape, want)
		return nil, ops.BadInput(1, "Expand of %v to %v: %v", x, spec, err)
	}
	if err := x.Validate(); err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	out, dst, err := alloc(ar, x.DType, shape)
	if err != nil {
		return nil, err
	}
	r := len(shape)
	off := r - x.Rank()
	st := strides(ar, x.Shape)
	maps := newAxisMaps(ar, shape)
	for a := 0; a < r; a++ {
		m := maps.axis(a)
		if a >= off && x.Shape[a-off] != 1 {
			for o := range m {
				m[o] = o * st[a-off]
			}
		}
	}
	mappedCopy(ar, dst, src, shape, maps, raw{})
	return one(ar, out)
}

func runTile(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x := in[0]
	reps, _, err := intsInput(ar, in, 1, "repeats")
	if err != nil {
		return nil, err
	}
	r := x.Rank()
	if len(reps) != r {
		return nil, ops.BadInput(1, "Tile repeats %v has %d values but input %v has rank %d", reps, len(reps), x, r)
	}
	if err := x.Validate(); err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	shape := ar.Ints(r)
	for a, n := range reps {
		if n < 0 || n > tensor.MaxElements {
			return nil, ops.BadInput(1, "Tile repeat %d invalid in %v", n, reps)
		}
		shape[a] = x.Shape[a] * int(n)
	}
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	out, dst, err := alloc(ar, x.DType, shape)
	if err != nil {
		return nil, err
	}
	st := strides(ar, x.Shape)
	maps := newAxisMaps(ar, shape)
	for a := 0; a < r; a++ {
		m := maps.axis(a)
		for o := range m {
			m[o] = (o % x.Shape[a]) * st[a]
		}
	}
	mappedCopy(ar, dst, src, shape, maps, raw{})
	return one(ar, out)
}

// broadcastShape writes the NumPy broadcast of as and bs into scratch from
// ar; ok is false when they are incompatible.
func broadcastShape(ar *ops.Arena, as, bs []int) (out []int, ok bool) {
	return tensor.BroadcastPairInto(ar.Ints(max(len(as), len(bs))), as, bs)
}
