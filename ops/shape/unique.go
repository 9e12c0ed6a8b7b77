package shape

import (
	"encoding/binary"
	"math"
	"sort"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Define(ops.Desc{Type: "Unique", Since: 11, Grad: ops.NotDifferentiable("the outputs' length and order change when equal elements are perturbed apart (a set operation, used on integer ids)"), Kernel: newUnique})
	// gradient: train/autodiff/rules_reduce.go
	ops.Define(ops.Desc{Type: "CumProd", Since: 26, Shape: ops.ShapeSameAsInput, Grad: ops.GradRule{}, Kernel: newCumProd})
}

// ---- Unique ----

// newUnique builds Unique: the distinct elements (or, with axis, the
// distinct slices along axis), sorted ascending when sorted=1 or in order of
// first occurrence, with the first-occurrence indices, the inverse indices
// and the counts.
func newUnique(c *ops.Config) (ops.Op, error) {
	hasAxis := c.Attrs.Has("axis")
	axisAttr := c.Attrs.Int("axis", 0)
	sorted := c.Attrs.Int("sorted", 1) != 0
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		shape := x.Shape
		if !hasAxis {
			shape = []int{x.Len()}
		}
		axis, err := normAxis(axisAttr, len(shape))
		if err != nil {
			return nil, ops.BadInput(0, "Unique axis %d invalid for %v", axisAttr, x)
		}
		v, err := tensor.AsFloat64(x)
		var keys []string
		if err != nil {
			if s, ok := x.Data.([]string); ok {
				keys = s
			} else {
				return nil, ops.BadInput(0, "Unique: %v", err)
			}
		}
		outer, n, inner := elems.Prod(shape[:axis]), shape[axis], elems.Prod(shape[axis+1:])
		// slice j as the flat offsets of its elements
		at := func(j, e int) int { return (e/inner*n+j)*inner + e%inner }
		m := outer * inner
		cmp := func(a, b int) int {
			for e := 0; e < m; e++ {
				pa, pb := at(a, e), at(b, e)
				if keys != nil {
					if keys[pa] != keys[pb] {
						if keys[pa] < keys[pb] {
							return -1
						}
						return 1
					}
					continue
				}
				if c := cmpNaNLast(v[pa], v[pb]); c != 0 {
					return c
				}
			}
			return 0
		}
		// first occurrences, in order, found through a key per slice (its
		// values' bits; -0 and 0 are one value, and so are all NaNs, as in
		// numpy.unique, the reference)
		var firsts []int
		inverse := make([]int64, n)
		seen := make(map[string]int, n)
		var kb []byte
		for j := 0; j < n; j++ {
			kb = kb[:0]
			for e := 0; e < m; e++ {
				p := at(j, e)
				if keys != nil {
					kb = append(kb, keys[p]...)
					kb = append(kb, 0)
					continue
				}
				f := v[p]
				if f == 0 {
					f = 0 // fold -0 into 0
				}
				b := math.Float64bits(f)
				if f != f {
					b = math.Float64bits(math.NaN())
				}
				kb = binary.LittleEndian.AppendUint64(kb, b)
			}
			found, ok := seen[string(kb)]
			if !ok {
				found = len(firsts)
				seen[string(kb)] = found
				firsts = append(firsts, j)
			}
			inverse[j] = int64(found)
		}
		order := make([]int, len(firsts)) // output position -> index into firsts
		for i := range order {
			order[i] = i
		}
		if sorted {
			sort.SliceStable(order, func(a, b int) bool { return cmp(firsts[order[a]], firsts[order[b]]) < 0 })
		}
		pos := make([]int64, len(firsts))
		for p, u := range order {
			pos[u] = int64(p)
		}
		counts := make([]int64, len(firsts))
		for j := range inverse {
			counts[pos[inverse[j]]]++
			inverse[j] = pos[inverse[j]]
		}
		indices := make([]int64, len(firsts))
		src := make([]int, 0, len(firsts)*m)
		for p, u := range order {
			indices[p] = int64(firsts[u])
		}
		oshape := append([]int{}, shape...)
		oshape[axis] = len(firsts)
		for o := 0; o < outer; o++ {
			for p := range order {
				for i := 0; i < inner; i++ {
					src = append(src, (o*n+int(indices[p]))*inner+i)
				}
			}
		}
		y, err := elems.Take(x, oshape, src)
		if err != nil {
			return nil, ops.BadInput(0, "Unique: %v", err)
		}
		u := len(firsts)
		return []*tensor.Tensor{y, tensor.From([]int{u}, indices), tensor.From([]int{n}, inverse), tensor.From([]int{u}, counts)}, nil
	}), nil
}

// ---- CumProd ----

func newCumProd(c *ops.Config) (ops.Op, error) {
	exclusive, reverse := c.Attrs.Int("exclusive", 0) != 0, c.Attrs.Int("reverse", 0) != 0
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		x, axis, err := scanAxis(in, "CumProd")
		if err != nil {
			return nil, err
		}
		outer, k, inner := prod(x.Shape[:axis]), x.Shape[axis], prod(x.Shape[axis+1:])
		out := x.Clone()
		switch d := out.Data.(type) {
		case []float32:
			cumProdT(d, outer, k, inner, exclusive, reverse)
		case []float64:
			cumProdT(d, outer, k, inner, exclusive, reverse)
		case []int32:
			cumProdT(d, outer, k, inner, exclusive, reverse)
		case []int64:
			cumProdT(d, outer, k, inner, exclusive, reverse)
		case []uint32:
			cumProdT(d, outer, k, inner, exclusive, reverse)
		case []uint64:
			cumProdT(d, outer, k, inner, exclusive, reverse)
		case []tensor.Float16Bits, []tensor.BFloat16Bits:
			f, _ := tensor.AsFloat64(x)
			cumProdT(f, outer, k, inner, exclusive, reverse)
			if out, err = elems.FromFloats(x.DType, x.Shape, f); err != nil {
				return nil, err
			}
		default:
			return nil, ops.BadInput(0, "CumProd does not support %v", x)
		}
		return []*tensor.Tensor{out}, nil
	}), nil
}

func cumProdT[T tensor.Number](d []T, outer, k, inner int, exclusive, reverse bool) {
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			acc := T(1)
			for s := 0; s < k; s++ {
				j := s
				if reverse {
					j = k - 1 - s
				}
				p := (o*k+j)*inner + i
				v := d[p]
				if exclusive {
					d[p] = acc
					acc *= v
				} else {
					acc *= v
					d[p] = acc
				}
			}
		}
	}
}

// cmpNaNLast orders numbers with NaN after everything (and equal to NaN).
func cmpNaNLast(a, b float64) int {
	switch an, bn := a != a, b != b; {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
