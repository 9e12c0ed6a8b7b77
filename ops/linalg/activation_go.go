package linalg

import "math"

// The pure-Go vector activations (what Sigmoid, Tanh and Erf run without
// SIMD, and the scalar tails of the SIMD versions). They are float32
// throughout: no float64 math calls, the rounding of e^x's range reduction
// done by adding 1.5·2²³ (the float32 sum rounds to an integer, read back
// from its bits), 2ⁿ built from bits, and one inlined polynomial per
// element, so a loop runs without calls or float64 conversions.
//
// e^x = 2ⁿ·(1 + p(r)) with n = round(x·log₂e), r = x - n·ln2 (in two
// parts, |r| ≤ ln2/2) and p(r) = r + r²·P(r), P Cephes' degree-5 fit of
// (e^r - 1 - r)/r² (the expf polynomial). p is e^r - 1 itself, so
// e^x - 1 = 2ⁿ·p + (2ⁿ - 1) keeps its relative accuracy near 0, which is
// what tanh needs.
//
//   - sigmoid(x) = (1 + tanh(x/2))/2 with tanh's polynomial below
//     |x| = 1.25 (no exp, no division where most gate inputs lie), else
//     1/(1 + e^-x);
//   - tanh(x): below |x| = 0.625 tanhf's odd polynomial, beyond it
//     sign(x)·E/(E + 2) with E = e^(2|x|) - 1 (|x| clamped to 9, where
//     tanh is 1 in float32);
//   - erf: erff's table of polynomials (activation.go), no exp.
//
// Error bounds against float64 (math.Exp, math.Tanh, math.Erf), tested by
// TestGoActivationsAccuracy over a 1/1024 grid on [-12, 12], the clamp and
// branch edges and special values: sigmoid within 2e-7 relative (measured
// 1.06e-7; or 1e-37 absolute, deep in the underflow), tanh within 3e-7
// relative (measured 9.7e-8), erf within 3e-7 absolute (measured 6.2e-8).
// NaN stays NaN; +Inf gives 1, 1, 1 and -Inf a subnormal (exp's input
// clamp, as on the SIMD sets), -1, -1.

const (
	roundMagic = 12582912   // 1.5·2²³
	roundBits  = 0x4B400000 // math.Float32bits(roundMagic)
	signBit    = 1 << 31
	tanhClamp  = 9 // tanh(9) rounds to 1 in float32
	expP0      = 1.9875691500e-4
	expP1      = 1.3981999507e-3
	expP2      = 8.3334519073e-3
	expP3      = 4.1665795894e-2
	expP4      = 1.6666665459e-1
	expP5      = 5.0000001201e-1
)

// expReduce returns r = x - n·ln2 and s = 2ⁿ for n = round(x·log₂e), x
// already clamped to [expLo, expHi] (NaN passes through to r); then
// e^x = s·(1 + expm1Poly(r)). Two functions, not one, so that each fits
// the inliner's budget.
func expReduce(x float32) (r, s float32) {
	fn := x*log2e + roundMagic
	n := int32(math.Float32bits(fn)) - roundBits
	f := fn - roundMagic
	return x - f*ln2Hi - f*ln2Lo, math.Float32frombits(uint32(n+127) << 23)
}

// expm1Poly is e^r - 1 for |r| ≤ ln2/2, P evaluated by Estrin's scheme
// (three independent pairs, combined through r² and r⁴) rather than
// Horner's, which halves the latency a loop of independent elements waits
// on.
func expm1Poly(r float32) float32 {
	r2 := r * r
	p := (expP0*r+expP1)*(r2*r2) + ((expP2*r+expP3)*r2 + (expP4*r + expP5))
	return p*r2 + r
}

// tanhPoly holds tanhf's odd polynomial for |x| < tanhCut, tanh(x) ≈
// x·(1 + z·P(z)), z = x², P(z) = Σ tanhPoly[i]·zⁱ. A variable, not
// constants: the loops copy it to locals once, and the compiler keeps those
// in registers, where it reloaded every constant from memory at every use
// (it rematerialises constants rather than hoist them out of a loop).
var tanhPoly = [5]float32{-3.33332819422e-1, 1.33314422036e-1, -5.37397155531e-2, 2.06390887954e-2, -5.70498872745e-3}

