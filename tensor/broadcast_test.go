package tensor

import (
	"reflect"
	"testing"
)

func TestBroadcastShapes(t *testing.T) {
	cases := []struct {
		name   string
		shapes [][]int
		want   []int // nil: incompatible
	}{
		{"same", [][]int{{2, 3}, {2, 3}}, []int{2, 3}},
		{"scalar", [][]int{{}, {2, 3}}, []int{2, 3}},
		{"all scalars", [][]int{{}, {}}, []int{}},
		{"row", [][]int{{2, 3}, {3}}, []int{2, 3}},
		{"column", [][]int{{2, 1}, {1, 3}}, []int{2, 3}},
		{"rank grows", [][]int{{4, 1, 3}, {5, 1}}, []int{4, 5, 3}},
		{"three shapes", [][]int{{1, 3}, {2, 1}, {7, 1, 1}}, []int{7, 2, 3}},
		{"zero dim", [][]int{{0, 3}, {1, 3}}, []int{0, 3}},
		{"zero against one", [][]int{{2, 0}, {2, 1}}, []int{2, 0}},
		{"mismatch", [][]int{{2, 3}, {3, 2}}, nil},
		{"zero against two", [][]int{{0}, {2}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := BroadcastShapes(c.shapes...)
			if c.want == nil {
				if err == nil {
					t.Fatalf("BroadcastShapes%v = %v, want an error", c.shapes, got)
				}
			} else if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("BroadcastShapes%v = %v, %v, want %v", c.shapes, got, err, c.want)
			}
			if len(c.shapes) != 2 {
				return
			}
			a, b := c.shapes[0], c.shapes[1]
			dst := make([]int, max(len(a), len(b)))
			pair, ok := BroadcastPairInto(dst, a, b)
			if ok != (c.want != nil) || (ok && !reflect.DeepEqual(pair, c.want)) {
				t.Errorf("BroadcastPairInto = %v, %v; want %v", pair, ok, c.want)
			}
		})
	}
}

// TestBroadcastIndex checks every output element against the definition:
// the input element at the output's coordinates, with broadcast axes (size
// 1 or missing on the left) pinned to 0.
func TestBroadcastIndex(t *testing.T) {
	cases := []struct{ in, out []int }{
		{[]int{}, []int{2, 3}},
		{[]int{3}, []int{2, 3}},
		{[]int{2, 1}, []int{2, 3}},
		{[]int{1, 3, 1}, []int{4, 3, 2}},
		{[]int{2, 3}, []int{2, 3}},
		{[]int{5, 1, 3}, []int{2, 5, 4, 3}},
		{[]int{1}, []int{0, 3}},
	}
	for _, c := range cases {
		got := BroadcastIndex(c.in, c.out)
		n := 1
		for _, d := range c.out {
			n *= d
		}
		if len(got) != n {
			t.Fatalf("BroadcastIndex(%v, %v): %d entries, want %d", c.in, c.out, len(got), n)
		}
		inStr, outStr := Strides(c.in), Strides(c.out)
		off := len(c.out) - len(c.in)
		for k := 0; k < n; k++ {
			want, rem := 0, k
			for ax := range c.out {
				coord := rem / outStr[ax]
				rem %= outStr[ax]
				if ax >= off && c.in[ax-off] != 1 {
					want += coord * inStr[ax-off]
				}
			}
			if got[k] != want {
				t.Fatalf("BroadcastIndex(%v, %v)[%d] = %d, want %d", c.in, c.out, k, got[k], want)
			}
		}
	}
	if got := Strides([]int{2, 3, 4}); !reflect.DeepEqual(got, []int{12, 4, 1}) {
		t.Errorf("Strides = %v", got)
	}
}
