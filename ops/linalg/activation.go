package linalg

import "math"

// The activations below are accurate to a few float32 ulps (exp: Cephes'
// degree-6 polynomial after range reduction; tanh: an odd polynomial near
// zero, the exp form elsewhere) and run over whole slices, so the SIMD
// versions in assembly can process 8 lanes at a time.

const (
	expHi   = 88.3762626647949
	expLo   = -87.3365478515625 // below this exp underflows to 0 in float32
	log2e   = 1.44269504088896341
	ln2Hi   = 0.693359375
	ln2Lo   = -2.12194440e-4
	tanhCut = 0.625
)

// expf is the scalar reference of the vector exp.
func expf(x float32) float32 {
	if x > expHi {
		x = expHi
	}
	if x < expLo {
		x = expLo
	}
	n := float32(math.Floor(float64(x*log2e + 0.5)))
	r := x - n*ln2Hi - n*ln2Lo
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// sigmoidf is the scalar reference of the vector sigmoid.
func sigmoidf(x float32) float32 { return 1 / (1 + expf(-x)) }

// tanhf is the scalar reference of the vector tanh.
func tanhf(x float32) float32 {
	ax := float32(math.Abs(float64(x)))
	if ax < tanhCut {
		z := x * x
		p := float32(-5.70498872745e-3)
		p = p*z + 2.06390887954e-2
		p = p*z - 5.37397155531e-2
		p = p*z + 1.33314422036e-1
		p = p*z - 3.33332819422e-1
		return x + x*z*p
	}
	t := 1 - 2/(expf(2*ax)+1)
	if x < 0 {
		return -t
	}
	return t
}

// sigmoidGo, tanhGo and erfGo, the pure-Go vector forms, are in
// activation_go.go.

// Sigmoid replaces every x[i] with 1/(1+e^-x[i]).
func Sigmoid(x []float32) { sigmoidVec(x) }

// Tanh replaces every x[i] with tanh(x[i]).
func Tanh(x []float32) { tanhVec(x) }

// erf: sign(x)·p_k(|x| - erfMid[k]) with |x| clamped below 4 and k =
// ⌊2|x|⌋, p_k a degree-7 minimax polynomial on [k/2, k/2 + ½) (the table
// erftab.go, generated with the assembly by internal/asmgen, which
// describes the fit). p_0 expands around 0 with p_0(0) = 0, so erf keeps
// its relative accuracy near 0. No branch, division or exp: the SIMD
// kernels fetch each lane's coefficients with one permute per term.

// erff is the scalar reference of the vector erf (erfGo is the same
// computation over a slice). NaN gives NaN (its index, whatever int32 of
// NaN is here, is masked into the table), ±Inf ±1.
func erff(x float32) float32 {
	bits := math.Float32bits(x)
	a := math.Float32frombits(bits &^ signBit)
	if a > erfClamp {
		a = erfClamp
	}
	k := int32(a+a) & 7
	u := a - erfMid[k]
	p := erfCoef[7][k]
	for j := 6; j >= 0; j-- {
		p = p*u + erfCoef[j][k]
	}
	return math.Float32frombits(math.Float32bits(p) | bits&signBit)
}

// Erf replaces every x[i] with erf(x[i]), within 1.2e-7 absolute (and
// 2.5e-7 relative below |x| = 0.5) of the exact value (measured over a
// 1/4096 grid on [-6, 6], every kernel set: see TestErfAccuracy); NaN
// stays NaN and ±Inf give ±1.
func Erf(x []float32) { erfVec(x) }
