// Package tanhcoef holds the rational tanh of ops/linalg's fused cells:
// tanh(x) = x·P(x²)/Q(x²) for |x| ≤ Clamp, P and Q of degree 4 with
// P(0) = Q(0) = 1, fitted by scripts/fit_tanh.py (Lawson-reweighted
// least squares against mpmath; relative error 2.1e-8 in exact
// arithmetic, at most 5.4 ulp in float32 with u = x·x, both polynomials
// by Horner's rule in fused multiply-adds, x·P and one division). The
// cells' sigmoid is the same function: σ(x) = 0.5 + 0.5·tanh(x/2). The
// amd64 (asmgen) and arm64 (neongen) generators both take them from
// here, and the kernels of every set compute the same bits.
package tanhcoef

// P[k] and Q[k] are the coefficients of u^k (float32 bits).
var (
	P = [5]uint32{0x3f800000, 0x3e090592, 0x3b651656, 0x37ace1dc, 0x32656eeb}
	Q = [5]uint32{0x3f800000, 0x3eef2d6e, 0x3cd3fc03, 0x39ac432b, 0x3550c070}
)

// ClampBits is 9 (float32 bits): beyond it tanh is within an ulp of ±1.
const ClampBits = 0x41100000
