package linalg

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSgemmSetsMatchGo: every assembly kernel set (avx2, avx512, neon)
// gives what the pure-Go path gives, up to summation rounding, over odd
// sizes with full, leftover and partial tiles and more than one k-block.
func TestSgemmSetsMatchGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 7))
	for _, kern := range kernels() {
		if kern == SetGo {
			continue
		}
		for _, sz := range [][3]int{{1, 1, 1}, {5, 15, 3}, {6, 16, 8}, {7, 17, 9}, {13, 33, 385}, {19, 50, 770}} {
			m, n, k := sz[0], sz[1], sz[2]
			a, b := randSlice(rng, m*k), randSlice(rng, k*n)
			c0 := randSlice(rng, m*n)
			want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
			restore, _ := setKernel(SetGo)
			Sgemm(false, false, m, n, k, 1, a, k, b, n, 0.5, want, n)
			restore()
			restore, _ = setKernel(kern)
			Sgemm(false, false, m, n, k, 1, a, k, b, n, 0.5, got, n)
			restore()
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > 2e-6*math.Sqrt(float64(k))*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%s m=%d n=%d k=%d: C[%d] = %g, go gives %g", kern, m, n, k, i, got[i], want[i])
				}
			}
		}
	}
}
