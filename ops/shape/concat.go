package shape

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Define(ops.Desc{Type: "Concat", Since: 1, Grad: ops.Movement(), Traits: ops.DataMovement, Kernel: newConcat})
	ops.Define(ops.Desc{Type: "Split", Since: 1, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: newSplit})
}

// concatOp implements Concat.
type concatOp struct{ axis int64 }

func newConcat(c *ops.Config) (ops.Op, error) {
	if c.Opset >= 4 && !c.Attrs.Has("axis") {
		return nil, ops.BadAttr("axis", "required from opset 4")
	}
	return &concatOp{axis: c.Attrs.Int("axis", 1)}, nil
}

// Run is RunWith(nil, in).
func (c *concatOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return c.RunWith(nil, in) }

// RunWith joins the inputs into a tensor from ar.
func (c *concatOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("Concat needs at least one input")
	}
	// Skip 1-D empty inputs whose rank differs from the rest: exporters
	// sometimes concatenate a shape with an empty list.
	var first *tensor.Tensor
	for i, t := range in {
		if t == nil {
			return nil, ops.BadInput(i, "Concat input is missing")
		}
		if first == nil || (first.Rank() == 1 && first.Len() == 0 && t.Rank() != 1) {
			first = t
		}
	}
	r := first.Rank()
	if r == 0 {
		return nil, ops.BadInput(0, "Concat cannot join scalars (input %v)", first)
	}
	axis, err := normAxis(c.axis, r)
	if err != nil {
		return nil, ops.BadInput(0, "Concat: %v", err)
	}
	shape := ar.Ints(r)
	copy(shape, first.Shape)
	shape[axis] = 0
	used, last := 0, 0
	for i, t := range in {
		if t.DType != first.DType {
			return nil, ops.BadInput(i, "Concat input dtype %v differs from %v", t.DType, first.DType)
		}
		if skipped(t, r) {
			continue
		}
		if t.Rank() != r {
			return nil, ops.BadInput(i, "Concat input %v has rank %d, want %d (like %v)", t, t.Rank(), r, first)
		}
		for d := 0; d < r; d++ {
			if d != axis && t.Shape[d] != first.Shape[d] {
				return nil, ops.BadInput(i, "Concat input %v differs from %v on axis %d (concat axis %d)", t, first, d, axis)
			}
		}
		if err := t.Validate(); err != nil {
			return nil, ops.BadInput(i, "%v", err)
		}
		shape[axis] += t.Shape[axis]
		used, last = used+1, i
	}
	out, dst, err := alloc(ar, first.DType, shape)
	if err != nil {
		return nil, err
	}
	if used == 1 { // a copy of the one input
		src, err := rawOf(in[last])
		if err != nil {
			return nil, ops.BadInput(last, "%v", err)
		}
		copyRaw(dst, src, 0, 0, rawLen(src))
		return one(ar, out)
	}
	outer, inner := prod(shape[:axis]), prod(shape[axis+1:])
	rowOut := shape[axis] * inner
	off := 0
	for i, t := range in {
		if skipped(t, r) {
			continue
		}
		src, err := rawOf(t)
		if err != nil {
			return nil, ops.BadInput(i, "%v", err)
		}
		blk := t.Shape[axis] * inner
		if blk > 0 {
			copyStrided(dst, src, off, rowOut, 0, blk, blk, outer)
		}
		off += blk
	}
	return one(ar, out)
}

// skipped reports a 1-D empty input beside inputs of another rank r.
func skipped(t *tensor.Tensor, r int) bool { return t.Rank() != r && t.Rank() == 1 && t.Len() == 0 }

// copyStrided copies count blocks of n elements: block o goes from
// src[so+o*sStride:] to dst[do+o*dStride:].
func copyStrided(dst, src raw, do, dStride, so, sStride, n, count int) {
	switch src.k {
	case k1:
		copyStridedT(dst.b1, src.b1, do, dStride, so, sStride, n, count)
	case k2:
		copyStridedT(dst.b2, src.b2, do, dStride, so, sStride, n, count)
	case k4:
		copyStridedT(dst.b4, src.b4, do, dStride, so, sStride, n, count)
	case k8:
		copyStridedT(dst.b8, src.b8, do, dStride, so, sStride, n, count)
	default:
		copyStridedT(dst.s, src.s, do, dStride, so, sStride, n, count)
	}
}

func copyStridedT[T word](dst, src []T, do, dStride, so, sStride, n, count int) {
	if n == 1 {
		for o := 0; o < count; o++ {
			dst[do+o*dStride] = src[so+o*sStride]
		}
		return
	}
	for o := 0; o < count; o++ {
		d, s := do+o*dStride, so+o*sStride
		copy(dst[d:d+n], src[s:s+n])
	}
}

