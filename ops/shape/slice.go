package shape

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Define(ops.Desc{Type: "Slice", Since: 1, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: newSlice})
}

// sliceOp implements Slice: attributes before opset 10, inputs from 10.
type sliceOp struct {
	attrs              bool
	starts, ends, axes []int64
	hasStarts, hasEnds bool
}

func newSlice(c *ops.Config) (ops.Op, error) {
	s := &sliceOp{attrs: c.Opset < 10}
	if s.attrs {
		s.hasStarts, s.hasEnds = c.Attrs.Has("starts"), c.Attrs.Has("ends")
		if !s.hasStarts || !s.hasEnds {
			return nil, ops.BadAttr("starts", "Slice before opset 10 needs starts and ends attributes")
		}
		s.starts, s.ends, s.axes = c.Attrs.Ints("starts"), c.Attrs.Ints("ends"), c.Attrs.Ints("axes")
		if len(s.starts) != len(s.ends) {
			return nil, ops.BadAttr("ends", "has %d values but starts has %d", len(s.ends), len(s.starts))
		}
		if s.axes != nil && len(s.axes) != len(s.starts) {
			return nil, ops.BadAttr("axes", "has %d values but starts has %d", len(s.axes), len(s.starts))
		}
	}
	return s, nil
}

// Run is RunWith(nil, in).
func (s *sliceOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return s.RunWith(nil, in) }

// RunWith slices into a tensor from ar.
func (s *sliceOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	starts, ends, axes := s.starts, s.ends, s.axes
	var steps []int64
	if !s.attrs {
		if err := ops.NeedInputs(in, 3); err != nil {
			return nil, err
		}
		var err error
		if starts, _, err = intsInput(ar, in, 1, "starts"); err != nil {
			return nil, err
		}
		if ends, _, err = intsInput(ar, in, 2, "ends"); err != nil {
			return nil, err
		}
		if len(ends) != len(starts) {
			return nil, ops.BadInput(2, "Slice ends %v has %d values but starts %v has %d", ends, len(ends), starts, len(starts))
		}
		var ok bool
		if axes, ok, err = intsInput(ar, in, 3, "axes"); err != nil {
			return nil, err
		}
		if ok && len(axes) != len(starts) {
			return nil, ops.BadInput(3, "Slice axes %v has %d values but starts has %d", axes, len(axes), len(starts))
		}
		if steps, ok, err = intsInput(ar, in, 4, "steps"); err != nil {
			return nil, err
		}
		if ok && len(steps) != len(starts) {
			return nil, ops.BadInput(4, "Slice steps %v has %d values but starts has %d", steps, len(steps), len(starts))
		}
	}
	r := x.Rank()
	var ax []int
	if len(axes) > 0 {
		var err error
		if ax, err = normAxes(ar, axes, r); err != nil {
			return nil, ops.BadInput(3, "Slice axes: %v (data %v)", err, x)
		}
	} else {
		if len(starts) > r {
			return nil, ops.BadInput(1, "Slice starts %v has more values than data %v has axes", starts, x)
		}
		ax = ar.Ints(len(starts))
		for i := range ax {
			ax[i] = i
		}
	}
	if err := x.Validate(); err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	start, step, n := ar.Ints(r), ar.Ints(r), ar.Ints(r)
	copy(n, x.Shape)
	for a := range step {
		step[a] = 1
	}
	for i, a := range ax {
		st := int64(1)
		if steps != nil {
			st = steps[i]
		}
		if st == 0 {
			return nil, ops.BadInput(4, "Slice step for axis %d is 0", a)
		}
		dim := int64(x.Shape[a])
		b, e := starts[i], ends[i]
		if b < 0 {
			b += dim
		}
		if e < 0 {
			e += dim
		}
		var cnt int64
		if st > 0 {
			b, e = clamp(b, 0, dim), clamp(e, 0, dim)
			if e > b {
				cnt = (e - b + st - 1) / st
			}
		} else {
			b, e = clamp(b, 0, dim-1), clamp(e, -1, dim-1)
			if b > e {
				cnt = (b - e + (-st) - 1) / (-st)
			}
		}
		if dim == 0 {
			cnt, b = 0, 0
		}
		start[a], step[a], n[a] = int(b), int(st), int(cnt)
	}
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	out, dst, err := alloc(ar, x.DType, n)
	if err != nil {
		return nil, err
	}
	if out.Len() == 0 {
		return one(ar, out)
	}
	// Find the contiguous run: trailing full axes, plus the last partial
	// axis if it has step 1.
	st := strides(ar, x.Shape)
	j := r - 1
	for j >= 0 && start[j] == 0 && step[j] == 1 && n[j] == x.Shape[j] {
		j--
	}
	if j < 0 {
		copyRaw(dst, src, 0, 0, out.Len())
		return one(ar, out)
	}
	var m, run, base int
	if step[j] == 1 {
		m, run, base = j, n[j]*st[j], start[j]*st[j]
	} else {
		m, run, base = j+1, st[j], 0
	}
	sl := sliceLoop{m: m, n: n, start: start, step: step, st: st, run: run, base: base, counter: ar.Ints(m)}
	switch src.k {
	case k1:
		sliceT(dst.b1, src.b1, &sl)
	case k2:
		sliceT(dst.b2, src.b2, &sl)
	case k4:
		sliceT(dst.b4, src.b4, &sl)
	case k8:
		sliceT(dst.b8, src.b8, &sl)
	default:
		sliceT(dst.s, src.s, &sl)
	}
	return one(ar, out)
}

func clamp(v, lo, hi int64) int64 {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// sliceLoop walks the output over axes [0, m) and copies runs of run
// elements from the source offset of each position plus base.
type sliceLoop struct {
	m                  int
	n, start, step, st []int
	run, base          int
	counter            []int // m ints of zeroed scratch
}

func sliceT[T word](dst, src []T, l *sliceLoop) {
	m := l.m
	off := l.base
	for a := 0; a < m; a++ {
		off += l.start[a] * l.st[a]
	}
	if m == 0 {
		copy(dst[:l.run], src[off:off+l.run])
		return
	}
	// innermost walked axis handled in a tight loop
	last := m - 1
	inc := l.step[last] * l.st[last]
	cnt := l.n[last]
	counter := l.counter
	d := 0
	total := len(dst)
	for d < total {
		o := off
		if l.run == 1 {
			for i := 0; i < cnt; i++ {
				dst[d] = src[o]
				d++
				o += inc
			}
		} else {
			for i := 0; i < cnt; i++ {
				copy(dst[d:d+l.run], src[o:o+l.run])
				d += l.run
				o += inc
			}
		}
		// advance axes [0, last)
		for a := last - 1; a >= 0; a-- {
			counter[a]++
			off += l.step[a] * l.st[a]
			if counter[a] < l.n[a] {
				break
			}
			off -= l.step[a] * l.st[a] * counter[a]
			counter[a] = 0
		}
	}
}
