package shape

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Register("", "Gather", 1, newGather)
	ops.Register("", "GatherElements", 11, newGatherElements)
}

type index interface{ int32 | int64 }

// gatherOp implements Gather: out = data.take(indices, axis).
type gatherOp struct{ axis int64 }

func newGather(c *ops.Config) (ops.Op, error) {
	return &gatherOp{axis: c.Attrs.Int("axis", 0)}, nil
}

// Run is RunWith(nil, in).
func (g *gatherOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return g.RunWith(nil, in) }

// RunWith gathers into a tensor from ar.
func (g *gatherOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	data, idx := in[0], in[1]
	axis, err := normAxis(g.axis, data.Rank())
	if err != nil || data.Rank() == 0 {
		return nil, ops.BadInput(0, "Gather axis %d invalid for data %v", g.axis, data)
	}
	shape := ar.Ints(data.Rank() + idx.Rank() - 1)[:0]
	shape = append(shape, data.Shape[:axis]...)
	shape = append(shape, idx.Shape...)
	shape = append(shape, data.Shape[axis+1:]...)
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	if err := lenMatches(in); err != nil {
		return nil, err
	}
	outer, k, inner := prod(data.Shape[:axis]), data.Shape[axis], prod(data.Shape[axis+1:])
	if outer == 1 && k == 1 && idx.Len() == 1 {
		// the only slab of a size-1 axis (Y_h[0] of a one-direction
		// recurrence): the result is all of data, a view
		if i, ok := firstIndex(idx); ok && (i == 0 || i == -1) {
			return viewOf(ar, data, shape)
		}
	}
	out, dst, err := alloc(ar, data.DType, shape)
	if err != nil {
		return nil, err
	}
	switch ix := idx.Data.(type) {
	case []int64:
		err = gatherAny(dst, src, ix, outer, k, inner, axis)
	case []int32:
		err = gatherAny(dst, src, ix, outer, k, inner, axis)
	default:
		return nil, ops.BadInput(1, "Gather indices must be int32 or int64, got %v", idx)
	}
	if err != nil {
		return nil, ops.BadInput(1, "%v", err)
	}
	return one(ar, out)
}

// firstIndex returns an index tensor's first value.
func firstIndex(idx *tensor.Tensor) (int64, bool) {
	switch ix := idx.Data.(type) {
	case []int64:
		if len(ix) > 0 {
			return ix[0], true
		}
	case []int32:
		if len(ix) > 0 {
			return int64(ix[0]), true
		}
	}
	return 0, false
}

func gatherAny[I index](dst, src raw, idx []I, outer, k, inner, axis int) error {
	switch src.k {
	case k1:
		return gatherT(dst.b1, src.b1, idx, outer, k, inner, axis)
	case k2:
		return gatherT(dst.b2, src.b2, idx, outer, k, inner, axis)
	case k4:
		return gatherT(dst.b4, src.b4, idx, outer, k, inner, axis)
	case k8:
		return gatherT(dst.b8, src.b8, idx, outer, k, inner, axis)
	default:
		return gatherT(dst.s, src.s, idx, outer, k, inner, axis)
	}
}

func gatherT[T word, I index](dst, src []T, idx []I, outer, k, inner, axis int) error {
	n := len(idx)
	for j, v := range idx {
		if int64(v) < -int64(k) || int64(v) >= int64(k) {
			return fmt.Errorf("index %d (at position %d) out of range [%d, %d) for axis %d", v, j, -k, k, axis)
		}
	}
	if inner == 0 {
		return nil
	}
	for o := 0; o < outer; o++ {
		s := src[o*k*inner : (o+1)*k*inner]
		d := dst[o*n*inner : (o+1)*n*inner]
		if inner == 1 {
			for j, v := range idx {
				r := int(v)
				if r < 0 {
					r += k
				}
				d[j] = s[r]
			}
			continue
		}
		for j, v := range idx {
			r := int(v)
			if r < 0 {
				r += k
			}
			copy(d[j*inner:(j+1)*inner], s[r*inner:(r+1)*inner])
		}
	}
	return nil
}

