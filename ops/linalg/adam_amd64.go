//go:build amd64 && !purego

package linalg

// adamVec runs AdamUpdate's vector kernel over the first elements (16 at
// a time with AVX-512, 8 with AVX2) and returns how many it did.
func adamVec(p, g, m, v []float32, b1, c1, b2, c2, bc2, eps, nlr float32) int {
	n := len(p)
	switch {
	case useAVX512 && n >= 16:
		n &^= 15
		adam16AVX512(&p[0], &g[0], &m[0], &v[0], n, b1, c1, b2, c2, bc2, eps, nlr)
	case useAVX2 && n >= 8:
		n &^= 7
		adam8AVX2(&p[0], &g[0], &m[0], &v[0], n, b1, c1, b2, c2, bc2, eps, nlr)
	default:
		return 0
	}
	return n
}

// adam8AVX2 and adam16AVX512 do n elements (a multiple of 8 or 16).
//
//go:noescape
func adam8AVX2(p, grad, m, v *float32, n int, b1, c1, b2, c2, bc2, eps, nlr float32)

//go:noescape
func adam16AVX512(p, grad, m, v *float32, n int, b1, c1, b2, c2, bc2, eps, nlr float32)
