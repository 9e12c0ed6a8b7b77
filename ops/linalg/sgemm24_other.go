//go:build !amd64 || purego

package linalg

// sgemmGroups: the 4×24 group tiles are AVX2 assembly (sgemm24_amd64.go);
// elsewhere the 6-row tiles do every product.
func sgemmGroups(m, n, k int, a []float32, lda int, pb *PackedB, c []float32, ldc int, epi *Epilogue, overwrite bool) bool {
	return false
}

func groupsTake(m int) bool { return false }
