package tensor

import "fmt"

// BroadcastShapes returns the NumPy broadcast of the given shapes.
func BroadcastShapes(shapes ...[]int) ([]int, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]int, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			o := out[off+i]
			switch {
			case o == d || d == 1:
			case o == 1:
				out[off+i] = d
			default:
				return nil, fmt.Errorf("tensor: shapes %v are not broadcast-compatible (dim %d: %d vs %d)", shapes, off+i, o, d)
			}
		}
	}
	return out, nil
}

// BroadcastPairInto writes the NumPy broadcast of shapes a and b into dst,
// which must have length max(len(a), len(b)), and returns it; ok is false
// (and the shape nil) when they are incompatible. It allocates nothing, so
// kernels on the hot path can hand it scratch from their arena; the error
// text stays with BroadcastShapes, off the hot path.
func BroadcastPairInto(dst, a, b []int) (shape []int, ok bool) {
	offA, offB := len(dst)-len(a), len(dst)-len(b)
	for i := range dst {
		ad, bd := 1, 1
		if i >= offA {
			ad = a[i-offA]
		}
		if i >= offB {
			bd = b[i-offB]
		}
		switch {
		case ad == bd || bd == 1:
			dst[i] = ad
		case ad == 1:
			dst[i] = bd
		default:
			return nil, false
		}
	}
	return dst, true
}

// Strides returns row-major element strides for shape.
func Strides(shape []int) []int {
	st := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = s
		s *= shape[i]
	}
	return st
}

// BroadcastIndex maps every element of the broadcast shape `out` to an
// element of an input of shape `in` (right-aligned, NumPy rules). The result
// has one entry per output element. Callers cache it per shape pair when hot.
func BroadcastIndex(in, out []int) []int {
	n := 1
	for _, d := range out {
		n *= d
	}
	idx := make([]int, n)
	if len(in) == 0 || SameShape(in, out) {
		if len(in) != 0 {
			for i := range idx {
				idx[i] = i
			}
		}
		return idx
	}
	// stride of each output axis in the input (0 where broadcast)
	off := len(out) - len(in)
	inStr := Strides(in)
	st := make([]int, len(out))
	for i := range in {
		if in[i] != 1 {
			st[off+i] = inStr[i]
		}
	}
	counter := make([]int, len(out))
	pos := 0
	for k := 0; k < n; k++ {
		idx[k] = pos
		for ax := len(out) - 1; ax >= 0; ax-- {
			counter[ax]++
			pos += st[ax]
			if counter[ax] < out[ax] {
				break
			}
			pos -= st[ax] * counter[ax]
			counter[ax] = 0
		}
	}
	return idx
}
