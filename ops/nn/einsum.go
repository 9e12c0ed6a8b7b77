package nn

import (
	"fmt"
	"strings"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Einsum evaluates an equation by looping over every label's range once:
// simple and general (repeated labels within an operand take diagonals,
// ellipses stand for leading broadcast dims).

func init() {
	ops.Define(ops.Desc{Type: "Einsum", Since: 12, Grad: noRuleYet, Kernel: func(c *ops.Config) (ops.Op, error) {
		eq := strings.ReplaceAll(c.Attrs.String("equation", ""), " ", "")
		if eq == "" {
			return nil, ops.BadAttr("equation", "missing")
		}
		return &einsum{eq: eq}, nil
	}})
}

type einsum struct{ eq string }

// einsumFastPath lets tests compare the matmul path with the general loop.
var einsumFastPath = true

func (e *einsum) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	lhs, rhs, explicit := strings.Cut(e.eq, "->")
	terms := strings.Split(lhs, ",")
	if len(terms) != len(in) {
		return nil, fmt.Errorf("equation %q has %d operands, got %d inputs", e.eq, len(terms), len(in))
	}
	for i, t := range terms {
		if in[i] == nil {
			return nil, ops.BadInput(i, "missing")
		}
		if strings.Count(t, ".") > 3 || (strings.Contains(t, ".") && !strings.Contains(t, "...")) {
			return nil, fmt.Errorf("equation term %q has a malformed ellipsis", t)
		}
		for _, r := range strings.ReplaceAll(t, "...", "") {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return nil, fmt.Errorf("equation term %q: label %q is not a letter", t, r)
			}
		}
	}
	// expand ellipses into reserved upper-case-free labels '0'..'9'
	ellRank := 0
	for i, t := range terms {
		if strings.Contains(t, "...") {
			ellRank = max(ellRank, in[i].Rank()-(len(t)-3))
		}
	}
	ell := ""
	for i := 0; i < ellRank; i++ {
		ell += string(rune('0' + i))
	}
	for i, t := range terms {
		if strings.Contains(t, "...") {
			k := in[i].Rank() - (len(t) - 3)
			if k < 0 {
				return nil, fmt.Errorf("equation term %q does not match input %d of rank %d", t, i, in[i].Rank())
			}
			terms[i] = strings.Replace(t, "...", ell[ellRank-k:], 1)
		}
		if len(terms[i]) != in[i].Rank() {
			return nil, fmt.Errorf("equation term %q does not match input %d of rank %d", t, i, in[i].Rank())
		}
	}
	size := map[rune]int{}
	var order []rune
	for i, t := range terms {
		for a, r := range t {
			d := in[i].Shape[a]
			if prev, ok := size[r]; ok {
				if prev != d && prev != 1 && d != 1 {
					return nil, fmt.Errorf("label %q is %d in one place and %d in another", r, prev, d)
				}
				size[r] = max(prev, d)
				continue
			}
			size[r] = d
			order = append(order, r)
		}
	}
	if !explicit {
		// implicit output: ellipsis dims, then labels seen once, alphabetically
		count := map[rune]int{}
		for _, t := range terms {
			for _, r := range t {
				count[r]++
			}
		}
		rhs = ell
		for c := 'A'; c <= 'z'; c++ {
			if count[c] == 1 && !strings.ContainsRune(ell, c) {
				rhs += string(c)
			}
		}
	} else {
		rhs = strings.Replace(rhs, "...", ell, 1)
	}
	outShape := []int{}
	for _, r := range rhs {
		d, ok := size[r]
		if !ok {
			return nil, fmt.Errorf("output label %q appears in no input", r)
		}
		outShape = append(outShape, d)
	}
	if einsumFastPath && len(in) == 2 && in[0].DType == in[1].DType && (in[0].DType == tensor.Float32 || in[0].DType == tensor.Float64) {
		if t, ok := einsumMatmul(terms[0], terms[1], rhs, in[0], in[1], outShape); ok {
			return []*tensor.Tensor{t}, nil
		}
	}
	vals := make([][]float64, len(in))
	strides := make([][]int, len(in))
	for i, t := range in {
		v, err := tensor.AsFloat64(t)
		if err != nil {
			return nil, ops.BadInput(i, "%v", err)
		}
		vals[i] = v
		st := tensor.Strides(t.Shape)
		strides[i] = make([]int, len(order))
		for a, r := range terms[i] {
			for li, l := range order {
				if l == r && t.Shape[a] != 1 {
					strides[i][li] += st[a]
				}
			}
		}
	}
	outStr := make([]int, len(order))
	st := tensor.Strides(outShape)
	for a, r := range rhs {
		for li, l := range order {
			if l == r {
				outStr[li] = st[a]
			}
		}
	}
	dims := make([]int, len(order))
	for i, r := range order {
		dims[i] = size[r]
	}
	out := make([]float64, prodInts(outShape))
	forEachIndex(dims, func(idx []int) {
		p := 1.0
		for i := range in {
			off := 0
			for li, x := range idx {
				off += x * strides[i][li]
			}
			p *= vals[i][off]
		}
		o := 0
		for li, x := range idx {
			o += x * outStr[li]
		}
		out[o] += p
	})
	t, err := fromFloat64(in[0].DType, outShape, out)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{t}, nil
}

