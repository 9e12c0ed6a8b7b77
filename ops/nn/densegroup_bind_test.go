package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestDenseGroupBoundMatchesDense: a group bound to its heads' weights
// (Bind) gives every head's Dense output bit for bit, on the A it was bound
// with and on A's of other row counts (one and several k-blocks, head
// widths over one and several panels, both transB, every activation, with
// and without C), and allocates nothing at steady state with an arena.
func TestDenseGroupBoundMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	for _, k := range []int{1, 64, 385} {
		for _, ns := range [][]int{{1, 1}, {1, 5, 1, 8}, {33, 2}} {
			for transB := 0; transB <= 1; transB++ {
				for shift := range activations {
					c := makeCase(rng, []int{1}, k, ns, transB, shift%3, shift)
					op := newGroup(t, groupAttrs(transB, c.acts, c.alphas), len(ns), 1, nil)
					b, ok := op.(*denseGroup).Bind(c.inputs())
					if !ok {
						t.Fatalf("K%d N%v: Bind refused constant weights", k, ns)
					}
					var ar ops.Arena
					for _, m := range []int{1, 5, 7, 1} {
						c.a = randF32(rng, m, k)
						want := c.perHead(t, 1)
						ar.Reset()
						got, err := b.RunWith(&ar, c.inputs())
						if err != nil {
							t.Fatal(err)
						}
						for i := range want {
							sameBits(t, fmt.Sprintf("bound K%d N%v transB%d acts%v M%d head %d", k, ns, transB, c.acts, m, i), got[i], want[i])
						}
					}
					in := c.inputs()
					if raceEnabled {
						continue // the race detector's pools allocate
					}
					if n := testing.AllocsPerRun(10, func() {
						ar.Reset()
						if _, err := b.RunWith(&ar, in); err != nil {
							t.Fatal(err)
						}
					}); n != 0 {
						t.Errorf("K%d N%v: a bound run allocates %v times", k, ns, n)
					}
				}
			}
		}
	}
}

// TestDenseGroupBoundFallsBack: a bound group given other weights (another
// tensor, or the bound tensor with other data), another bias, or inputs
// that do not fit runs the general path: the same results and errors.
func TestDenseGroupBoundFallsBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	c := makeCase(rng, []int{3}, 16, []int{1, 4}, 0, 0, 2)
	op := newGroup(t, groupAttrs(0, c.acts, c.alphas), 2, 1, nil)
	if _, ok := newGroup(t, groupAttrs(0, c.acts, c.alphas), 2, 1, make([]bool, 5)).(*denseGroup).Bind(c.inputs()); ok {
		t.Error("Bind accepted weights that are not constant")
	}
	b, ok := op.(*denseGroup).Bind(c.inputs())
	if !ok {
		t.Fatal("Bind refused")
	}
	check := func(what string) {
		t.Helper()
		in := c.inputs()
		// a fresh group: the bound one's cache must not serve it
		want, werr := newGroup(t, groupAttrs(0, c.acts, c.alphas), 2, 1, make([]bool, 5)).Run(in)
		got, gerr := b.Run(in)
		if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
			t.Fatalf("%s: bound error %v, general error %v", what, gerr, werr)
		}
		for i := range want {
			sameBits(t, fmt.Sprintf("%s head %d", what, i), got[i], want[i])
		}
	}
	w1 := c.ws[1]
	c.ws[1] = randF32(rng, 16, 4)
	check("another W tensor")
	c.ws[1] = w1
	saved := w1.Data
	w1.Data = randF32(rng, 16, 4).Data
	check("the bound W with other data")
	w1.Data = saved
	c.cs[0] = randF32(rng, 1, 1)
	check("another C")
	c.a = randF32(rng, 3, 15)
	check("A of another inner size")
	c.a = tensor.From([]int{16}, make([]float32, 16))
	check("A of another rank")
}
