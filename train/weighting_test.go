package train

import (
	"math"
	"testing"
)

func near(a, b []float64, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > tol {
			return false
		}
	}
	return true
}

func TestGradientMethodsOnHandComputedCases(t *testing.T) {
	cases := []struct {
		kind  WeightingKind
		grads [][]float64
		want  []float64
	}{
		// orthogonal unit gradients: the min-norm point is their midpoint
		{"mgda", [][]float64{{1, 0}, {0, 1}}, []float64{0.5, 0.5}},
		// (1,0) is the closest point to the origin on the segment to (1,1)
		{"mgda", [][]float64{{1, 0}, {1, 1}}, []float64{1, 0}},
		// three tasks (Frank-Wolfe): the hull of e1, e2, e3 is closest at its centroid
		{"mgda", [][]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}},
		// g1·g2 = −1: g1' = g1 + g2/2 = (0.5, 0.5), g2' = g2 + g1 = (0, 1)
		{"pcgrad", [][]float64{{1, 0}, {-1, 1}}, []float64{0.5, 1.5}},
		// no conflict: plain sum
		{"pcgrad", [][]float64{{1, 0}, {1, 1}}, []float64{2, 1}},
		// D = (1,−2), U = (1,−1): α₂ = 1/3, α₁ = 2/3, equal projections 2/3
		{"imtl", [][]float64{{1, 0}, {0, 2}}, []float64{2.0 / 3, 2.0 / 3}},
		// symmetric: w = (½,½), g_w = g₀, λ = c = ½, d = 1.5·g₀/1.25
		{"cagrad", [][]float64{{1, 0}, {0, 1}}, []float64{0.6, 0.6}},
	}
	for _, c := range cases {
		w, err := NewWeighting(WeightingConfig{Kind: c.kind, Seed: 1}, len(c.grads))
		if err != nil {
			t.Fatal(err)
		}
		if !w.TaskGrads() {
			t.Fatalf("%s should need task gradients", c.kind)
		}
		got, _ := w.Combine(c.grads)
		if !near(got, c.want, 1e-4) {
			t.Errorf("%s%v: got %v, want %v", c.kind, c.grads, got, c.want)
		}
	}
}

func TestLossWeightingMethods(t *testing.T) {
	// DWA: weights stay 1 for two epochs, then K·softmax(ratio/T)
	d, _ := NewWeighting(WeightingConfig{Kind: DWA}, 2)
	d.EndEpoch([]float64{1, 1})
	if !near(d.Weights(nil), []float64{1, 1}, 0) {
		t.Fatalf("dwa after one epoch: %v", d.Weights(nil))
	}
	d.EndEpoch([]float64{0.5, 1})
	e1, e2 := math.Exp(0.25), math.Exp(0.5)
	if want := []float64{2 * e1 / (e1 + e2), 2 * e2 / (e1 + e2)}; !near(d.Weights(nil), want, 1e-12) {
		t.Errorf("dwa: got %v, want %v", d.Weights(nil), want)
	}

	// uncertainty: s ← s − lr·(½ − L/(2eˢ)); weight 1/(2eˢ)
	u, _ := NewWeighting(WeightingConfig{Kind: Uncertainty, LR: 0.1}, 2)
	if !near(u.Weights(nil), []float64{0.5, 0.5}, 0) {
		t.Fatalf("uncertainty initial weights %v", u.Weights(nil))
	}
	u.Observe([]float64{3, 1}, nil)
	s1, s2 := -0.1*(0.5-0.5*3), -0.1*(0.5-0.5*1) // s −= lr·(½ − ½·L) at L = 3 and 1
	// the log-variances are float32, like every trained parameter
	if want := []float64{1 / (2 * math.Exp(s1)), 1 / (2 * math.Exp(s2))}; !near(u.Weights(nil), want, 1e-7) {
		t.Errorf("uncertainty: got %v, want %v", u.Weights(nil), want)
	}

	// GradNorm: with equal training rates the task whose weighted gradient
	// norm is above the mean loses weight; the sum stays K
	g, _ := NewWeighting(WeightingConfig{Kind: GradNorm, LR: 0.1}, 2)
	g.Observe([]float64{1, 1}, []float64{2, 1})
	w := g.Weights(nil)
	if !(w[0] < 1 && w[1] > 1) || math.Abs(w[0]+w[1]-2) > 1e-12 {
		t.Errorf("gradnorm weights %v", w)
	}
	// w₁ = 1 − 0.1·2 = 0.8, w₂ = 1 + 0.1·1 = 1.1, renormalised to sum 2
	if want := []float64{0.8 * 2 / 1.9, 1.1 * 2 / 1.9}; !near(w, want, 1e-12) {
		t.Errorf("gradnorm: got %v, want %v", w, want)
	}

	// RLW: weights on the simplex, different every step
	r, _ := NewWeighting(WeightingConfig{Kind: RLW, Seed: 3}, 3)
	a, b := r.Weights(nil), r.Weights(nil)
	if math.Abs(a[0]+a[1]+a[2]-1) > 1e-12 || near(a, b, 1e-9) {
		t.Errorf("rlw weights %v then %v", a, b)
	}

	f, _ := NewWeighting(WeightingConfig{Kind: Fixed, Fixed: []float64{1, 0.5}}, 2)
	if !near(f.Weights(nil), []float64{1, 0.5}, 0) {
		t.Errorf("fixed: %v", f.Weights(nil))
	}
}
