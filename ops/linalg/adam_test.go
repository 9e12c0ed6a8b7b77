package linalg

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAdamUpdateMatchesReference: every kernel set against a float64
// evaluation of the same float32 steps (within a few float32 roundings)
// and bitwise against the pure-Go set, over odd lengths around the 8- and
// 16-lane widths, three steps in a row (moments carried over).
func TestAdamUpdateMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const beta1, beta2, lr, epsilon = 0.9, 0.999, 1e-3, 1e-8
	for _, n := range []int{1, 2, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 47, 63, 64, 65, 67, 1000} {
		p0 := randVec(rng, n, 1)
		grads := [][]float32{randVec(rng, n, 1), randVec(rng, n, 1e-3), randVec(rng, n, 10)}
		grads[0][0] = 0 // v stays 0 at step 1: √0 / bc2 + eps
		var goP, goM, goV []float32
		for _, kern := range kernels() {
			restore, _ := setKernel(kern)
			p, m, v := append([]float32(nil), p0...), make([]float32, n), make([]float32, n)
			for s, g := range grads {
				step := s + 1
				bc1, bc2 := 1-math.Pow(beta1, float64(step)), math.Sqrt(1-math.Pow(beta2, float64(step)))
				pw, mw, vw := append([]float32(nil), p...), append([]float32(nil), m...), append([]float32(nil), v...)
				AdamUpdate(p, g, m, v, beta1, 1-beta1, beta2, 1-beta2, float32(bc2), epsilon, float32(lr/bc1))
				for i := range p {
					gi := float64(g[i])
					me := float64(mw[i])*float64(float32(beta1)) + gi*float64(float32(1-beta1))
					ve := float64(vw[i])*float64(float32(beta2)) + float64(float32(1-beta2))*gi*gi
					pe := float64(pw[i]) - float64(float32(lr/bc1))*me/(math.Sqrt(ve)/float64(float32(bc2))+epsilon)
					// ≤ 6 roundings of ~6e-8 of the terms' magnitudes
					check := func(name string, got, want, scale float64) {
						if d := math.Abs(got - want); d > 1e-6*scale {
							t.Fatalf("%s n=%d step %d: %s[%d] = %v, float64 %v", kern, n, step, name, i, got, want)
						}
					}
					check("m", float64(m[i]), me, math.Abs(float64(mw[i]))+math.Abs(gi))
					check("v", float64(v[i]), ve, ve)
					check("p", float64(p[i]), pe, math.Abs(float64(pw[i]))+math.Abs(pe-float64(pw[i])))
				}
			}
			restore()
			if goP == nil {
				goP, goM, goV = p, m, v
				continue
			}
			for i := range p {
				if math.Float32bits(p[i]) != math.Float32bits(goP[i]) || math.Float32bits(m[i]) != math.Float32bits(goM[i]) || math.Float32bits(v[i]) != math.Float32bits(goV[i]) {
					t.Fatalf("%s n=%d: p, m, v[%d] = %v, %v, %v, pure Go %v, %v, %v", kern, n, i, p[i], m[i], v[i], goP[i], goM[i], goV[i])
				}
			}
		}
	}
}

// TestAdamUpdateChecksOperands: short operands panic with the sizes.
func TestAdamUpdateChecksOperands(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	AdamUpdate(make([]float32, 4), make([]float32, 4), make([]float32, 3), make([]float32, 4), 0.9, 0.1, 0.999, 0.001, 1, 1e-8, 1e-3)
}

// BenchmarkAdamUpdate: one Adam step over 16384 parameters (the seed
// model's recurrent weights, most of its parameters) on every kernel set.
func BenchmarkAdamUpdate(b *testing.B) {
	const n = 16384
	rng := rand.New(rand.NewPCG(1, 2))
	p, g, m, v := randVec(rng, n, 1), randVec(rng, n, 1), make([]float32, n), make([]float32, n)
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		b.Run(kern, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				AdamUpdate(p, g, m, v, 0.9, 0.1, 0.999, 0.001, 0.03, 1e-8, 1e-6)
			}
		})
		restore()
	}
}
