package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBiasAddBits: the Dense bias epilogue (NEON on arm64, a Go loop
// elsewhere) equals the element-wise float32 add bit for bit, special
// values included (a NaN sum may carry either NaN operand: Go itself
// does not fix which), at every length 0..37 (vector steps of 16 and 4 and
// the scalar tail).
func TestBiasAddBits(t *testing.T) {
	specials := []uint32{0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x00000001, 0x80000001, 0x7f7fffff, 0xff7fffff}
	rng := rand.New(rand.NewPCG(37, 38))
	for n := 0; n <= 37; n++ {
		x, bias := make([]float32, n), make([]float32, n+3)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			if rng.IntN(3) == 0 {
				x[i] = math.Float32frombits(specials[rng.IntN(len(specials))])
			}
		}
		for i := range bias {
			bias[i] = float32(rng.NormFloat64())
			if rng.IntN(5) == 0 {
				bias[i] = math.Float32frombits(specials[rng.IntN(len(specials))])
			}
		}
		got := append([]float32(nil), x...)
		biasAdd(got, bias)
		for i, v := range x {
			want := v + bias[i]
			if a, b := math.Float32bits(got[i]), math.Float32bits(want); a != b && !(math.IsNaN(float64(want)) && math.IsNaN(float64(got[i]))) {
				t.Fatalf("n=%d: %#x + %#x = %#x, want %#x", n, math.Float32bits(v), math.Float32bits(bias[i]), a, b)
			}
		}
	}
}
