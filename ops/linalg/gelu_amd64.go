//go:build amd64 && !purego

package linalg

import "unsafe"

// GeluErfPrefix applies GELU's exported erf form in place to a prefix of
// x, in one vector pass, and returns its length: all of x on the SIMD
// sets (the last partial vector under a mask), 0 without one. x = the
// product of x, 1 + erf(t) and ½ associated as order says (0: (x·(1+e))·½,
// 1: x·((1+e)·½), 2: (x·½)·(1+e)), t = x/c when div, else x·c. Each step is
// the float32 operation the unfused Div/Mul, Erf, Add and Mul nodes do
// (Erf being this package's), so the results are theirs bit for bit; the
// caller does the rest of x the unfused way.
func GeluErfPrefix(x []float32, c float32, div bool, order int) int {
	n := len(x)
	if n == 0 || !useAVX2 {
		return 0
	}
	v := 3*boolInt(div) + order
	if useAVX512 {
		geluErfAVX512(unsafe.Pointer(&x[0]), n, c, v)
	} else {
		geluErfAVX2(unsafe.Pointer(&x[0]), n, c, v)
	}
	return n
}

// geluSIMD reports whether GeluErfPrefix has a kernel in the set in use.
func geluSIMD() bool { return useAVX2 }
