package linalg

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// packARef is the layout packA must produce, written the obvious way:
// full 6-row blocks interleaved as kk×6 panels (element (q, r) at q*6+r),
// then each leftover row as a contiguous kk-vector, all scaled by alpha
// with one float32 multiply per element (alpha == 1 copies, which is the
// same bits: 1·v == v for every float32 including NaN payloads we care
// about here).
func packARef(transA bool, m, kk, q0 int, alpha float32, a []float32, lda int, dst []float32) {
	at := func(i, q int) float32 {
		if transA {
			return a[q*lda+i]
		}
		return a[i*lda+q]
	}
	full := m / mr
	for i := 0; i < full; i++ {
		for q := 0; q < kk; q++ {
			for r := 0; r < mr; r++ {
				dst[i*mr*kk+q*mr+r] = alpha * at(i*mr+r, q0+q)
			}
		}
	}
	off := full * mr * kk
	for r := full * mr; r < m; r++ {
		for q := 0; q < kk; q++ {
			dst[off+q] = alpha * at(r, q0+q)
		}
		off += kk
	}
}

// TestPackAMatchesRef checks packA bit for bit against packARef over odd
// sizes, both transposes, alpha 1 and not, a nonzero k-offset and padded
// leading dimensions, and that it writes nothing past its panels — for
// every kernel set, so both the assembly block transpose and the Go loop
// are checked.
func TestPackAMatchesRef(t *testing.T) {
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		testPackA(t, kern)
		restore()
	}
}

func testPackA(t *testing.T, kern string) {
	rng := rand.New(rand.NewPCG(3, 4))
	for m := 1; m <= 67; m++ {
		for _, kk := range []int{1, 2, 3, 5, 7, 15, 16, 17, 20, 31, 32, 33, 47, 48, 64, 67, 128} {
			for _, transA := range []bool{false, true} {
				for _, alpha := range []float32{1, 0.7, -3} {
					q0 := m % 3 // a k-block that does not start at column 0
					cols, rows := q0+kk, m
					if transA {
						cols, rows = m, q0+kk
					}
					lda := cols + m%5
					a := randSlice(rng, rows*lda)
					size := m * kk
					want := make([]float32, size+8)
					got := make([]float32, size+8)
					for i := range got {
						got[i] = 42 // sentinel: packA must overwrite every slot it owns
						want[i] = 42
					}
					packARef(transA, m, kk, q0, alpha, a, lda, want)
					packA(transA, m, kk, q0, alpha, a, lda, got)
					for i := range want {
						if got[i] != want[i] && !(got[i] != got[i] && want[i] != want[i]) {
							t.Fatalf("%s m=%d kk=%d q0=%d transA=%v alpha=%g: dst[%d] = %g, want %g", kern, m, kk, q0, transA, alpha, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// BenchmarkPackA times packing the A panels of the shapes mlp4 runs at
// batch 64 (64×20 and 64×128, not transposed, alpha 1), a bigger block,
// and the alpha ≠ 1 and transposed paths.
func BenchmarkPackA(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct {
		m, k   int
		transA bool
		alpha  float32
	}{
		{64, 20, false, 1}, {64, 128, false, 1}, {256, 256, false, 1},
		{64, 128, false, 0.5}, {64, 128, true, 1},
	} {
		kk := min(c.k, kc)
		a := randSlice(rng, c.m*c.k)
		lda := c.k
		if c.transA {
			lda = c.m
		}
		dst := make([]float32, WorkSize(c.m, c.k))
		b.Run(fmt.Sprintf("%dx%d/transA=%v/alpha=%g", c.m, c.k, c.transA, c.alpha), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(c.m * kk * 4))
			for i := 0; i < b.N; i++ {
				packA(c.transA, c.m, kk, 0, c.alpha, a, lda, dst)
			}
		})
	}
}
