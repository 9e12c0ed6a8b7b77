package linalg

import (
	"math"
	"testing"
)

// TestGoActivationsAccuracy measures the pure-Go sigmoidGo, tanhGo and
// erfGo (called directly, so every build checks them, not only purego
// ones) against float64 references over a 1/1024 grid on [-12, 12], the
// clamp and branch edges and special values, within the bounds
// activation_go.go documents.
func TestGoActivationsAccuracy(t *testing.T) {
	var xs []float32
	for x := -12.0; x <= 12; x += 1.0 / 1024 {
		xs = append(xs, float32(x))
	}
	for _, v := range []float32{0, 1e-30, 1e-8, 1e-3, 0.4999999, 0.5, 0.6249, 0.625, 8.99, 9, 9.01, 20, 87.3, 87.4, 88.3, 88.4, 100, 1e30} {
		xs = append(xs, v, -v)
	}
	xs = append(xs, float32(math.Copysign(0, -1)))
	// whole slices (the grid starts far out, so sigmoidGo and tanhGo
	// hand it to their mixed loops at once) and one element at a time
	// (each polynomial-range input through the tight loop)
	var worstSig, worstTanh, worstErf float64
	for _, whole := range []bool{true, false} {
		sig := append([]float32(nil), xs...)
		th := append([]float32(nil), xs...)
		er := append([]float32(nil), xs...)
		if whole {
			sigmoidGo(sig)
			tanhGo(th)
			erfGo(er)
		} else {
			for i := range xs {
				sigmoidGo(sig[i : i+1])
				tanhGo(th[i : i+1])
				erfGo(er[i : i+1])
			}
		}
		for i, x := range xs {
			ws := 1 / (1 + math.Exp(-float64(x)))
			d := math.Abs(float64(sig[i]) - ws)
			if d > 1e-37 {
				worstSig = math.Max(worstSig, d/ws)
			}
			if d > 2e-7*ws && d > 1e-37 {
				t.Errorf("sigmoidGo(%g) = %g, want %g (relative %.3g)", x, sig[i], ws, d/ws)
			}
			wt := math.Tanh(float64(x))
			d = math.Abs(float64(th[i]) - wt)
			if wt != 0 {
				worstTanh = math.Max(worstTanh, d/math.Abs(wt))
			}
			if d > 3e-7*math.Abs(wt) || math.Signbit(float64(th[i])) != math.Signbit(float64(x)) {
				t.Errorf("tanhGo(%g) = %g, want %g", x, th[i], wt)
			}
			we := math.Erf(float64(x))
			d = math.Abs(float64(er[i]) - we)
			worstErf = math.Max(worstErf, d)
			if d > 3e-7 {
				t.Errorf("erfGo(%g) = %g, want %g (diff %.3g)", x, er[i], we, d)
			}
		}
	}
	t.Logf("max error: sigmoid %.3g relative, tanh %.3g relative, erf %.3g absolute", worstSig, worstTanh, worstErf)
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, c := range []struct {
		x, sig, tanh, erf float32
	}{
		{inf, 1, 1, 1},
		{-inf, 0, -1, -1},
		{nan, nan, nan, nan},
	} {
		got := [3][]float32{{c.x}, {c.x}, {c.x}}
		sigmoidGo(got[0])
		tanhGo(got[1])
		erfGo(got[2])
		for k, want := range []float32{c.sig, c.tanh, c.erf} {
			g := got[k][0]
			// exp's input clamp leaves sigmoid(-Inf) a subnormal, as on
			// the SIMD kernel sets
			if !(g == want || math.IsNaN(float64(g)) && math.IsNaN(float64(want)) || k == 0 && want == 0 && g >= 0 && g < 1e-37) {
				t.Errorf("%s(%v) = %v, want %v", [3]string{"sigmoidGo", "tanhGo", "erfGo"}[k], c.x, g, want)
			}
		}
	}
}
