package linalg

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSgemmPackedEpiBits: the epilogue run per column strip gives bit for
// bit the product, then a bias pass, then the one-pass GELU over the whole
// output, on every set with a kernel, over odd sizes (partial strips and
// vectors, leftover rows, several k blocks and row blocks), beta 0 and 1,
// with and without a bias (added by the epilogue, or with beta 0 and one
// k block by the AVX2 tiles), every variant; and beta 0 never reads C.
func TestSgemmPackedEpiBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 3))
	ran := false
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		if !GeluEpilogue() {
			restore()
			continue
		}
		ran = true
		for _, sz := range [][3]int{{1, 1, 1}, {1, 67, 5}, {4, 24, 7}, {5, 15, 3}, {12, 33, 17}, {13, 41, 385}, {16, 57, 9}, {30, 67, 770}, {150, 25, 40}} {
			m, n, k := sz[0], sz[1], sz[2]
			lda, ldc := k+3, n+5
			a, b := randSlice(rng, m*lda), randSlice(rng, k*n)
			for i := range a {
				a[i] *= 3 // reach erf's outer intervals
			}
			bias := randSlice(rng, n)
			pb := PackB(false, k, n, b, n)
			c0 := randSlice(rng, m*ldc)
			c0[0], c0[len(c0)-1] = float32(math.NaN()), float32(math.Inf(1)) // beta 0 must not read them
			// plain beta 0 (the AVX2 group tiles overwrite C without
			// clearing it) against clearing C and adding the product
			want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
			clearRows(want, m, n, ldc)
			SgemmPacked(false, m, 1, a, lda, pb, 1, want, ldc)
			SgemmPacked(false, m, 1, a, lda, pb, 0, got, ldc)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s m=%d n=%d k=%d beta 0: C[%d] = %g, want %g", kern, m, n, k, i, got[i], want[i])
				}
			}
			for v := 0; v < 12; v++ {
				epi := Epilogue{Scale: 1.4142135, Div: v%6 >= 3, Order: v % 3}
				if v >= 6 {
					epi.Bias = bias
				}
				for _, beta := range []float32{0, 1} {
					want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
					if beta == 0 {
						clearRows(want, m, n, ldc)
					}
					SgemmPacked(false, m, 1, a, lda, pb, 1, want, ldc)
					for r := 0; r < m; r++ {
						row := want[r*ldc : r*ldc+n]
						if epi.Bias != nil {
							for x := range row {
								row[x] = row[x] + bias[x]
							}
						}
						GeluErfPrefix(row, epi.Scale, epi.Div, epi.Order)
					}
					SgemmPackedEpi(m, a, lda, pb, beta, got, ldc, nil, &epi)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%s m=%d n=%d k=%d variant %d beta %g: C[%d] = %g, unfused %g", kern, m, n, k, v, beta, i, got[i], want[i])
						}
					}
				}
			}
		}
		restore()
	}
	if !ran {
		t.Skip("no kernel set here has the GELU epilogue")
	}
}

// clearRows zeroes the m×n matrix in c (rows ldc apart), not the padding.
func clearRows(c []float32, m, n, ldc int) {
	for r := 0; r < m; r++ {
		clear(c[r*ldc : r*ldc+n])
	}
}
