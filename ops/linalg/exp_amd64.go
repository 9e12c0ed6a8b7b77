//go:build amd64 && !purego

package linalg

import "unsafe"

// expVec: the SIMD kernels (exp_amd64.s) cover the whole slice, the last
// partial vector under a mask.
func expVec(x []float32) {
	switch {
	case len(x) == 0:
	case useAVX512:
		expAVX512(unsafe.Pointer(&x[0]), len(x))
	case useAVX2:
		expAVX2(unsafe.Pointer(&x[0]), len(x))
	default:
		expGo(x)
	}
}
