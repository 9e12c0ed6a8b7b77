package linalg

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestTileGoMatchesNaive checks the pure-Go tile kernel directly (every
// build runs it, whatever kernel set is chosen) against the one-
// accumulator loop it must reproduce bit for bit: every row count, both A
// layouts, every column count up to 16 and odd k, including k of 1 and the
// odd step before the blocks' pairs; C outside the tile (its padding
// columns, the rows past it) must stay untouched. The reference rounds
// a·b + s once or twice as the build's tile does (tileFuses): the compiler
// fuses the blocks' multiply-adds under GOAMD64=v3 and on arm64, riscv64,
// ppc64le and s390x, and a plain Go reference loop need not be compiled the
// same way (under v3 it was not: MULSS with a folded load, then ADDSS).
func TestTileGoMatchesNaive(t *testing.T) {
	fused := tileFuses()
	t.Logf("tile blocks fuse a·b + s: %v", fused)
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
								s = madd(fused, av, b[q*nr+j], s)
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

// madd is s + a·b rounded once (fused, as where the compiler turns a·b + s
// into one FMA: GOAMD64=v3, arm64, riscv64, ppc64le, s390x) or twice (the
// explicit conversion keeps the product rounded on its own, as Go's spec
// requires). float64 holds a·b exactly, so math.FMA's one rounding to
// float64 then float32 differs from a float32 FMA only on a double-rounding
// tie, which the test's data would have to hit exactly.
func madd(fused bool, a, b, s float32) float32 {
	if fused {
		return float32(math.FMA(float64(a), float64(b), float64(s)))
	}
	return s + float32(a*b)
}

// tileFuses reports whether this build's tile rounds a·b + s once: two k
// steps, 1·(−1) then (1 + 2⁻¹²)², whose product rounds to 1 + 2⁻¹¹ alone
// but leaves 2⁻¹¹ + 2⁻²⁴ after −1 when fused. Whether the compiler fuses is
// its choice (it fuses the blocks' loops under GOAMD64=v3 but not a loop
// whose multiply takes a folded load), so the reference follows the tile.
func tileFuses() bool {
	x := float32(1 + 1.0/4096)
	a := make([]float32, 2*mr)
	b := make([]float32, 2*nr)
	for r := 0; r < mr; r++ {
		a[r], a[mr+r] = 1, x
	}
	for j := 0; j < nr; j++ {
		b[j], b[nr+j] = -1, x
	}
	c := make([]float32, mr*nr)
	tileGo(mr, 2, a, 0, true, b, c, nr, nr)
	return c[0] != 1.0/2048
}
