//go:build !amd64 || purego

package linalg

// GeluErfPrefix is the one-pass GELU of gelu_amd64.go; without a SIMD
// kernel it does nothing and returns 0 (the caller's unfused-order loop
// covers all of x).
func GeluErfPrefix(x []float32, c float32, div bool, order int) int { return 0 }

func geluSIMD() bool { return false }
