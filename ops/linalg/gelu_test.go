package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// geluRef is the unfused GELU: t = x/c or x·c, Erf over all of t, then
// the product in the given association order, one float32 operation each.
func geluRef(x []float32, c float32, div bool, order int) []float32 {
	t := make([]float32, len(x))
	for i, v := range x {
		if div {
			t[i] = v / c
		} else {
			t[i] = v * c
		}
	}
	Erf(t)
	out := make([]float32, len(x))
	for i, v := range x {
		e1 := float32(t[i] + 1)
		switch order {
		case 0:
			p := float32(v * e1)
			out[i] = p * 0.5
		case 1:
			h := float32(e1 * 0.5)
			out[i] = v * h
		default:
			h := float32(v * 0.5)
			out[i] = h * e1
		}
	}
	return out
}

// TestGeluErfPrefix: the one-pass GELU equals the unfused node sequence
// bit for bit over its prefix and leaves the rest alone, on every kernel
// set, for sizes 1…67 and 517, both scalings and all three product orders,
// with NaN, infinities, signed zeros and values around erf's branch point.
func TestGeluErfPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
		0.7071, -0.7071, 0.70710677, 9, -9, 1e-30, 3e38}
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for n := 1; n <= 68; n++ {
			if n == 68 {
				n = 517
			}
			x := randVec(rng, n, 6)
			for i := 0; i < n && i < len(special); i += 2 {
				x[i*7%n] = special[i]
			}
			for _, div := range []bool{true, false} {
				c := float32(math.Sqrt2)
				if !div {
					c = float32(1 / math.Sqrt2)
				}
				for order := 0; order < 3; order++ {
					name := fmt.Sprintf("%s n=%d div=%v order=%d", kern, n, div, order)
					got := append([]float32(nil), x...)
					done := GeluErfPrefix(got, c, div, order)
					if done%8 != 0 || done > n || (done > 0 && done != n&^7) {
						t.Fatalf("%s: did %d elements", name, done)
					}
					if geluSIMD() && done != n&^7 {
						t.Fatalf("%s: SIMD set did %d of %d elements", name, done, n)
					}
					want := geluRef(x, c, div, order)
					for i := range got {
						w := want[i]
						if i >= done {
							w = x[i]
						}
						if math.Float32bits(got[i]) != math.Float32bits(w) && !(w != w && got[i] != got[i]) {
							t.Fatalf("%s: element %d (x = %v): %v, want %v", name, i, x[i], got[i], w)
						}
					}
				}
			}
		}
		restore()
	}
}
