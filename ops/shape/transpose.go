package shape

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Register("", "Transpose", 1, newTranspose)
}

type transposeOp struct {
	perm    []int64
	hasPerm bool
}

func newTranspose(c *ops.Config) (ops.Op, error) {
	t := &transposeOp{perm: c.Attrs.Ints("perm"), hasPerm: c.Attrs.Has("perm")}
	seen := map[int64]bool{}
	for _, p := range t.perm {
		if p < 0 || p >= int64(len(t.perm)) || seen[p] {
			return nil, ops.BadAttr("perm", "%v is not a permutation", t.perm)
		}
		seen[p] = true
	}
	return t, nil
}

// Run is RunWith(nil, in).
func (t *transposeOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return t.RunWith(nil, in) }

// RunWith transposes into a tensor from ar.
func (t *transposeOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	r := x.Rank()
	perm := ar.Ints(r)
	if t.hasPerm && len(t.perm) > 0 || r == 0 && t.hasPerm {
		if len(t.perm) != r {
			return nil, ops.BadInput(0, "Transpose perm %v has %d values but input %v has rank %d", t.perm, len(t.perm), x, r)
		}
		for i, p := range t.perm {
			perm[i] = int(p)
		}
	} else {
		for i := range perm {
			perm[i] = r - 1 - i
		}
	}
	shape := ar.Ints(r)
	for i, p := range perm {
		shape[i] = x.Shape[p]
	}
	if orderKept(x.Shape, perm) {
		// only axes of size 1 move (a one-step chunk [B,1,F] → [1,B,F]):
		// the memory order is unchanged, so the result is a view
		return viewOf(ar, x, shape)
	}
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	out, dst, err := alloc(ar, x.DType, shape)
	if err != nil {
		return nil, err
	}
	if rawLen(src) != rawLen(dst) {
		return nil, ops.BadInput(0, "Transpose input %v holds %d elements", x, rawLen(src))
	}
	transposeRaw(ar, dst, src, x.Shape, perm)
	return one(ar, out)
}

// orderKept reports whether perm keeps the relative order of the axes of
// size other than 1, so that the transpose moves no element.
func orderKept(shape, perm []int) bool {
	last := -1
	for _, p := range perm {
		if shape[p] == 1 {
			continue
		}
		if p < last {
			return false
		}
		last = p
	}
	return true
}

// rawLen is the number of elements of r.
func rawLen(r raw) int { return len(r.b1) + len(r.b2) + len(r.b4) + len(r.b8) + len(r.s) }

// transposeRaw writes the transpose of src (shape, perm) to dst, with
// scratch from ar.
func transposeRaw(ar *ops.Arena, dst, src raw, shape, perm []int) {
	ns, np := coalesce(ar, shape, perm)
	sc := ar.Ints(4 * len(ns))
	switch src.k {
	case k1:
		transposeT(dst.b1, src.b1, ns, np, sc)
	case k2:
		transposeT(dst.b2, src.b2, ns, np, sc)
	case k4:
		transposeT(dst.b4, src.b4, ns, np, sc)
	case k8:
		transposeT(dst.b8, src.b8, ns, np, sc)
	default:
		transposeT(dst.s, src.s, ns, np, sc)
	}
}

