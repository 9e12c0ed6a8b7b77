package math

import gomath "math"

// Float32 exp, sigmoid and tanh for the hot activation loops. math.Exp and
// math.Tanh work in float64 and cost 10-30 ns an element; these stay in
// float32 with a short polynomial and are accurate to a few ulp (see
// TestFast32Accuracy), well inside what a float32 model can tell apart.

const (
	log2e32 = 1.44269504088896341
	ln2hi32 = 0.693145751953125        // ln 2 rounded to 12 significant bits: k*ln2hi is exact
	ln2lo32 = 1.428606765330187045e-06 // ln 2 - ln2hi
	expHi32 = 88.0                     // above: fall back (overflow handling)
	expLo32 = -87.0                    // below: fall back (subnormal results)
)

// exp32 is e**x in float32.
func exp32(x float32) float32 {
	if !(x > expLo32 && x < expHi32) { // also catches NaN
		return float32(gomath.Exp(float64(x)))
	}
	return expCore(x)
}

// expCore is exp32 for expLo32 < x < expHi32.
func expCore(x float32) float32 {
	// Round x*log2(e) to the nearest integer k with the 1.5*2**23 trick:
	// adding it leaves k in the low mantissa bits.
	ki := int32(gomath.Float32bits(x*log2e32+12582912)) - 0x4b400000
	k := float32(ki)
	r := x - k*ln2hi32 - k*ln2lo32
	// e**r for |r| <= ln2/2: Taylor to r**7 (truncation error < 1e-8 relative).
	p := ((((((1.0/5040*r+1.0/720)*r+1.0/120)*r+1.0/24)*r+1.0/6)*r+0.5)*r+1)*r + 1
	return p * gomath.Float32frombits(uint32(ki+127)<<23)
}

// sigmoidSlice is o[i] = sigmoid32(x[i]) with the exponential inlined.
func sigmoidSlice(o, x []float32) {
	o = o[:len(x)]
	for i, v := range x {
		if v > -expHi32+1 && v < -expLo32 {
			// expCore(-v), written out: the compiler will not inline it.
			y := -v
			ki := int32(gomath.Float32bits(y*log2e32+12582912)) - 0x4b400000
			k := float32(ki)
			r := y - k*ln2hi32 - k*ln2lo32
			p := ((((((1.0/5040*r+1.0/720)*r+1.0/120)*r+1.0/24)*r+1.0/6)*r+0.5)*r+1)*r + 1
			o[i] = 1 / (1 + p*gomath.Float32frombits(uint32(ki+127)<<23))
		} else {
			o[i] = sigmoid32(v)
		}
	}
}

// sigmoid32 is 1/(1+e**-x) in float32.
func sigmoid32(x float32) float32 {
	if x < -80 { // e**-x would overflow; sigmoid is e**x to float32 precision
		return exp32(x)
	}
	return 1 / (1 + exp32(-x))
}

// tanh32 is tanh(x) in float32: an odd Taylor polynomial near zero, where
// 1 - 2/(e**2x + 1) would cancel, and that formula elsewhere.
func tanh32(x float32) float32 {
	a := x
	if a < 0 {
		a = -a
	}
	if a < 0.4 {
		z := x * x
		p := float32(-21844.0 / 6081075)
		p = p*z + 1382.0/155925
		p = p*z - 62.0/2835
		p = p*z + 17.0/315
		p = p*z - 2.0/15
		p = p*z + 1.0/3
		return x - x*z*p
	}
	if a > 9.1 { // tanh rounds to ±1 in float32
		if x < 0 {
			return -1
		}
		return 1
	}
	if x != x {
		return x
	}
	t := 1 - 2/(exp32(2*a)+1)
	if x < 0 {
		return -t
	}
	return t
}
