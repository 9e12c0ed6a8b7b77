package linalg

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpAccuracy: every kernel set's Exp over every length 1…67 (each
// split of whole vectors and masked tail) and a dense grid against float64
// math.Exp: within 2 ulps where the result is normal, one subnormal step
// below; special values exactly; and the sets within 2 ulps of the
// pure-Go path.
func TestExpAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 17))
	var grid []float32
	for x := -110.0; x <= 90; x += 1.0 / 64 {
		grid = append(grid, float32(x))
	}
	grid = append(grid, -87.33655, -87.33654, 88.72283, 88.72284, 1e-8, -1e-8, 0.34657359, -0.34657359)
	var worst int64
	check := func(kern string, x, got float32) {
		w := math.Exp(float64(x))
		w32 := float32(w)
		if math.IsInf(float64(w32), 1) || w > math.MaxFloat32 {
			// at the overflow edge either the largest float32 or +Inf
			if got != w32 && !(got == math.MaxFloat32 && w < math.MaxFloat32*(1+1e-7)) {
				t.Fatalf("%s exp(%v) = %v, want %v", kern, x, got, w32)
			}
			return
		}
		if w < 0x1p-126 {
			if d := math.Abs(float64(got) - w); d > 0x1p-149 {
				t.Fatalf("%s exp(%v) = %v, want %v (subnormal, diff %g)", kern, x, got, w, d)
			}
			return
		}
		d := actUlps(got, w32)
		if d > 2 {
			t.Fatalf("%s exp(%v) = %v, want %v (%d ulps)", kern, x, got, w32, d)
		}
		worst = max(worst, d)
	}
	special := [][2]float32{{float32(math.Inf(1)), float32(math.Inf(1))}, {float32(math.Inf(-1)), 0}, {0, 1},
		{float32(math.Copysign(0, -1)), 1}, {-1000, 0}, {1000, float32(math.Inf(1))}, {89, float32(math.Inf(1))}, {-104, 0}}
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		got := append([]float32(nil), grid...)
		Exp(got)
		for i, x := range grid {
			check(kern, x, got[i])
		}
		for n := 1; n <= 67; n++ {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 20)
			}
			x[rng.IntN(n)] = float32(math.NaN())
			got := append([]float32(nil), x...)
			Exp(got)
			ref := append([]float32(nil), x...)
			expGo(ref)
			for i, v := range x {
				if v != v {
					if got[i] == got[i] {
						t.Fatalf("%s n=%d: exp(NaN) = %v", kern, n, got[i])
					}
					continue
				}
				check(kern, v, got[i])
				if d := actUlps(got[i], ref[i]); d > 2 {
					t.Fatalf("%s n=%d: exp(%v) = %v, pure Go %v", kern, n, v, got[i], ref[i])
				}
			}
			for _, s := range special {
				y := make([]float32, n)
				y[n-1] = s[0]
				Exp(y)
				if y[n-1] != s[1] || y[0] != 1 && n > 1 {
					t.Fatalf("%s n=%d: exp(%v) = %v, want %v", kern, n, s[0], y[n-1], s[1])
				}
			}
		}
		restore()
		t.Logf("%s: largest error %d ulps", kern, worst)
		worst = 0
	}
}
