package shape

import (
	"fmt"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// The index-addressed kernels (ScatterND, ScatterElements and its
// predecessor Scatter, GatherND) turn their index tensors into flat element
// offsets and move elements with package elems, whatever the dtype.

func init() {
	// the scatters' gradient (reductions none and add): train/autodiff/rules_select.go
	ops.Define(ops.Desc{Type: "ScatterND", Since: 11, Grad: ops.GradRule{}, Kernel: newScatterND})
	ops.Define(ops.Desc{Type: "ScatterElements", Since: 11, Grad: ops.GradRule{}, Kernel: newScatterElements})
	ops.Define(ops.Desc{Type: "Scatter", Since: 9, Grad: ops.GradRule{}, Kernel: newScatterElements}) // deprecated in opset 11; ScatterElements without reduction
	ops.Define(ops.Desc{Type: "GatherND", Since: 11, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: newGatherND})
}

// indexList reads an int32/int64 index input.
func indexList(in []*tensor.Tensor, i int, op string) ([]int64, error) {
	t := in[i]
	if t.DType != tensor.Int64 && t.DType != tensor.Int32 {
		return nil, ops.BadInput(i, "%s indices must be int32 or int64, got %v", op, t)
	}
	v, err := tensor.AsInt64(t)
	if err != nil {
		return nil, ops.BadInput(i, "%s: %v", op, err)
	}
	return v, nil
}

// wrapIndex checks v against [-n, n) and makes it non-negative.
func wrapIndex(v int64, n int) (int, error) {
	if v < -int64(n) || v >= int64(n) {
		return 0, fmt.Errorf("index %d out of range [%d, %d)", v, -n, n)
	}
	if v < 0 {
		v += int64(n)
	}
	return int(v), nil
}

func reduction(c *ops.Config) (elems.Reduction, error) {
	r, err := elems.ParseReduction(c.Attrs.String("reduction", "none"))
	if err != nil {
		return r, ops.BadAttr("reduction", "%v", err)
	}
	return r, nil
}

// ---- ScatterND ----

func newScatterND(c *ops.Config) (ops.Op, error) {
	r, err := reduction(c)
	if err != nil {
		return nil, err
	}
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 3); err != nil {
			return nil, err
		}
		dst, err := scatterNDTargets(in)
		if err != nil {
			return nil, err
		}
		data, upd := in[0], in[2]
		out := data.Clone()
		if err := elems.Combine(r, out, dst, upd, nil); err != nil {
			return nil, ops.BadInput(0, "ScatterND: %v", err)
		}
		return []*tensor.Tensor{out}, nil
	}), nil
}

// ---- ScatterElements / Scatter ----

func newScatterElements(c *ops.Config) (ops.Op, error) {
	r, err := reduction(c)
	if err != nil {
		return nil, err
	}
	axisAttr := c.Attrs.Int("axis", 0)
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 3); err != nil {
			return nil, err
		}
		dst, err := scatterElementsTargets(in, axisAttr)
		if err != nil {
			return nil, err
		}
		data, upd := in[0], in[2]
		out := data.Clone()
		if err := elems.Combine(r, out, dst, upd, nil); err != nil {
			return nil, ops.BadInput(0, "ScatterElements: %v", err)
		}
		return []*tensor.Tensor{out}, nil
	}), nil
}

// ScatterTargets returns, for every element of the updates (in[2]) of a
// ScatterND, ScatterElements or Scatter node, the flat offset in the data
// (in[0]) it is combined into, in the order the kernel combines them
// (training differentiates the reductions through it).
func ScatterTargets(opType string, axis int64, in []*tensor.Tensor) ([]int, error) {
	if err := ops.NeedInputs(in, 3); err != nil {
		return nil, err
	}
	if opType == "ScatterND" {
		return scatterNDTargets(in)
	}
	return scatterElementsTargets(in, axis)
}

// scatterNDTargets checks a ScatterND node's inputs and returns the data
// offset every update element goes to.
func scatterNDTargets(in []*tensor.Tensor) ([]int, error) {
	data, idxT, upd := in[0], in[1], in[2]
	idx, err := indexList(in, 1, "ScatterND")
	if err != nil {
		return nil, err
	}
	if idxT.Rank() == 0 {
		return nil, ops.BadInput(1, "ScatterND indices must have rank >= 1, got %v", idxT)
	}
	k := idxT.Shape[idxT.Rank()-1]
	if k > data.Rank() {
		return nil, ops.BadInput(1, "ScatterND index tuples of length %d exceed data rank %d", k, data.Rank())
	}
	if upd.DType != data.DType {
		return nil, ops.BadInput(2, "ScatterND updates %v must have data's dtype %v", upd, data.DType)
	}
	want := append(append([]int{}, idxT.Shape[:idxT.Rank()-1]...), data.Shape[k:]...)
	if !tensor.SameShape(want, upd.Shape) {
		return nil, ops.BadInput(2, "ScatterND updates %v, want shape %v", upd, want)
	}
	st := tensor.Strides(data.Shape)
	slice := elems.Prod(data.Shape[k:])
	n := elems.Prod(idxT.Shape[:idxT.Rank()-1])
	dst := make([]int, 0, n*slice)
	for t := 0; t < n; t++ {
		base := 0
		for j := 0; j < k; j++ {
			p, err := wrapIndex(idx[t*k+j], data.Shape[j])
			if err != nil {
				return nil, ops.BadInput(1, "ScatterND axis %d: %v", j, err)
			}
			base += p * st[j]
		}
		for e := 0; e < slice; e++ {
			dst = append(dst, base+e)
		}
	}
	return dst, nil
}

