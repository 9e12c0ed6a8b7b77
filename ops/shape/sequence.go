package shape

import (
	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// The sequence and optional ops. Values are boxed tensors (tensor.Sequence,
// tensor.Optional: Data is the []*tensor.Tensor of elements), so the runtime
// moves them like tensors; these kernels build and take them apart.

func init() {
	reg := func(name string, since int, f func(c *ops.Config) (ops.OpFunc, error)) {
		ops.Define(ops.Desc{Type: name, Since: since, Shape: ops.NoShapeRule("sequence and optional values: shapeinfer infers tensor types only"), Grad: ops.NotDifferentiable("sequence and optional values: the tape records tensors only"), Kernel: func(c *ops.Config) (ops.Op, error) { return f(c) }})
	}
	reg("SequenceEmpty", 11, func(*ops.Config) (ops.OpFunc, error) {
		return func([]*tensor.Tensor) ([]*tensor.Tensor, error) {
			return []*tensor.Tensor{tensor.NewSequence(nil)}, nil
		}, nil
	})
	reg("SequenceConstruct", 11, func(*ops.Config) (ops.OpFunc, error) {
		return func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			for i, t := range in {
				if t == nil || t.DType.IsBoxed() {
					return nil, ops.BadInput(i, "SequenceConstruct takes tensors, got %v", t)
				}
				if t.DType != in[0].DType {
					return nil, ops.BadInput(i, "SequenceConstruct elements must share a dtype: %v and %v", in[0].DType, t.DType)
				}
			}
			return []*tensor.Tensor{tensor.NewSequence(append([]*tensor.Tensor{}, in...))}, nil
		}, nil
	})
	reg("SequenceAt", 11, func(*ops.Config) (ops.OpFunc, error) {
		return func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			s, err := seqInput(in, 0)
			if err != nil {
				return nil, err
			}
			p, err := position(in, 1, len(s), false, 0)
			if err != nil {
				return nil, err
			}
			return []*tensor.Tensor{s[p]}, nil
		}, nil
	})
	reg("SequenceInsert", 11, func(*ops.Config) (ops.OpFunc, error) {
		return func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			s, err := seqInput(in, 0)
			if err != nil {
				return nil, err
			}
			if len(in) < 2 || in[1] == nil || in[1].DType.IsBoxed() {
				return nil, ops.BadInput(1, "SequenceInsert needs a tensor to insert")
			}
			if len(s) > 0 && s[0].DType != in[1].DType {
				return nil, ops.BadInput(1, "SequenceInsert of %v into a sequence of %v", in[1].DType, s[0].DType)
			}
			p, err := position(in, 2, len(s), true, len(s))
			if err != nil {
				return nil, err
			}
			out := append(append(append(make([]*tensor.Tensor, 0, len(s)+1), s[:p]...), in[1]), s[p:]...)
			return []*tensor.Tensor{tensor.NewSequence(out)}, nil
		}, nil
	})
	reg("SequenceErase", 11, func(*ops.Config) (ops.OpFunc, error) {
		return func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			s, err := seqInput(in, 0)
			if err != nil {
				return nil, err
			}
			p, err := position(in, 1, len(s), false, len(s)-1)
			if err != nil {
				return nil, err
			}
			out := append(append(make([]*tensor.Tensor, 0, len(s)), s[:p]...), s[p+1:]...)
			return []*tensor.Tensor{tensor.NewSequence(out)}, nil
		}, nil
	})
	reg("SequenceLength", 11, func(*ops.Config) (ops.OpFunc, error) {
		return func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			s, err := seqInput(in, 0)
			if err != nil {
				return nil, err
			}
			return []*tensor.Tensor{tensor.Scalar(int64(len(s)))}, nil
		}, nil
	})
	reg("SplitToSequence", 11, newSplitToSequence)
	reg("ConcatFromSequence", 11, newConcatFromSequence)
	reg("Optional", 15, func(*ops.Config) (ops.OpFunc, error) {
		return func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if len(in) == 0 || in[0] == nil {
				return []*tensor.Tensor{tensor.NewOptional(nil)}, nil
			}
			return []*tensor.Tensor{tensor.NewOptional(in[0])}, nil
		}, nil
	})
	reg("OptionalHasElement", 15, func(*ops.Config) (ops.OpFunc, error) {
		return func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			has := len(in) > 0 && in[0] != nil && (in[0].DType != tensor.Optional || len(in[0].Elements()) > 0)
			return []*tensor.Tensor{tensor.Scalar(has)}, nil
		}, nil
	})
	reg("OptionalGetElement", 15, func(*ops.Config) (ops.OpFunc, error) {
		return func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 1); err != nil {
				return nil, err
			}
			if in[0].DType != tensor.Optional {
				return []*tensor.Tensor{in[0]}, nil // a tensor or sequence is its own element (opset 18)
			}
			e := in[0].Elements()
			if len(e) == 0 {
				return nil, ops.BadInput(0, "OptionalGetElement of an empty optional")
			}
			return []*tensor.Tensor{e[0]}, nil
		}, nil
	})
}

func seqInput(in []*tensor.Tensor, i int) ([]*tensor.Tensor, error) {
	if i >= len(in) || in[i] == nil || in[i].DType != tensor.Sequence {
		var t *tensor.Tensor
		if i < len(in) {
			t = in[i]
		}
		return nil, ops.BadInput(i, "needs a sequence, got %v", t)
	}
	return in[i].Elements(), nil
}

