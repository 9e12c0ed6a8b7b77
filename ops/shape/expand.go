package shape

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Register("", "Expand", 8, func(*ops.Config) (ops.Op, error) { return ops.OpFunc(runExpand), nil })
	ops.Register("", "Tile", 1, func(*ops.Config) (ops.Op, error) { return ops.OpFunc(runTile), nil })
}

func runExpand(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x := in[0]
	spec, _, err := intsInput(in, 1, "shape")
	if err != nil {
		return nil, err
	}
	want := make([]int, len(spec))
	for i, d := range spec {
		if d < 0 || d > tensor.MaxElements {
			return nil, ops.BadInput(1, "Expand shape %v has invalid dim %d", spec, d)
		}
		want[i] = int(d)
	}
	shape, err := tensor.BroadcastShapes(x.Shape, want)
	if err != nil {
		return nil, ops.BadInput(1, "Expand of %v to %v: %v", x, spec, err)
	}
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	out, dst, err := alloc(x.DType, shape)
	if err != nil {
		return nil, err
	}
	r := len(shape)
	off := r - x.Rank()
	st := tensor.Strides(x.Shape)
	maps := make([][]int, r)
	for a := range maps {
		m := make([]int, shape[a])
		if a >= off && x.Shape[a-off] != 1 {
			for o := range m {
				m[o] = o * st[a-off]
			}
		}
		maps[a] = m
	}
	mappedCopy(dst, src, shape, maps, raw{})
	return one(out)
}

func runTile(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x := in[0]
	reps, _, err := intsInput(in, 1, "repeats")
	if err != nil {
		return nil, err
	}
	r := x.Rank()
	if len(reps) != r {
		return nil, ops.BadInput(1, "Tile repeats %v has %d values but input %v has rank %d", reps, len(reps), x, r)
	}
	shape := make([]int, r)
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
	out, dst, err := alloc(x.DType, shape)
	if err != nil {
		return nil, err
	}
	st := tensor.Strides(x.Shape)
	maps := make([][]int, r)
	for a := range maps {
		m := make([]int, shape[a])
		for o := range m {
			m[o] = (o % x.Shape[a]) * st[a]
		}
		maps[a] = m
	}
	mappedCopy(dst, src, shape, maps, raw{})
	return one(out)
}
