package linalg

import "fmt"

// Epilogue is an elementwise pass SgemmPackedEpi applies to C once C's
// sums are complete: Bias (if not nil, n values) added to every row, then
// GELU's exported erf form as GeluErfPrefix computes it (Scale its c,
// Div and Order its div and order). The tiles run it on each column strip
// right after the strip's last k block, while the strip is in L1, instead
// of a separate pass that reads the whole output back from L2 or L3.
// Only where GeluEpilogue reports a kernel.
type Epilogue struct {
	Bias  []float32
	Scale float32
	Div   bool
	Order int
}

// SgemmPackedEpi is SgemmPackedWork (alpha 1, A not transposed) followed
// by epi over the m×n C: bitwise C = act(op(A)·B + beta·C + Bias) as a
// product, a bias pass (row[x] + bias[x]) and GeluErfPrefix would give
// it. It panics without a kernel (see GeluEpilogue).
func SgemmPackedEpi(m int, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int, work []float32, epi *Epilogue) {
	if !GeluEpilogue() {
		panic("linalg: SgemmPackedEpi without a GELU kernel")
	}
	if epi.Bias != nil && len(epi.Bias) < pb.N || epi.Order < 0 || epi.Order > 2 {
		panic(fmt.Sprintf("linalg: SgemmPackedEpi epilogue of bias %d (N %d), order %d", len(epi.Bias), pb.N, epi.Order))
	}
	sgemmWork(false, m, 1, a, lda, pb, beta, c, ldc, work, epi)
}

// GeluEpilogue reports whether SgemmPackedEpi has a kernel in the set in
// use (the SIMD sets of GeluErfPrefix).
func GeluEpilogue() bool { return geluSIMD() }

// EpilogueBiasInTiles reports whether SgemmPackedEpi with beta 0 adds
// Bias in the tiles of a one-k-block product (C is then neither cleared
// nor read: the AVX2 group tiles), so a caller need not write a bias into
// C first.
func EpilogueBiasInTiles() bool { return packInPlace() }