// sigmoidGo and tanhGo run a tight loop while the inputs stay in the
// polynomial range (where an LSTM's gates and states mostly lie: all of
// them in the seed LSTM with random inputs) and hand the rest of the slice
// to the mixed loop at the first input beyond it. The tight loop is a dozen
// multiply-adds and one compare of z = x² (tanh no longer takes |x|
// through the integer registers for the sign); P is evaluated by Estrin's
// scheme (c0 + c1·z) + z²·((c2 + c3·z) + z²·c4), whose dependency chain is
// a third shorter than Horner's: the loops are bound by that chain (the
// scheduler holds only a few elements' worth of it), not by their
// instruction count. The mixed loops compute the polynomial range the
// same way, so an element's result never depends on its neighbours.
func sigmoidGo(x []float32) {
	c0, c1, c2, c3, c4 := tanhPoly[0], tanhPoly[1], tanhPoly[2], tanhPoly[3], tanhPoly[4]
	for i, v := range x {
		h := 0.5 * v
		z := h * h
		if !(z < tanhCut*tanhCut) {
			sigmoidMixed(x[i:])
			return
		}
		// σ(x) = (1 + tanh(x/2))/2 = (0.5 + 0.5·h) + 0.5·h·z·P: no exp
		// and no division where most gate inputs lie
		z2 := z * z
		p := (c1*z + c0) + z2*((c3*z+c2)+z2*c4)
		x[i] = (0.5 + 0.5*h) + 0.5*h*z*p
	}
}

// sigmoidMixed is sigmoidGo for inputs on either side of the polynomial
// range.
func sigmoidMixed(x []float32) {
	c0, c1, c2, c3, c4 := tanhPoly[0], tanhPoly[1], tanhPoly[2], tanhPoly[3], tanhPoly[4]
	for i, v := range x {
		h := 0.5 * v
		if z := h * h; z < tanhCut*tanhCut {
			z2 := z * z
			p := (c1*z + c0) + z2*((c3*z+c2)+z2*c4)
			x[i] = (0.5 + 0.5*h) + 0.5*h*z*p
			continue
		}
		t := -v
		if t > expHi {
			t = expHi
		}
		if t < expLo {
			t = expLo
		}
		r, s := expReduce(t)
		p := expm1Poly(r)
		x[i] = 1 / (1 + (s + s*p))
	}
}

func tanhGo(x []float32) {
	c0, c1, c2, c3, c4 := tanhPoly[0], tanhPoly[1], tanhPoly[2], tanhPoly[3], tanhPoly[4]
	for i, v := range x {
		z := v * v
		if !(z < tanhCut*tanhCut) {
			tanhMixed(x[i:])
			return
		}
		z2 := z * z
		p := (c1*z + c0) + z2*((c3*z+c2)+z2*c4)
		// x·(1 + z·P) rather than x + x·z·P: tanh(-0) stays -0 without
		// copying the sign bit
		x[i] = v * (1 + z*p)
	}
}

// tanhMixed is tanhGo for inputs on either side of the polynomial range.
func tanhMixed(x []float32) {
	c0, c1, c2, c3, c4 := tanhPoly[0], tanhPoly[1], tanhPoly[2], tanhPoly[3], tanhPoly[4]
	for i, v := range x {
		if z := v * v; z < tanhCut*tanhCut {
			z2 := z * z
			p := (c1*z + c0) + z2*((c3*z+c2)+z2*c4)
			x[i] = v * (1 + z*p)
			continue
		}
		bits := math.Float32bits(v)
		a := math.Float32frombits(bits &^ signBit)
		if a > tanhClamp {
			a = tanhClamp
		}
		r, s := expReduce(2 * a)
		p := expm1Poly(r)
		e := s*p + (s - 1)
		x[i] = math.Float32frombits(math.Float32bits(e/(e+2)) | bits&signBit)
	}
}

func erfGo(x []float32) {
	for i, v := range x {
		bits := math.Float32bits(v)
		a := math.Float32frombits(bits &^ signBit)
		if a > erfClamp {
			a = erfClamp
		}
		k := int32(a+a) & 7
		u := a - erfMid[k]
		p := erfCoef[7][k]*u + erfCoef[6][k]
		p = p*u + erfCoef[5][k]
		p = p*u + erfCoef[4][k]
		p = p*u + erfCoef[3][k]
		p = p*u + erfCoef[2][k]
		p = p*u + erfCoef[1][k]
		p = p*u + erfCoef[0][k]
		x[i] = math.Float32frombits(math.Float32bits(p) | bits&signBit)
	}
}
