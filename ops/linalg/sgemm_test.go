package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/ops/internal/opstest"
)

func randSlice(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// kernels lists the kernel sets the tests run: every set this machine and
// build can run, up to the one chosen at init (so MTLRUN_KERNELS=avx2 also
// caps the tests; MTLRUN_TEST_SETS narrows them). Each is checked against
// a naive or float64 reference, so CI covers asm and pure Go alike.
// TestMain prints the list.
func kernels() []string {
	var out []string
	for _, k := range kernelSets {
		if cpuHas(k) && testSetWanted(k) {
			out = append(out, k)
		}
		if k == testCeiling {
			break
		}
	}
	return out
}

func TestSgemmMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{1, 2, 3, 5, 6, 7, 13, 16, 17, 31, 33, 48, 67}
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for _, m := range sizes {
			for _, n := range sizes {
				for _, k := range []int{1, 4, 17, 67, 400} {
					for _, tr := range [][2]bool{{false, false}, {true, false}, {false, true}, {true, true}} {
						ta, tb := tr[0], tr[1]
						lda, ldb, ldc := k+1, n+2, n+3
						if ta {
							lda = m + 1
						}
						if tb {
							ldb = k + 2
						}
						rowsA, rowsB := m, k
						if ta {
							rowsA = k
						}
						if tb {
							rowsB = n
						}
						a, b := randSlice(rng, rowsA*lda), randSlice(rng, rowsB*ldb)
						c := randSlice(rng, m*ldc)
						want := append([]float32(nil), c...)
						// alpha 1 (every other case) takes the paths that
						// read A in place or skip the scaling
						alpha, beta := float32(0.7), float32(-0.3)
						if (m+n+k)%2 == 0 {
							alpha = 1
						}
						opstest.NaiveGemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, want, ldc)
						Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
						for i := 0; i < m; i++ {
							for j := 0; j < n; j++ {
								g, w := c[i*ldc+j], want[i*ldc+j]
								if math.Abs(float64(g-w)) > 1e-4*math.Sqrt(float64(k))*(1+math.Abs(float64(w))) {
									t.Fatalf("%s m=%d n=%d k=%d ta=%v tb=%v: C[%d,%d] = %g, want %g", kern, m, n, k, ta, tb, i, j, g, w)
								}
							}
							// padding columns of C must be untouched
							for j := n; j < ldc; j++ {
								if c[i*ldc+j] != want[i*ldc+j] {
									t.Fatalf("%s: wrote outside C at [%d,%d]", kern, i, j)
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

func BenchmarkSgemm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kern := range kernels() {
		for _, sz := range [][3]int{{1, 256, 64}, {64, 256, 64}, {64, 128, 20}, {256, 256, 256}} {
			m, n, k := sz[0], sz[1], sz[2]
			a, bm, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
			pb := PackB(false, k, n, bm, n)
			b.Run(fmt.Sprintf("%s/%dx%dx%d", kern, m, n, k), func(b *testing.B) {
				restore, _ := setKernel(kern)
				defer restore()
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					SgemmPacked(false, m, 1, a, k, pb, 0, c, n)
				}
				b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestRowResultIndependentOfBlock: a row computed alone (one-row tile)
// equals the same row computed inside a block of six or a leftover tile of
// 1–5 rows (AVX2: a 4-row group tile or one of 1–3 rows, 8–24 columns
// spanning two packed panels), bit for bit, in full and partial column
// panels, over one k block and several, for every kernel set — so
// batching never changes an answer.
func TestRowResultIndependentOfBlock(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for _, k := range []int{1, 2, 7, 64, 65, 2*kc + 5} {
			for _, mn := range [][2]int{{7, 40}, {8, 37}, {9, 16}, {10, 5}, {11, 24}, {13, 40}, {16, 70}} {
				m, n := mn[0], mn[1]
				a, b := randSlice(rng, m*k), randSlice(rng, k*n)
				pb := PackB(false, k, n, b, n)
				all := make([]float32, m*n)
				SgemmPacked(false, m, 1, a, k, pb, 0, all, n)
				for r := 0; r < m; r++ {
					one := make([]float32, n)
					SgemmPacked(false, 1, 1, a[r*k:(r+1)*k], k, pb, 0, one, n)
					for j := range one {
						if one[j] != all[r*n+j] {
							t.Fatalf("%s k=%d m=%d n=%d: row %d col %d alone %g, in block %g", kern, k, m, n, r, j, one[j], all[r*n+j])
						}
					}
				}
			}
		}
		restore()
	}
}
