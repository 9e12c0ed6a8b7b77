package linalg

import (
	"math/rand/v2"
	"testing"
)

// TestPackBRows: a matrix packed a row block at a time (blocks of uneven
// height, written out of order, over a buffer full of garbage) multiplies
// exactly as the one PackB packs whole, on every kernel set.
func TestPackBRows(t *testing.T) {
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		rng := rand.New(rand.NewPCG(5, 9))
		for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 7}, {7, 16, 33}, {13, 17, 67}, {6, 32, 400}, {67, 48, 801}} {
			m, n, k := sz[0], sz[1], sz[2]
			a := make([]float32, k*m) // transposed A, as the weight gradients use it
			b := make([]float32, k*n)
			for i := range a {
				a[i] = float32(rng.NormFloat64())
			}
			for i := range b {
				b[i] = float32(rng.NormFloat64())
			}
			want := make([]float32, m*n)
			Sgemm(true, false, m, n, k, 1, a, m, b, n, 0, want, n)
			buf := make([]float32, PackedSize(k, n))
			for i := range buf {
				buf[i] = float32(i%7) - 3
			}
			var p PackedB
			PackBRowsInit(&p, buf, k, n)
			// blocks from the last rows back, as a backward pass writes them
			for q1 := k; q1 > 0; {
				kk := min(q1, 1+rng.IntN(37))
				PackBRows(&p, q1-kk, kk, b[(q1-kk)*n:], n)
				q1 -= kk
			}
			got := make([]float32, m*n)
			SgemmPacked(true, m, 1, a, m, &p, 0, got, n)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s %dx%dx%d: element %d: %g, PackB gives %g", kern, m, n, k, i, got[i], want[i])
				}
			}
			// and against a float64 reference
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var s float64
					for q := 0; q < k; q++ {
						s += float64(a[q*m+i]) * float64(b[q*n+j])
					}
					if d := float64(got[i*n+j]) - s; d > 1e-3 || d < -1e-3 {
						t.Fatalf("%s %dx%dx%d: (%d,%d): %g, float64 %g", kern, m, n, k, i, j, got[i*n+j], s)
					}
				}
			}
		}
		restore()
	}
}

// TestSgemmPackedA: an A packed a column at a time (columns written out of
// order, over a buffer full of garbage) multiplies into C exactly as
// SgemmPacked multiplies the same transposed A, on every kernel set, for
// odd sizes (leftover rows 1…5, partial column panels), and within
// float64 rounding of the plain sum.
func TestSgemmPackedA(t *testing.T) {
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		rng := rand.New(rand.NewPCG(7, 3))
		for _, sz := range [][3]int{{1, 1, 1}, {5, 3, 2}, {6, 16, 7}, {7, 17, 33}, {11, 5, 64}, {13, 40, 67}, {66, 256, 192}, {67, 33, 384}} {
			m, n, k := sz[0], sz[1], sz[2]
			a := make([]float32, k*m) // A transposed: row q is column q of A
			b := make([]float32, k*n)
			c0 := make([]float32, m*n)
			for _, s := range [][]float32{a, b, c0} {
				for i := range s {
					s[i] = float32(rng.NormFloat64())
				}
			}
			pb := PackB(false, k, n, b, n)
			want := append([]float32(nil), c0...)
			SgemmPacked(true, m, 1, a, m, pb, 1, want, n)
			buf := make([]float32, PackedASize(m, k))
			for i := range buf {
				buf[i] = float32(i%5) - 2
			}
			for _, q := range rng.Perm(k) {
				PackAColumn(buf, m, k, q, a[q*m:(q+1)*m])
			}
			got := append([]float32(nil), c0...)
			SgemmPackedA(m, buf, pb, got, n)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					if got[i*n+j] != want[i*n+j] {
						t.Fatalf("%s %dx%dx%d: (%d,%d): %g, SgemmPacked gives %g", kern, m, n, k, i, j, got[i*n+j], want[i*n+j])
					}
					s := float64(c0[i*n+j])
					for q := 0; q < k; q++ {
						s += float64(a[q*m+i]) * float64(b[q*n+j])
					}
					if d := float64(got[i*n+j]) - s; d > 1e-3 || d < -1e-3 {
						t.Fatalf("%s %dx%dx%d: (%d,%d): %g, float64 %g", kern, m, n, k, i, j, got[i*n+j], s)
					}
				}
			}
		}
		restore()
	}
}
