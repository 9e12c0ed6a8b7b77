package linalg

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestActivationSetsOddSizes: every kernel set's Sigmoid, Tanh and Erf
// over every length 1..67 (the vector loops and the scalar tail at every
// split) against the scalar functions (the pure-Go path) and float64.
// The vector and scalar forms run the same polynomials; they differ only
// in rounding (fused multiply-adds, the order of the tail), so they agree
// within 8 float32 ulps (measured: NEON 2, AVX-512 4), and both stay within the float64 bounds of
// TestActivationsAccuracy and TestErfAccuracy.
func TestActivationSetsOddSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	fns := []struct {
		name   string
		vec    func([]float32)
		scalar func(float32) float32
		ref    func(float64) float64
		abs    float64 // absolute bound against float64
	}{
		{"sigmoid", Sigmoid, sigmoidf, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }, 3e-7},
		{"tanh", Tanh, tanhf, math.Tanh, 3e-7},
		{"erf", Erf, erff, math.Erf, 3e-7},
	}
	for _, kern := range kernels() {
		var worst [3]float64 // ulps between the set and the scalar function
		restore, _ := setKernel(kern)
		for n := 1; n <= 67; n++ {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 3)
			}
			for fi, f := range fns {
				got := append([]float32(nil), x...)
				f.vec(got)
				for i, v := range x {
					want := f.scalar(v)
					if d := actUlps(got[i], want); d > 8 {
						t.Fatalf("%s %s n=%d [%d] (%g): %g, scalar %g (%d ulps)", kern, f.name, n, i, v, got[i], want, d)
					} else {
						worst[fi] = math.Max(worst[fi], float64(d))
					}
					if d := math.Abs(float64(got[i]) - f.ref(float64(v))); d > f.abs {
						t.Fatalf("%s %s n=%d [%d] (%g): %g, float64 %g", kern, f.name, n, i, v, got[i], f.ref(float64(v)))
					}
				}
			}
		}
		restore()
		t.Logf("%s: largest difference from the scalar functions (ulps): sigmoid %g, tanh %g, erf %g", kern, worst[0], worst[1], worst[2])
	}
}

// actUlps is the distance between two finite float32s of the same sign in
// units in the last place (large when the signs differ).
func actUlps(a, b float32) int64 {
	d := int64(int32(math.Float32bits(a))) - int64(int32(math.Float32bits(b)))
	if d < 0 {
		d = -d
	}
	return d
}
