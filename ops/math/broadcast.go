package math

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// kern is a binary element-wise kernel split into its three contiguous-run
// shapes. Every broadcast, however odd, is walked as a sequence of runs in
// which each operand either advances with the output (a slice) or stays put
// (a single value), so a kernel only ever runs tight typed loops.
type kern[A, B, R any] struct {
	vv func(out []R, a []A, b []B) // both operands advance
	vs func(out []R, a []A, b B)   // b is constant over the run
	sv func(out []R, a A, b []B)   // a is constant over the run
}

// elementwise builds a kern from a scalar function. It costs an indirect
// call per element; the hot ops write their loops out instead.
func elementwise[A, B, R any](f func(A, B) R) kern[A, B, R] {
	return kern[A, B, R]{
		vv: func(out []R, a []A, b []B) {
			a, b = a[:len(out)], b[:len(out)]
			for i := range out {
				out[i] = f(a[i], b[i])
			}
		},
		vs: func(out []R, a []A, b B) {
			a = a[:len(out)]
			for i := range out {
				out[i] = f(a[i], b)
			}
		},
		sv: func(out []R, a A, b []B) {
			b = b[:len(out)]
			for i := range out {
				out[i] = f(a, b[i])
			}
		},
	}
}

// bplan is the walk of a binary broadcast: the output is cut into runs of
// length inner; within a run a advances iff aStep, b iff bStep; between runs
// the offsets into a and b follow the collapsed outer dimensions.
type bplan struct {
	out          []int // output shape
	n            int   // output elements
	inner        int
	aStep, bStep bool
	outer        []int // collapsed outer dims, outermost first
	aStr, bStr   []int // their strides in a and b (0 where broadcast)
	cnt          []int // the run counter over outer (zeroed scratch)
}

// broadcastShape writes the NumPy broadcast of as and bs into scratch from
// ar. ok is false when they are incompatible (the caller builds the error,
// off the hot path).
func broadcastShape(ar *ops.Arena, as, bs []int) (out []int, ok bool) {
	return tensor.BroadcastPairInto(ar.Ints(max(len(as), len(bs))), as, bs)
}

// broadcastErr describes incompatible shapes (error path only).
func broadcastErr(shapes ...[]int) error {
	_, err := tensor.BroadcastShapes(shapes...)
	if err == nil {
		err = errorf("shapes %v are not broadcast-compatible", shapes)
	}
	return err
}