// position reads an optional position input against a sequence of n
// elements: negative counts from the end; insert allows n itself.
func position(in []*tensor.Tensor, i, n int, insert bool, def int) (int, error) {
	p, ok, err := scalarInt(in, i, "position")
	if err != nil {
		return 0, err
	}
	if !ok {
		if def < 0 {
			return 0, ops.BadInput(i, "position needed: the sequence is empty")
		}
		return def, nil
	}
	hi := int64(n)
	if insert {
		hi++
	}
	if p < -int64(n) || p >= hi {
		return 0, ops.BadInput(i, "position %d out of range for a sequence of %d", p, n)
	}
	if p < 0 {
		p += int64(n)
	}
	return int(p), nil
}

func newSplitToSequence(c *ops.Config) (ops.OpFunc, error) {
	axisAttr := c.Attrs.Int("axis", 0)
	keep := c.Attrs.Int("keepdims", 1) != 0
	return func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		axis, err := normAxis(axisAttr, x.Rank())
		if err != nil {
			return nil, ops.BadInput(0, "SplitToSequence axis %d invalid for %v", axisAttr, x)
		}
		d := x.Shape[axis]
		var sizes []int
		squeeze := false
		switch {
		case len(in) < 2 || in[1] == nil:
			for i := 0; i < d; i++ {
				sizes = append(sizes, 1)
			}
			squeeze = !keep
		default:
			sv, err := tensor.AsInt64(in[1])
			if err != nil {
				return nil, ops.BadInput(1, "SplitToSequence split: %v", err)
			}
			if in[1].Rank() == 0 {
				if sv[0] < 1 {
					return nil, ops.BadInput(1, "SplitToSequence split %d must be positive", sv[0])
				}
				for left := d; left > 0; left -= int(sv[0]) {
					sizes = append(sizes, min(left, int(sv[0])))
				}
			} else {
				total := 0
				for _, v := range sv {
					if v < 0 {
						return nil, ops.BadInput(1, "SplitToSequence negative split %v", sv)
					}
					sizes = append(sizes, int(v))
					total += int(v)
				}
				if total != d {
					return nil, ops.BadInput(1, "SplitToSequence split %v does not sum to %d", sv, d)
				}
			}
		}
		outer, inner := elems.Prod(x.Shape[:axis]), elems.Prod(x.Shape[axis+1:])
		var out []*tensor.Tensor
		start := 0
		for _, sz := range sizes {
			shape := append([]int{}, x.Shape...)
			shape[axis] = sz
			idx := make([]int, 0, outer*sz*inner)
			for o := 0; o < outer; o++ {
				for j := start; j < start+sz; j++ {
					for i := 0; i < inner; i++ {
						idx = append(idx, (o*d+j)*inner+i)
					}
				}
			}
			if squeeze {
				shape = append(shape[:axis:axis], shape[axis+1:]...)
			}
			t, err := elems.Take(x, shape, idx)
			if err != nil {
				return nil, ops.BadInput(0, "SplitToSequence: %v", err)
			}
			out = append(out, t)
			start += sz
		}
		return []*tensor.Tensor{tensor.NewSequence(out)}, nil
	}, nil
}

func newConcatFromSequence(c *ops.Config) (ops.OpFunc, error) {
	axisAttr := c.Attrs.Int("axis", 0)
	newAxis := c.Attrs.Int("new_axis", 0) != 0
	return func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		s, err := seqInput(in, 0)
		if err != nil {
			return nil, err
		}
		if len(s) == 0 {
			return nil, ops.BadInput(0, "ConcatFromSequence of an empty sequence")
		}
		parts := s
		if newAxis { // stack: each element gains a unit axis
			r := s[0].Rank() + 1
			a, err := normAxis(axisAttr, r)
			if err != nil {
				return nil, ops.BadInput(0, "ConcatFromSequence axis %d invalid for new rank %d", axisAttr, r)
			}
			parts = make([]*tensor.Tensor, len(s))
			for i, t := range s {
				shape := append(append(append([]int{}, t.Shape[:a]...), 1), t.Shape[a:]...)
				if parts[i], err = t.Reshaped(shape); err != nil {
					return nil, ops.BadInput(0, "%v", err)
				}
			}
		}
		first := parts[0]
		axis, err := normAxis(axisAttr, first.Rank())
		if err != nil {
			return nil, ops.BadInput(0, "ConcatFromSequence axis %d invalid for %v", axisAttr, first)
		}
		shape := append([]int{}, first.Shape...)
		shape[axis] = 0
		for i, t := range parts {
			if t.Rank() != first.Rank() || t.DType != first.DType {
				return nil, ops.BadInput(0, "ConcatFromSequence element %d %v does not fit %v", i, t, first)
			}
			for d := range shape {
				if d != axis && t.Shape[d] != first.Shape[d] {
					return nil, ops.BadInput(0, "ConcatFromSequence element %d %v does not fit %v", i, t, first)
				}
			}
			shape[axis] += t.Shape[axis]
		}
		out, err := tensor.New(first.DType, shape)
		if err != nil {
			return nil, ops.BadInput(0, "ConcatFromSequence: %v", err)
		}
		outer, inner := elems.Prod(shape[:axis]), elems.Prod(shape[axis+1:])
		off := 0
		for _, t := range parts {
			k := t.Shape[axis]
			dst := make([]int, 0, t.Len())
			for o := 0; o < outer; o++ {
				for j := 0; j < k; j++ {
					for i := 0; i < inner; i++ {
						dst = append(dst, (o*shape[axis]+off+j)*inner+i)
					}
				}
			}
			if err := elems.Copy(out, dst, t, nil); err != nil {
				return nil, ops.BadInput(0, "ConcatFromSequence: %v", err)
			}
			off += k
		}
		return []*tensor.Tensor{out}, nil
	}, nil
}
