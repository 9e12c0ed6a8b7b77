package rnn

import (
	"math"
	"testing"
)

// TestActivationSlope: Slope, given the output, is the derivative of every
// function a recurrent node accepts, against central differences of the
// function in float64 (points near a kink skipped), and SlopeFromOutput
// marks the parameter choices where the output cannot tell the two sides.
func TestActivationSlope(t *testing.T) {
	for _, tc := range []struct {
		f        act
		fromOut  bool
		kinks    []float64
		describe string
	}{
		{act{kind: actSigmoid}, true, nil, "sigmoid"},
		{act{kind: actTanh}, true, nil, "tanh"},
		{act{kind: actRelu}, true, []float64{0}, "relu"},
		{act{kind: actAffine, alpha: -1.5, beta: 0.3}, true, nil, "affine(alpha=-1.5, beta=0.3)"},
		{act{kind: actLeakyRelu, alpha: 0.1}, true, []float64{0}, "leakyrelu(alpha=0.1)"},
		{act{kind: actLeakyRelu, alpha: 0}, true, []float64{0}, "leakyrelu(alpha=0)"},
		{act{kind: actLeakyRelu, alpha: -0.5}, false, nil, "leakyrelu(alpha=-0.5)"},
		{act{kind: actThresholdedRelu, alpha: 0.7}, true, []float64{0.7}, "thresholdedrelu(alpha=0.7)"},
		{act{kind: actScaledTanh, alpha: 1.7, beta: 0.6}, true, nil, "scaledtanh(alpha=1.7, beta=0.6)"},
		{act{kind: actScaledTanh, alpha: 0, beta: 0.6}, true, nil, "scaledtanh(alpha=0, beta=0.6)"},
		{act{kind: actHardSigmoid, alpha: 0.2, beta: 0.5}, true, []float64{-2.5, 2.5}, "hardsigmoid(alpha=0.2, beta=0.5)"},
		{act{kind: actElu, alpha: 1.3}, true, []float64{0}, "elu(alpha=1.3)"},
		{act{kind: actElu, alpha: -1}, false, nil, "elu(alpha=-1)"},
		{act{kind: actSoftsign}, true, nil, "softsign"},
		{act{kind: actSoftplus}, true, nil, "softplus"},
	} {
		a := Activation{tc.f}
		if got := a.String(); got != tc.describe {
			t.Errorf("String() = %q, want %q", got, tc.describe)
		}
		if a.SlopeFromOutput() != tc.fromOut {
			t.Errorf("%v: SlopeFromOutput() = %v, want %v", a, !tc.fromOut, tc.fromOut)
		}
		if !tc.fromOut {
			continue
		}
	points:
		for x := -6.0; x <= 6; x += 0.0625 + 1.0/1024 {
			const h = 1e-6
			for _, k := range tc.kinks {
				if math.Abs(x-k) < 1e-3 {
					continue points
				}
			}
			want := (a.Apply(x+h) - a.Apply(x-h)) / (2 * h)
			got := a.Slope(a.Apply(x))
			if math.Abs(got-want) > 1e-6*(1+math.Abs(want)) {
				t.Fatalf("%v at %g: slope %g, central difference %g", a, x, got, want)
			}
		}
	}
}