// planBinary computes the output shape of a NumPy broadcast of shapes as and
// bs and the run decomposition used by apply; its slices come from ar.
func planBinary(ar *ops.Arena, as, bs []int) (bplan, error) {
	out, ok := broadcastShape(ar, as, bs)
	if !ok {
		return bplan{}, broadcastErr(as, bs)
	}
	n, err := tensor.NumElements(out)
	if err != nil {
		return bplan{}, err
	}
	p := bplan{out: out, n: n, inner: 1, aStep: true, bStep: true}
	if n == 0 {
		return p, nil
	}
	r := len(out)
	// Collapse: drop unit output dims, merge neighbours with the same
	// broadcast pattern. dims lives in arena scratch: 3 ints per dim.
	dims := ar.Ints(3 * r)[:0] // size, a broadcast, b broadcast
	for i := 0; i < r; i++ {
		o := out[i]
		if o == 1 {
			continue
		}
		aB, bB := b2i(dimAt(as, r, i) == 1), b2i(dimAt(bs, r, i) == 1)
		if k := len(dims) - 3; k >= 0 && dims[k+1] == aB && dims[k+2] == bB {
			dims[k] *= o
			continue
		}
		dims = append(dims, o, aB, bB)
	}
	nd := len(dims) / 3
	if nd == 0 {
		return p, nil // one element
	}
	last := dims[3*(nd-1):]
	p.inner, p.aStep, p.bStep = last[0], last[1] == 0, last[2] == 0
	no := nd - 1
	all := ar.Ints(4 * no)
	p.outer, p.aStr, p.bStr, p.cnt = all[:no:no], all[no:2*no:2*no], all[2*no:3*no:3*no], all[3*no:]
	sa, sb := 1, 1
	if p.aStep {
		sa = p.inner
	}
	if p.bStep {
		sb = p.inner
	}
	for i := no - 1; i >= 0; i-- {
		size, aB, bB := dims[3*i], dims[3*i+1], dims[3*i+2]
		p.outer[i] = size
		if aB == 0 {
			p.aStr[i] = sa
			sa *= size
		}
		if bB == 0 {
			p.bStr[i] = sb
			sb *= size
		}
	}
	return p, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func dimAt(s []int, rank, i int) int {
	j := i - (rank - len(s))
	if j < 0 {
		return 1
	}
	return s[j]
}

// apply runs k over the plan. out may alias a or b when that operand has the
// output's shape (each element is read before it is written).
func apply[A, B, R any](p *bplan, out []R, a []A, b []B, k kern[A, B, R]) {
	if p.n == 0 {
		return
	}
	in := p.inner
	cnt := p.cnt
	ao, bo := 0, 0
	for off := 0; off < p.n; off += in {
		dst := out[off : off+in]
		switch {
		case p.aStep && p.bStep:
			k.vv(dst, a[ao:ao+in], b[bo:bo+in])
		case p.aStep:
			k.vs(dst, a[ao:ao+in], b[bo])
		default:
			k.sv(dst, a[ao], b[bo:bo+in])
		}
		for d := len(cnt) - 1; d >= 0; d-- {
			cnt[d]++
			ao += p.aStr[d]
			bo += p.bStr[d]
			if cnt[d] < p.outer[d] {
				break
			}
			ao -= p.aStr[d] * cnt[d]
			bo -= p.bStr[d] * cnt[d]
			cnt[d] = 0
		}
	}
}

// binaryInto computes k(a, b) with broadcasting. When dst is non-nil and has
// the output's shape and dtype it is written in place and returned;
// otherwise the result is a new tensor from ar.
func binaryInto[A, B, R tensor.Elem](ar *ops.Arena, dst, a, b *tensor.Tensor, k kern[A, B, R]) (*tensor.Tensor, error) {
	ad, ok := a.Data.([]A)
	if !ok {
		return nil, fmt.Errorf("input 0: %v tensor holds %T", a.DType, a.Data)
	}
	bd, ok := b.Data.([]B)
	if !ok {
		return nil, fmt.Errorf("input 1: %v tensor holds %T", b.DType, b.Data)
	}
	if err := lenMatches(0, a, len(ad)); err != nil {
		return nil, err
	}
	if err := lenMatches(1, b, len(bd)); err != nil {
		return nil, err
	}
	// Fast paths that need no plan: same shape, one side a scalar.
	var shape []int
	mode := 0
	switch {
	case tensor.SameShape(a.Shape, b.Shape):
		shape, mode = a.Shape, 1
	case len(bd) == 1 && len(b.Shape) <= len(a.Shape):
		shape, mode = a.Shape, 2
	case len(ad) == 1 && len(a.Shape) <= len(b.Shape):
		shape, mode = b.Shape, 3
	}
	var p bplan
	if mode == 0 {
		var err error
		if p, err = planBinary(ar, a.Shape, b.Shape); err != nil {
			return nil, fmt.Errorf("inputs %v and %v: %w", a, b, err)
		}
		shape = p.out
	}
	rt := tensor.DTypeOf[R]()
	var out []R
	if dst != nil && dst.DType == rt && tensor.SameShape(dst.Shape, shape) {
		out = dst.Data.([]R)
	} else {
		var err error
		if dst, err = ar.Empty(rt, shape); err != nil {
			return nil, err
		}
		out = dst.Data.([]R)
	}
	switch mode {
	case 1:
		k.vv(out, ad, bd)
	case 2:
		k.vs(out, ad, bd[0])
	case 3:
		k.sv(out, ad[0], bd)
	default:
		apply(&p, out, ad, bd, k)
	}
	return dst, nil
}

func binary[A, B, R tensor.Elem](ar *ops.Arena, a, b *tensor.Tensor, k kern[A, B, R]) (*tensor.Tensor, error) {
	return binaryInto(ar, nil, a, b, k)
}

// broadcastIndex fills idx (one entry per element of the broadcast shape
// out) with the flat index of the element of an input of shape in that it
// reads, using cnt (len(out) ints) as the counter.
func broadcastIndex(idx []int, in, out []int, st, cnt []int) {
	r := len(out)
	// st: the stride of each output axis in the input (0 where broadcast)
	s := 1
	for i := r - 1; i >= 0; i-- {
		st[i] = 0
		if d := dimAt(in, r, i); d != 1 {
			st[i] = s
			s *= d
		}
	}
	clear(cnt)
	pos := 0
	for k := range idx {
		idx[k] = pos
		for ax := r - 1; ax >= 0; ax-- {
			cnt[ax]++
			pos += st[ax]
			if cnt[ax] < out[ax] {
				break
			}
			pos -= st[ax] * cnt[ax]
			cnt[ax] = 0
		}
	}
}

// lenMatches checks that a tensor's data length agrees with its shape.
func lenMatches(i int, t *tensor.Tensor, n int) error {
	want, err := tensor.NumElements(t.Shape)
	if err != nil {
		return fmt.Errorf("input %d: %w", i, err)
	}
	if want != n {
		return fmt.Errorf("input %d: %v tensor has %d elements for shape %v", i, t.DType, n, t.Shape)
	}
	return nil
}
