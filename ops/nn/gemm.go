package nn

import "github.com/mtlrun/mtlrun/ops/linalg"

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major float32
// matrices: op(A) is m×k (A is stored k×m when transA), op(B) is k×n (B is
// stored n×k when transB), with leading dimensions lda, ldb, ldc. Products
// of one or two rows run as direct vector loops (packing B would cost as
// much as the product); the rest go to the packed SIMD kernels of
// ops/linalg (pure-Go fallback on other architectures or with the purego
// tag). Other kernel families may call it; it allocates nothing for m ≤ 2.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 || m <= 2 {
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			switch beta {
			case 1:
			case 0:
				clear(row)
			default:
				for j := range row {
					row[j] *= beta
				}
			}
		}
		if k == 0 || alpha == 0 {
			return
		}
		for i := 0; i < m; i++ {
			gemvRow(transA, transB, i, n, k, alpha, a, lda, b, ldb, c[i*ldc:i*ldc+n])
		}
		return
	}
	linalg.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemvRow adds alpha·op(A)[i,:]·op(B) to dst.
func gemvRow(transA, transB bool, i, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, dst []float32) {
	aAt := func(q int) float32 {
		if transA {
			return a[q*lda+i]
		}
		return a[i*lda+q]
	}
	if transB {
		// dst[j] += alpha · dot(op(A)[i,:], B[j,:])
		var arow []float32
		if !transA {
			arow = a[i*lda : i*lda+k]
		}
		for j := range dst {
			brow := b[j*ldb : j*ldb+k]
			var s0, s1, s2, s3 float32
			if arow != nil {
				q := 0
				for ; q+4 <= k; q += 4 {
					s0 += arow[q] * brow[q]
					s1 += arow[q+1] * brow[q+1]
					s2 += arow[q+2] * brow[q+2]
					s3 += arow[q+3] * brow[q+3]
				}
				for ; q < k; q++ {
					s0 += arow[q] * brow[q]
				}
			} else {
				for q, bv := range brow {
					s0 += a[q*lda+i] * bv
				}
			}
			dst[j] += alpha * (s0 + s1 + s2 + s3)
		}
		return
	}
	// dst += Σ_q alpha·op(A)[i,q] · B[q,:]
	for q := 0; q < k; q++ {
		s := alpha * aAt(q)
		if s == 0 {
			continue
		}
		brow := b[q*ldb : q*ldb+n]
		d := dst[:len(brow)]
		j := 0
		for ; j+4 <= len(brow); j += 4 {
			d[j] += s * brow[j]
			d[j+1] += s * brow[j+1]
			d[j+2] += s * brow[j+2]
			d[j+3] += s * brow[j+3]
		}
		for ; j < len(brow); j++ {
			d[j] += s * brow[j]
		}
	}
}
