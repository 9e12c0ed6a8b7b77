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
	ops.Register("", "Einsum", 12, func(c *ops.Config) (ops.Op, error) {
		eq := strings.ReplaceAll(c.Attrs.String("equation", ""), " ", "")
		if eq == "" {
			return nil, ops.BadAttr("equation", "missing")
		}
		return &einsum{eq: eq}, nil
	})
}

type einsum struct{ eq string }

func (e *einsum) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	lhs, rhs, explicit := strings.Cut(e.eq, "->")
	terms := strings.Split(lhs, ",")
	if len(terms) != len(in) {
		return nil, fmt.Errorf("equation %q has %d operands, got %d inputs", e.eq, len(terms), len(in))
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