// coalesce drops size-1 axes and merges source axes that stay adjacent in
// the output, giving an equivalent smaller transpose (slices from ar).
func coalesce(ar *ops.Arena, shape, perm []int) (ns, np []int) {
	r := len(shape)
	sc := ar.Ints(6 * r)
	newIdx, s2, p2 := sc[:r], sc[r:r:2*r], sc[2*r:2*r:3*r]
	gStart, gEnd := sc[3*r:3*r:4*r], sc[4*r:4*r:5*r]
	order := sc[5*r : 5*r : 6*r]
	for a, d := range shape {
		newIdx[a] = len(s2)
		if d != 1 {
			s2 = append(s2, d)
		}
	}
	for _, a := range perm {
		if shape[a] != 1 {
			p2 = append(p2, newIdx[a])
		}
	}
	// groups of source axes that stay adjacent, in output order
	for _, a := range p2 {
		if n := len(gEnd); n > 0 && gEnd[n-1] == a {
			gEnd[n-1]++
			continue
		}
		gStart, gEnd = append(gStart, a), append(gEnd, a+1)
	}
	ng := len(gStart)
	// order: the groups sorted by source position (insertion sort: ranks
	// are small and sort.Slice would allocate)
	for g := 0; g < ng; g++ {
		order = append(order, g)
		for j := len(order) - 1; j > 0 && gStart[order[j-1]] > gStart[order[j]]; j-- {
			order[j-1], order[j] = order[j], order[j-1]
		}
	}
	out := ar.Ints(2 * ng)
	ns, np = out[:ng:ng], out[ng:]
	for p, g := range order {
		np[g] = p
		ns[p] = prod(s2[gStart[g]:gEnd[g]])
	}
	return ns, np
}

// Tile sizes for the 2-D transpose: tileR source rows (one contiguous
// destination run) by tileC source columns.
const (
	tileR = 32
	tileC = 16
)

// transposeT moves src (shape) to dst in perm order; sc is scratch of at
// least 4*len(shape) ints.
func transposeT[T word](dst, src []T, shape, perm []int, sc []int) {
	r := len(shape)
	n := len(dst)
	if n == 0 {
		return
	}
	identity := true
	for i, p := range perm {
		identity = identity && i == p
	}
	if identity {
		copy(dst, src)
		return
	}
	// [R, C] -> [C, R], optionally batched: [N, R, C] -> [N, C, R].
	if r == 2 || (r == 3 && perm[0] == 0 && perm[1] == 2 && perm[2] == 1) {
		batch := 1
		if r == 3 {
			batch = shape[0]
		}
		rows, cols := shape[r-2], shape[r-1]
		for b := 0; b < batch; b++ {
			transpose2D(dst[b*rows*cols:(b+1)*rows*cols], src[b*rows*cols:(b+1)*rows*cols], rows, cols)
		}
		return
	}
	st, os, ss, counter := sc[:r], sc[r:2*r], sc[2*r:3*r], sc[3*r:4*r]
	s := 1
	for i := r - 1; i >= 0; i-- {
		st[i] = s
		s *= shape[i]
	}
	for i, p := range perm {
		os[i] = shape[p]
		ss[i] = st[p]
	}
	run := 1
	walk := r
	if perm[r-1] == r-1 {
		// the innermost axis stays innermost: block copies
		run, walk = os[r-1], r-1
	}
	last := walk - 1
	cnt, inc := os[last], ss[last]
	counter = counter[:walk]
	clear(counter)
	off := 0
	for d := 0; d < n; {
		o := off
		if run == 1 {
			for i := 0; i < cnt; i++ {
				dst[d] = src[o]
				d++
				o += inc
			}
		} else {
			for i := 0; i < cnt; i++ {
				copy(dst[d:d+run], src[o:o+run])
				d += run
				o += inc
			}
		}
		for a := last - 1; a >= 0; a-- {
			counter[a]++
			off += ss[a]
			if counter[a] < os[a] {
				break
			}
			off -= ss[a] * counter[a]
			counter[a] = 0
		}
	}
}

// transpose2D writes dst[c*rows+r] = src[r*cols+c] in cache-sized tiles:
// each tile reads tile rows of src and writes tile rows of dst.
func transpose2D[T word](dst, src []T, rows, cols int) {
	for r0 := 0; r0 < rows; r0 += tileR {
		r1 := min(r0+tileR, rows)
		for c0 := 0; c0 < cols; c0 += tileC {
			c1 := min(c0+tileC, cols)
			for c := c0; c < c1; c++ {
				d := dst[c*rows+r0 : c*rows+r1]
				s := r0*cols + c
				for i := range d {
					d[i] = src[s]
					s += cols
				}
			}
		}
	}
}
