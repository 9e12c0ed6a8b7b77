package linalg

import (
	"math/rand/v2"
	"testing"
)

// TestTileGoMatchesNaive checks the pure-Go tile kernel directly (every
// build runs it, whatever kernel set is chosen) against the one-
// accumulator loop it must reproduce bit for bit: every row count, both A
// layouts, every column count up to 16 and odd k, including k of 1 and the
// odd step after the interleaved loop's pairs; C outside the tile (its
// padding columns, the rows past it) must stay untouched.
func TestTileGoMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 3))
	for _, k := range []int{1, 2, 3, 4, 5, 17, 64, 67} {
		for _, inter := range []bool{true, false} {
			for rows := 1; rows <= mr; rows++ {
				for cols := 1; cols <= nr; cols++ {
					lda, ldc := k+3, nr+5
					var a []float32
					if inter {
						a = randSlice(rng, k*mr)
					} else {
						a = randSlice(rng, (rows-1)*lda+k)
					}
					b := randSlice(rng, k*nr)
					for q := 0; q < k; q++ {
						clear(b[q*nr+cols : (q+1)*nr]) // packed panels are zero padded
					}
					c := randSlice(rng, (rows+1)*ldc)
					want := append([]float32(nil), c...)
					for r := 0; r < rows; r++ {
						for j := 0; j < cols; j++ {
							var s float32
							for q := 0; q < k; q++ {
								var av float32
								if inter {
									av = a[q*mr+r]
								} else {
									av = a[r*lda+q]
								}
								s += av * b[q*nr+j]
							}
							want[r*ldc+j] += s
						}
					}
					tileGo(rows, k, a, lda, inter, b, c, ldc, cols)
					for i := range c {
						if c[i] != want[i] {
							t.Fatalf("k=%d inter=%v rows=%d cols=%d: C[%d,%d] = %g, want %g", k, inter, rows, cols, i/ldc, i%ldc, c[i], want[i])
						}
					}
				}
			}
		}
	}
}
