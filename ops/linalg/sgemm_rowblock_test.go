package linalg

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/ops/internal/opstest"
)

// TestSgemmRowBlocks: products taller than RowBlock (run block by block)
// match the naive product on every kernel set, A plain and transposed,
// alpha 1 (in-place tiles) and not, beta 0, 1 and other.
func TestSgemmRowBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 1))
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for _, m := range []int{RowBlock + 1, 2*RowBlock + 7} {
			for _, n := range []int{5, 37} {
				for _, k := range []int{17, 400} {
					for _, ta := range []bool{false, true} {
						for _, ab := range [][2]float32{{1, 0}, {1, 1}, {0.7, -0.3}} {
							alpha, beta := ab[0], ab[1]
							lda, ldb, ldc := k+1, n+2, n+3
							rowsA := m
							if ta {
								lda, rowsA = m+1, k
							}
							a, b := randSlice(rng, rowsA*lda), randSlice(rng, k*ldb)
							c := randSlice(rng, m*ldc)
							want := append([]float32(nil), c...)
							opstest.NaiveGemm(ta, false, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc)
							Sgemm(ta, false, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
							for i := range c {
								if g, w := c[i], want[i]; math.Abs(float64(g-w)) > 1e-4*math.Sqrt(float64(k))*(1+math.Abs(float64(w))) {
									t.Fatalf("%s m=%d n=%d k=%d ta=%v alpha=%v beta=%v: C element %d = %g, want %g", kern, m, n, k, ta, alpha, beta, i, g, w)
								}
							}
						}
					}
				}
			}
		}
		restore()
	}
}