// gatherElementsOp implements GatherElements.
type gatherElementsOp struct{ axis int64 }

func newGatherElements(c *ops.Config) (ops.Op, error) {
	return &gatherElementsOp{axis: c.Attrs.Int("axis", 0)}, nil
}

// Run is RunWith(nil, in).
func (g *gatherElementsOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return g.RunWith(nil, in)
}

// RunWith gathers into a tensor from ar.
func (g *gatherElementsOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	data, idx := in[0], in[1]
	r := data.Rank()
	if r == 0 {
		return nil, ops.BadInput(0, "GatherElements needs rank >= 1 data, got %v", data)
	}
	if idx.Rank() != r {
		return nil, ops.BadInput(1, "GatherElements indices %v must have the rank of data %v", idx, data)
	}
	axis, err := normAxis(g.axis, r)
	if err != nil {
		return nil, ops.BadInput(0, "GatherElements: %v", err)
	}
	for d := 0; d < r; d++ {
		if d != axis && idx.Shape[d] > data.Shape[d] {
			return nil, ops.BadInput(1, "GatherElements indices %v exceed data %v on axis %d", idx, data, d)
		}
	}
	if idx.DType != tensor.Int64 && idx.DType != tensor.Int32 {
		return nil, ops.BadInput(1, "GatherElements indices must be int32 or int64, got %v", idx)
	}
	if err := lenMatches(in); err != nil {
		return nil, err
	}
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	out, dst, err := alloc(ar, data.DType, idx.Shape)
	if err != nil {
		return nil, err
	}
	n := idx.Len()
	if n == 0 {
		return one(ar, out)
	}
	var src1 []int
	switch iv := idx.Data.(type) {
	case []int64:
		src1, err = elementOffsets(ar, iv, idx.Shape, data.Shape, axis)
	case []int32:
		src1, err = elementOffsets(ar, iv, idx.Shape, data.Shape, axis)
	}
	if err != nil {
		return nil, ops.BadInput(1, "GatherElements %v", err)
	}
	takeAny(dst, src, src1)
	return one(ar, out)
}

// lenMatches checks every present input's data against its shape, so the
// typed loops can index freely.
func lenMatches(in []*tensor.Tensor) error {
	for i, t := range in {
		if t == nil {
			continue
		}
		if err := t.Validate(); err != nil {
			return ops.BadInput(i, "%v", err)
		}
	}
	return nil
}

// elementOffsets returns (in scratch from ar) the source offset of every
// output element of GatherElements.
func elementOffsets[I index](ar *ops.Arena, iv []I, ishape, dshape []int, axis int) ([]int, error) {
	r := len(dshape)
	st := strides(ar, dshape)
	k := dshape[axis]
	src1 := ar.Ints(len(iv))
	counter := ar.Ints(r)
	base := 0
	for p, vi := range iv {
		v := int64(vi)
		if v < -int64(k) || v >= int64(k) {
			return nil, fmt.Errorf("index %d (at flat position %d) out of range [%d, %d) for axis %d", v, p, -k, k, axis)
		}
		if v < 0 {
			v += int64(k)
		}
		src1[p] = base + int(v)*st[axis]
		for d := r - 1; d >= 0; d-- {
			counter[d]++
			if d != axis {
				base += st[d]
			}
			if counter[d] < ishape[d] {
				break
			}
			if d != axis {
				base -= st[d] * counter[d]
			}
			counter[d] = 0
		}
	}
	return src1, nil
}

// takeAny sets dst[i] = src[idx[i]].
func takeAny(dst, src raw, idx []int) {
	switch src.k {
	case k1:
		takeT(dst.b1, src.b1, idx)
	case k2:
		takeT(dst.b2, src.b2, idx)
	case k4:
		takeT(dst.b4, src.b4, idx)
	case k8:
		takeT(dst.b8, src.b8, idx)
	default:
		takeT(dst.s, src.s, idx)
	}
}

func takeT[T word](dst, src []T, idx []int) {
	for i, j := range idx {
		dst[i] = src[j]
	}
}