// einsumMatmul evaluates a two-operand equation whose every label is a
// batch (both inputs and output), row (A and output), column (B and
// output) or contracted (A and B only) label, with no repeats and no
// broadcasting, as a batched matrix product between two transposes.
func einsumMatmul(ta, tb, rhs string, a, b *tensor.Tensor, outShape []int) (*tensor.Tensor, bool) {
	if hasRepeat(ta) || hasRepeat(tb) || hasRepeat(rhs) {
		return nil, false
	}
	dim := map[rune]int{}
	for i, r := range ta {
		dim[r] = a.Shape[i]
	}
	for i, r := range tb {
		if d, ok := dim[r]; ok && d != b.Shape[i] {
			return nil, false
		}
		dim[r] = b.Shape[i]
	}
	var batch, mL, nL, kL []rune
	for _, r := range rhs {
		inA, inB := strings.ContainsRune(ta, r), strings.ContainsRune(tb, r)
		switch {
		case inA && inB:
			batch = append(batch, r)
		case inA:
			mL = append(mL, r)
		case inB:
			nL = append(nL, r)
		default:
			return nil, false
		}
	}
	for _, r := range ta {
		if !strings.ContainsRune(rhs, r) {
			if !strings.ContainsRune(tb, r) {
				return nil, false
			}
			kL = append(kL, r)
		}
	}
	for _, r := range tb {
		if !strings.ContainsRune(rhs, r) && !strings.ContainsRune(ta, r) {
			return nil, false
		}
	}
	size := func(ls []rune) int {
		n := 1
		for _, r := range ls {
			n *= dim[r]
		}
		return n
	}
	nb, m, n, k := size(batch), size(mL), size(nL), size(kL)
	aOrder := string(batch) + string(mL) + string(kL)
	bOrder := string(batch) + string(kL) + string(nL)
	pOrder := string(batch) + string(mL) + string(nL)
	out, err := tensor.New(a.DType, outShape)
	if err != nil {
		return nil, false
	}
	switch a.DType {
	case tensor.Float32:
		av := permuteTo(a.Float32s(), a.Shape, ta, aOrder)
		bv := permuteTo(b.Float32s(), b.Shape, tb, bOrder)
		p := make([]float32, nb*m*n)
		for i := 0; i < nb; i++ {
			Sgemm(false, false, m, n, k, 1, av[i*m*k:(i+1)*m*k], k, bv[i*k*n:(i+1)*k*n], n, 0, p[i*m*n:(i+1)*m*n], n)
		}
		copy(out.Float32s(), permuteTo(p, labelDims(pOrder, dim), pOrder, rhs))
	case tensor.Float64:
		av := permuteTo(a.Float64s(), a.Shape, ta, aOrder)
		bv := permuteTo(b.Float64s(), b.Shape, tb, bOrder)
		p := make([]float64, nb*m*n)
		for i := 0; i < nb; i++ {
			ab, bb, pb := av[i*m*k:], bv[i*k*n:], p[i*m*n:]
			for r := 0; r < m; r++ {
				for q := 0; q < k; q++ {
					x := ab[r*k+q]
					row := bb[q*n : q*n+n]
					dst := pb[r*n : r*n+n]
					for j, y := range row {
						dst[j] += x * y
					}
				}
			}
		}
		copy(out.Float64s(), permuteTo(p, labelDims(pOrder, dim), pOrder, rhs))
	}
	return out, true
}

func hasRepeat(s string) bool {
	for i, r := range s {
		if strings.ContainsRune(s[i+len(string(r)):], r) {
			return true
		}
	}
	return false
}

func labelDims(labels string, dim map[rune]int) []int {
	var d []int
	for _, r := range labels {
		d = append(d, dim[r])
	}
	return d
}

// permuteTo transposes x (dims labelled by from) into the label order to;
// it returns x itself when the orders agree.
func permuteTo[T any](x []T, shape []int, from, to string) []T {
	if from == to {
		return x
	}
	fromR, toR := []rune(from), []rune(to)
	nd := len(toR)
	st := tensor.Strides(shape)
	dims, srcStr := make([]int, nd), make([]int, nd)
	for i, r := range toR {
		for j, f := range fromR {
			if f == r {
				dims[i], srcStr[i] = shape[j], st[j]
			}
		}
	}
	out := make([]T, len(x))
	if len(x) == 0 {
		return out
	}
	idx := make([]int, nd)
	off := 0
	for o := range out {
		out[o] = x[off]
		for a := nd - 1; a >= 0; a-- {
			idx[a]++
			off += srcStr[a]
			if idx[a] < dims[a] {
				break
			}
			off -= idx[a] * srcStr[a]
			idx[a] = 0
		}
	}
	return out
}
