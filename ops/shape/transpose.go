package shape

import (
	"sort"

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

func (t *transposeOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	r := x.Rank()
	perm := make([]int, r)
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
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	shape := make([]int, r)
	for i, p := range perm {
		shape[i] = x.Shape[p]
	}
	out, dst, err := alloc(x.DType, shape)
	if err != nil {
		return nil, err
	}
	transposeRaw(dst, src, x.Shape, perm)
	return one(out)
}

// transposeRaw writes the transpose of src (shape, perm) to dst.
func transposeRaw(dst, src raw, shape, perm []int) {
	ns, np := coalesce(shape, perm)
	switch src.k {
	case k1:
		transposeT(dst.b1, src.b1, ns, np)
	case k2:
		transposeT(dst.b2, src.b2, ns, np)
	case k4:
		transposeT(dst.b4, src.b4, ns, np)
	case k8:
		transposeT(dst.b8, src.b8, ns, np)
	default:
		transposeT(dst.s, src.s, ns, np)
	}
}

// coalesce drops size-1 axes and merges source axes that stay adjacent in
// the output, giving an equivalent smaller transpose.
func coalesce(shape, perm []int) (ns, np []int) {
	newIdx := make([]int, len(shape))
	var s2 []int
	for a, d := range shape {
		newIdx[a] = len(s2)
		if d != 1 {
			s2 = append(s2, d)
		}
	}
	var p2 []int
	for _, a := range perm {
		if shape[a] != 1 {
			p2 = append(p2, newIdx[a])
		}
	}
	type group struct{ start, end int }
	var groups []group
	for _, a := range p2 {
		if n := len(groups); n > 0 && groups[n-1].end == a {
			groups[n-1].end++
			continue
		}
		groups = append(groups, group{a, a + 1})
	}
	order := make([]int, len(groups))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return groups[order[i]].start < groups[order[j]].start })
	pos := make([]int, len(groups))
	ns = make([]int, len(groups))
	for p, g := range order {
		pos[g] = p
		ns[p] = prod(s2[groups[g].start:groups[g].end])
	}
	np = make([]int, len(groups))
	for i := range groups {
		np[i] = pos[i]
	}
	return ns, np
}

// Tile sizes for the 2-D transpose: tileR source rows (one contiguous
// destination run) by tileC source columns.
const (
	tileR = 32
	tileC = 16
)

func transposeT[T word](dst, src []T, shape, perm []int) {
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
	st := tensor.Strides(shape)
	os := make([]int, r)
	ss := make([]int, r)
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
	counter := make([]int, walk)
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