// splitOp implements Split for every opset.
type splitOp struct {
	opset      int
	axis       int64
	split      []int64 // from the attribute
	numOutputs int64   // opset 18 attribute; 0 when absent
	nOut       int
}

func newSplit(c *ops.Config) (ops.Op, error) {
	s := &splitOp{opset: c.Opset, axis: c.Attrs.Int("axis", 0), nOut: c.NumOutputs}
	if c.Attrs.Has("split") {
		s.split = c.Attrs.Ints("split")
		if s.split == nil {
			s.split = []int64{}
		}
	}
	if c.Attrs.Has("num_outputs") {
		s.numOutputs = c.Attrs.Int("num_outputs", 0)
		if s.numOutputs < 1 {
			return nil, ops.BadAttr("num_outputs", "must be >= 1, got %d", s.numOutputs)
		}
		if c.NumOutputs > 0 && int64(c.NumOutputs) != s.numOutputs {
			return nil, ops.BadAttr("num_outputs", "is %d but the node has %d outputs", s.numOutputs, c.NumOutputs)
		}
	}
	for _, v := range s.split {
		if v < 0 {
			return nil, ops.BadAttr("split", "negative size %d in %v", v, s.split)
		}
	}
	return s, nil
}

// Run is RunWith(nil, in).
func (s *splitOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return s.RunWith(nil, in) }

// RunWith splits into tensors from ar.
func (s *splitOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	axis, err := normAxis(s.axis, x.Rank())
	if err != nil || x.Rank() == 0 {
		return nil, ops.BadInput(0, "Split axis %d invalid for %v", s.axis, x)
	}
	dim := x.Shape[axis]
	if err := x.Validate(); err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	sizes, _, err := intsInput(ar, in, 1, "split")
	if err != nil {
		return nil, err
	}
	if len(sizes) == 0 {
		sizes = s.split
	}
	var parts []int
	switch {
	case len(sizes) > 0:
		sum := int64(0)
		parts = ar.Ints(len(sizes))
		for i, v := range sizes {
			if v < 0 {
				return nil, ops.BadInput(1, "Split size %d is negative in %v", v, sizes)
			}
			sum += v
			parts[i] = int(v)
		}
		if sum != int64(dim) {
			return nil, ops.BadInput(1, "Split sizes %v sum to %d, but axis %d of %v has %d", sizes, sum, axis, x, dim)
		}
		if s.nOut > 0 && len(parts) != s.nOut {
			return nil, ops.BadInput(1, "Split sizes %v give %d parts but the node has %d outputs", sizes, len(parts), s.nOut)
		}
	default:
		n := s.nOut
		if s.numOutputs > 0 {
			n = int(s.numOutputs)
		}
		if n <= 0 {
			return nil, fmt.Errorf("Split has no outputs")
		}
		chunk := (dim + n - 1) / n
		if s.numOutputs == 0 && dim%n != 0 {
			return nil, ops.BadInput(0, "Split: axis %d of %v (size %d) does not divide into %d equal parts", axis, x, dim, n)
		}
		if chunk*(n-1) > dim {
			return nil, ops.BadInput(0, "Split: axis %d of %v (size %d) cannot be split into %d outputs", axis, x, dim, n)
		}
		parts = ar.Ints(n)
		for i := range parts {
			c := chunk
			if i == n-1 {
				c = dim - chunk*(n-1)
			}
			parts[i] = c
		}
	}
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	outer, inner := prod(x.Shape[:axis]), prod(x.Shape[axis+1:])
	rowIn := dim * inner
	res := outputList(ar, len(parts))
	shape := ar.Ints(x.Rank())
	copy(shape, x.Shape)
	off := 0
	for i, p := range parts {
		shape[axis] = p
		t, dst, err := alloc(ar, x.DType, shape)
		if err != nil {
			return nil, err
		}
		blk := p * inner
		if blk > 0 && outer > 0 {
			copyStrided(dst, src, 0, blk, off, rowIn, blk, outer)
		}
		off += blk
		res[i] = t
	}
	return res, nil
}

// noTensors is a read-only row of nils from which outputList takes an
// arena result list of any length up to its size without allocating.
var noTensors [256]*tensor.Tensor

// outputList returns a result list of n nil entries for the kernel to fill:
// the arena's list (Outputs copies its arguments) up to 256 outputs.
func outputList(ar *ops.Arena, n int) []*tensor.Tensor {
	if n > len(noTensors) {
		return make([]*tensor.Tensor, n)
	}
	return ar.Outputs(noTensors[:n]...)
}
