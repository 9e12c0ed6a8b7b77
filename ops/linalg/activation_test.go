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
	}
}
