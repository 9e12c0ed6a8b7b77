//go:build amd64 && !purego

package linalg

import "unsafe"

//go:noescape
func gelu8AVX2(x unsafe.Pointer, n int, c float32, div, order int)

// GeluErfPrefix applies GELU's exported erf form in place to the longest
// prefix of x whose length is a multiple of 8, in one vector pass, and
// returns that length (0 without a SIMD kernel set): x = the product of x,
// 1 + erf(t) and ½ associated as order says (0: (x·(1+e))·½, 1:
// x·((1+e)·½), 2: (x·½)·(1+e)), t = x/c when div, else x·c. Each step is
// the float32 operation the unfused Div/Mul, Erf, Add and Mul nodes do
// (Erf being this package's), so the results are theirs bit for bit; the
// caller does the rest of x the unfused way.
func GeluErfPrefix(x []float32, c float32, div bool, order int) int {
	n := len(x) &^ 7
	if !useAVX2 || n == 0 {
		return 0
	}
	gelu8AVX2(unsafe.Pointer(&x[0]), n, c, boolInt(div), order)
	return n
}

// geluSIMD reports whether GeluErfPrefix has a kernel in the set in use.
func geluSIMD() bool { return useAVX2 }