// scatterElementsTargets checks a ScatterElements (or Scatter) node's
// inputs and returns the data offset every update element goes to.
func scatterElementsTargets(in []*tensor.Tensor, axisAttr int64) ([]int, error) {
	data, idxT, upd := in[0], in[1], in[2]
	rank := data.Rank()
	axis, err := normAxis(axisAttr, rank)
	if err != nil || rank == 0 {
		return nil, ops.BadInput(0, "ScatterElements axis %d invalid for %v", axisAttr, data)
	}
	if idxT.Rank() != rank || !tensor.SameShape(idxT.Shape, upd.Shape) {
		return nil, ops.BadInput(1, "ScatterElements indices %v and updates %v must share a shape of data's rank %d", idxT, upd, rank)
	}
	if upd.DType != data.DType {
		return nil, ops.BadInput(2, "ScatterElements updates %v must have data's dtype %v", upd, data.DType)
	}
	for d := 0; d < rank; d++ {
		if d != axis && idxT.Shape[d] > data.Shape[d] {
			return nil, ops.BadInput(1, "ScatterElements indices %v exceed data %v on axis %d", idxT, data, d)
		}
	}
	idx, err := indexList(in, 1, "ScatterElements")
	if err != nil {
		return nil, err
	}
	dst := make([]int, len(idx))
	dstSt := tensor.Strides(data.Shape)
	coord := make([]int, rank)
	for i, v := range idx {
		p, err := wrapIndex(v, data.Shape[axis])
		if err != nil {
			return nil, ops.BadInput(1, "ScatterElements: %v", err)
		}
		off := 0
		for d := 0; d < rank; d++ {
			c := coord[d]
			if d == axis {
				c = p
			}
			off += c * dstSt[d]
		}
		dst[i] = off
		for d := rank - 1; d >= 0; d-- { // next coordinate of indices
			if coord[d]++; coord[d] < idxT.Shape[d] {
				break
			}
			coord[d] = 0
		}
	}
	return dst, nil
}

// ---- GatherND ----

func newGatherND(c *ops.Config) (ops.Op, error) {
	b := int(c.Attrs.Int("batch_dims", 0))
	if b < 0 {
		return nil, ops.BadAttr("batch_dims", "must be >= 0, got %d", b)
	}
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		data, idxT := in[0], in[1]
		idx, err := indexList(in, 1, "GatherND")
		if err != nil {
			return nil, err
		}
		q := idxT.Rank()
		if q < 1 || b >= q || b >= data.Rank() {
			return nil, ops.BadInput(1, "GatherND indices %v invalid for data %v with batch_dims %d", idxT, data, b)
		}
		for d := 0; d < b; d++ {
			if idxT.Shape[d] != data.Shape[d] {
				return nil, ops.BadInput(1, "GatherND batch dim %d: indices %v vs data %v", d, idxT, data)
			}
		}
		k := idxT.Shape[q-1]
		if b+k > data.Rank() {
			return nil, ops.BadInput(1, "GatherND index tuples of length %d with %d batch dims exceed data rank %d", k, b, data.Rank())
		}
		shape := append(append([]int{}, idxT.Shape[:q-1]...), data.Shape[b+k:]...)
		st := tensor.Strides(data.Shape)
		slice := elems.Prod(data.Shape[b+k:])
		batches := elems.Prod(data.Shape[:b])
		perBatch := elems.Prod(idxT.Shape[b : q-1])
		batchStride := elems.Prod(data.Shape[b:])
		src := make([]int, 0, batches*perBatch*slice)
		for bi := 0; bi < batches; bi++ {
			for t := 0; t < perBatch; t++ {
				base := bi * batchStride
				tup := idx[(bi*perBatch+t)*k:]
				for j := 0; j < k; j++ {
					p, err := wrapIndex(tup[j], data.Shape[b+j])
					if err != nil {
						return nil, ops.BadInput(1, "GatherND axis %d: %v", b+j, err)
					}
					base += p * st[b+j]
				}
				for e := 0; e < slice; e++ {
					src = append(src, base+e)
				}
			}
		}
		out, err := elems.Take(data, shape, src)
		if err != nil {
			return nil, ops.BadInput(0, "GatherND: %v", err)
		}
		return []*tensor.Tensor{out}, nil
	}), nil
}
