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
// bit for bit over its prefix (all of x on a SIMD set, none on go) and
// leaves the rest alone, on every kernel set, for sizes 1…67 and 517, both scalings and all three product orders,
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
					if done != 0 && done != n {
						t.Fatalf("%s: did %d elements", name, done)
					}
					if geluSIMD() && done != n {
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

// TestGeluFloat64: GELU (the one-pass kernel, the unfused rest) on every
// kernel set over sizes 1…67 against float64 x·½·(1 + erf(x/√2)) and
// against the pure-Go path. Its error is erf's (≤ 3e-7 absolute) scaled
// by |x|/2 plus the float32 roundings of the products (a few ulps of the
// result): within 1e-7·|x| + 2.5e-7·|GELU| of float64 (measured: see the
// log), and within twice that of the go set.
func TestGeluFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 16))
	gelu := func(x []float32, div bool) {
		c := float32(math.Sqrt2)
		if !div {
			c = float32(1 / math.Sqrt2)
		}
		done := GeluErfPrefix(x, c, div, 0)
		copy(x[done:], geluRef(x[done:], c, div, 0))
	}
	var goOut [68][2][]float32
	var xs [68][]float32
	for n := 1; n <= 67; n++ {
		xs[n] = randVec(rng, n, 5)
		xs[n][n/2] = float32(rng.NormFloat64() * 20)
		restore, _ := setKernel(SetGo)
		for d, div := range []bool{true, false} {
			goOut[n][d] = append([]float32(nil), xs[n]...)
			gelu(goOut[n][d], div)
		}
		restore()
	}
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		var worst float64 // error / bound
		for n := 1; n <= 67; n++ {
			for d, div := range []bool{true, false} {
				got := append([]float32(nil), xs[n]...)
				gelu(got, div)
				for i, v := range xs[n] {
					x := float64(v)
					w := x * 0.5 * (1 + math.Erf(x/math.Sqrt2))
					bound := 1e-7*math.Abs(x) + 2.5e-7*math.Abs(w) + 1e-38
					d64 := math.Abs(float64(got[i]) - w)
					worst = math.Max(worst, d64/bound)
					if d64 > bound {
						t.Fatalf("%s n=%d div=%v: gelu(%g) = %g, float64 %g", kern, n, div, v, got[i], w)
					}
					if dg := math.Abs(float64(got[i]) - float64(goOut[n][d][i])); dg > 2*bound {
						t.Fatalf("%s n=%d div=%v: gelu(%g) = %g, go set %g", kern, n, div, v, got[i], goOut[n][d][i])
					}
				}
			}
		}
		restore()
		t.Logf("%s: largest error against float64: %.2f of the bound", kern, worst)
	}
}
