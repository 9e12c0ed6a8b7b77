package tensor

import (
	"errors"
	"math"
	"testing"
)

// Element counts are overflow-safe: shapes whose product overflows int, or
// exceeds MaxElements, are refused before anything is allocated, and
// zero-element shapes are fine whatever their other dims.
func TestOverflowSafeSizes(t *testing.T) {
	for _, c := range []struct {
		shape []int
		n     int
		bad   bool
	}{
		{[]int{16777216, 0, 1}, 0, false},
		{[]int{math.MaxInt, math.MaxInt, 0}, 0, true}, // the partial product overflows first: refused
		{[]int{0, math.MaxInt}, 0, false},
		{[]int{1 << 32, 1 << 32}, 0, true},
		{[]int{math.MaxInt, 2}, 0, true},
		{[]int{MaxElements + 1}, 0, true},
		{[]int{-1, 0}, 0, true},
		{[]int{3, 5}, 15, false},
	} {
		n, err := NumElements(c.shape)
		if (err != nil) != c.bad || (!c.bad && n != c.n) {
			t.Errorf("NumElements(%v) = %d, %v", c.shape, n, err)
		}
		if x, err := New(Float32, c.shape); (err != nil) != c.bad || (!c.bad && x.Len() != c.n) {
			t.Errorf("New(%v): %v", c.shape, err)
		}
	}
	for _, n := range []int{-1, MaxElements + 1, math.MaxInt} {
		if _, err := MakeSlice(Float32, n); !errors.Is(err, ErrTooLarge) {
			t.Errorf("MakeSlice(%d): %v, want ErrTooLarge", n, err)
		}
	}
}
