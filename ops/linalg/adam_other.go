//go:build !amd64 || purego

package linalg

// adamVec has no vector kernel here: AdamUpdate's Go loop does it all.
func adamVec(p, g, m, v []float32, b1, c1, b2, c2, bc2, eps, nlr float32) int { return 0 }
