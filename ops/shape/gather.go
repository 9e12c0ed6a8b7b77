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

func (g *gatherOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	data, idx := in[0], in[1]
	axis, err := normAxis(g.axis, data.Rank())
	if err != nil || data.Rank() == 0 {
		return nil, ops.BadInput(0, "Gather axis %d invalid for data %v", g.axis, data)
	}
	shape := make([]int, 0, data.Rank()+idx.Rank()-1)
	shape = append(shape, data.Shape[:axis]...)
	shape = append(shape, idx.Shape...)
	shape = append(shape, data.Shape[axis+1:]...)
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	out, dst, err := alloc(data.DType, shape)
	if err != nil {
		return nil, err
	}
	outer, k, inner := prod(data.Shape[:axis]), data.Shape[axis], prod(data.Shape[axis+1:])
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
	return one(out)
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

func (g *gatherElementsOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
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
	iv, err := tensor.AsInt64(idx)
	if err != nil || (idx.DType != tensor.Int64 && idx.DType != tensor.Int32) {
		return nil, ops.BadInput(1, "GatherElements indices must be int32 or int64, got %v", idx)
	}
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	out, dst, err := alloc(data.DType, idx.Shape)
	if err != nil {
		return nil, err
	}
	if len(iv) == 0 {
		return one(out)
	}
	// offs[p] = source offset of output element p without the axis term.
	st := tensor.Strides(data.Shape)
	k := data.Shape[axis]
	src1 := make([]int, len(iv))
	counter := make([]int, r)
	base := 0
	for p, v := range iv {
		if v < -int64(k) || v >= int64(k) {
			return nil, ops.BadInput(1, "GatherElements index %d (at flat position %d) out of range [%d, %d) for axis %d", v, p, -k, k, axis)
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
			if counter[d] < idx.Shape[d] {
				break
			}
			if d != axis {
				base -= st[d] * counter[d]
			}
			counter[d] = 0
		}
	}
	takeAny(dst, src, src1)
	return one(out)
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
