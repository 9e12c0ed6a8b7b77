package linalg

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestActivationsAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var xs []float32
	for i := 0; i < 5000; i++ {
		xs = append(xs, float32(rng.NormFloat64()*4))
	}
	xs = append(xs, 0, -0, 1e-8, -1e-8, 0.6249, 0.625, -0.6251, 20, -20, 88, -88, 100, -100, 1e-3)
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		sig := append([]float32(nil), xs...)
		th := append([]float32(nil), xs...)
		Sigmoid(sig)
		Tanh(th)
		restore()
		for i, x := range xs {
			ws := 1 / (1 + math.Exp(-float64(x)))
			wt := math.Tanh(float64(x))
			if d := math.Abs(float64(sig[i]) - ws); d > 2e-7*math.Max(ws, 1e-30)+1e-37 && d > 3e-7 {
				t.Fatalf("%s sigmoid(%g) = %g, want %g (diff %g)", kern, x, sig[i], ws, d)
			}
			if d := math.Abs(float64(th[i]) - wt); d > 3e-7*math.Abs(wt)+1e-12 && d > 2e-7 {
				t.Fatalf("%s tanh(%g) = %g, want %g (diff %g)", kern, x, th[i], wt, d)
			}
		}
	}
}

func BenchmarkActivations(b *testing.B) {
	x := make([]float32, 256)
	for i := range x {
		x[i] = float32(i%17) - 8
	}
	for _, kern := range kernels() {
		b.Run(kern+"/sigmoid256", func(b *testing.B) {
			restore, _ := setKernel(kern)
			defer restore()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				Sigmoid(x)
			}
		})
		b.Run(kern+"/tanh256", func(b *testing.B) {
			restore, _ := setKernel(kern)
			defer restore()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				Tanh(x)
			}
		})
		b.Run(kern+"/erf256", func(b *testing.B) {
			restore, _ := setKernel(kern)
			defer restore()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				copy(x, xs256)
				Erf(x)
			}
		})
	}
	// what the Erf op did before: float64 math.Erf per element
	b.Run("float64-math.Erf/erf256", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j, v := range xs256 {
				x[j] = float32(math.Erf(float64(v)))
			}
		}
	})
}

var xs256 = func() []float32 {
	x := make([]float32, 256)
	for i := range x {
		x[i] = float32(i%17)/4 - 2
	}
	return x
}()

// TestErfAccuracy: every kernel set against math.Erf over a dense grid and
// the special values, within the bound Erf documents (measured 8.2e-8
// absolute, 1.6e-7 relative below 0.5).
func TestErfAccuracy(t *testing.T) {
	var xs []float32
	for x := -6.0; x <= 6; x += 1.0 / 4096 {
		xs = append(xs, float32(x))
	}
	xs = append(xs, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-8, 0.4999999, 0.5, -0.5000001, 3.9, 10, -10, 100)
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		got := append([]float32(nil), xs...)
		Erf(got)
		restore()
		var worstAbs, worstRel float64
		for i, x := range xs {
			w := math.Erf(float64(x))
			d := math.Abs(float64(got[i]) - w)
			worstAbs = math.Max(worstAbs, d)
			if math.Abs(float64(x)) < 0.5 && w != 0 {
				worstRel = math.Max(worstRel, d/math.Abs(w))
			}
			if d > 1.2e-7 || (math.Abs(float64(x)) < 0.5 && d > 2.5e-7*math.Abs(w)) {
				t.Fatalf("%s erf(%g) = %g, want %g (diff %g)", kern, x, got[i], w, d)
			}
		}
		t.Logf("%s: max abs error %.3g, max rel error below 0.5 %.3g", kern, worstAbs, worstRel)
	}
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for n := 1; n <= 17; n++ {
			for pos := 0; pos < n; pos++ {
				for _, c := range [][2]float32{{float32(math.NaN()), float32(math.NaN())}, {float32(math.Inf(1)), 1}, {float32(math.Inf(-1)), -1}} {
					v := make([]float32, n)
					v[pos] = c[0]
					Erf(v)
					if !(v[pos] == c[1] || math.IsNaN(float64(v[pos])) && math.IsNaN(float64(c[1]))) {
						t.Fatalf("%s n=%d lane %d: erf(%v) = %v, want %v", kern, n, pos, c[0], v[pos], c[1])
					}
				}
			}
		}
		restore()
	}
}
