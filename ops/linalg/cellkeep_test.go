package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestLSTMCellKeepsGates: with CellArgs.Gates and TanhC set, every kernel
// set stores the step's activated gates and tanh(c') (against the float64
// reference, over odd sizes and row counts around the tiles), leaves their
// padding alone, and computes h' and c' bit for bit as without them.
func TestLSTMCellKeepsGates(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for _, hid := range []int{1, 5, 15, 16, 17, 31, 33, 64, 67} {
			for _, in := range []int{0, 1, 3, 67} {
				for _, rows := range []int{1, 3, 4, 5, 9, 13} {
					name := fmt.Sprintf("%s H=%d I=%d rows=%d", kern, hid, in, rows)
					w := randVec(rng, 4*hid*max(in, 1), 0.5)
					r := randVec(rng, 4*hid*hid, 0.5)
					var p CellWeights
					PackCell(&p, make([]float32, CellSize(4, in, hid)), 4, in, hid, w, r)
					a := &CellArgs{Rows: rows, LdX: in + 2, LdH: hid + 1, LdHOut: hid + 3, LdC: hid + 2, LdInit: 4*hid + 1}
					a.X = randVec(rng, rows*a.LdX, 1)
					a.H = randVec(rng, rows*a.LdH, 1)
					a.C = randVec(rng, rows*a.LdC, 1)
					a.Init = randVec(rng, rows*a.LdInit, 1)
					a.HOut = randVec(rng, rows*a.LdHOut, 1)
					plain := *a
					plain.C = append([]float32(nil), a.C...)
					plain.HOut = append([]float32(nil), a.HOut...)
					a.LdGates, a.LdTanhC = 4*hid+3, hid+1
					a.Gates = randVec(rng, rows*a.LdGates, 1)
					a.TanhC = randVec(rng, rows*a.LdTanhC, 1)
					gOrig := append([]float32(nil), a.Gates...)
					tOrig := append([]float32(nil), a.TanhC...)
					c0 := append([]float32(nil), a.C...)
					LSTMCell(&p, &plain)
					LSTMCell(&p, a)
					for i := range a.C {
						if math.Float32bits(a.C[i]) != math.Float32bits(plain.C[i]) {
							t.Fatalf("%s: c[%d] = %v keeping gates, %v without", name, i, a.C[i], plain.C[i])
						}
					}
					for i := range a.HOut {
						if math.Float32bits(a.HOut[i]) != math.Float32bits(plain.HOut[i]) {
							t.Fatalf("%s: h[%d] = %v keeping gates, %v without", name, i, a.HOut[i], plain.HOut[i])
						}
					}
					tol := 2e-6 * math.Sqrt(float64(in+hid+1))
					for row := 0; row < rows; row++ {
						for g := 0; g < 4; g++ {
							for j := 0; j < hid; j++ {
								s := float64(a.Init[row*a.LdInit+g*hid+j])
								for k := 0; k < in; k++ {
									s += float64(a.X[row*a.LdX+k]) * float64(w[(g*hid+j)*in+k])
								}
								for k := 0; k < hid; k++ {
									s += float64(a.H[row*a.LdH+k]) * float64(r[(g*hid+j)*hid+k])
								}
								want := sig(s)
								if g == 3 {
									want = math.Tanh(s)
								}
								got := a.Gates[row*a.LdGates+g*hid+j]
								if d := math.Abs(float64(got) - want); d > tol {
									t.Fatalf("%s: gate %d [%d,%d] = %v, want %v", name, g, row, j, got, want)
								}
							}
						}
						for j := 4 * hid; j < a.LdGates; j++ {
							if i := row*a.LdGates + j; a.Gates[i] != gOrig[i] {
								t.Fatalf("%s: wrote gates padding", name)
							}
						}
						for j := 0; j < a.LdTanhC; j++ {
							i := row*a.LdTanhC + j
							if j >= hid {
								if a.TanhC[i] != tOrig[i] {
									t.Fatalf("%s: wrote tanh(c') padding", name)
								}
								continue
							}
							want := math.Tanh(float64(a.C[row*a.LdC+j]))
							if d := math.Abs(float64(a.TanhC[i]) - want); d > 2e-6 {
								t.Fatalf("%s: tanh(c')[%d,%d] = %v, want %v (c %v from %v)", name, row, j, a.TanhC[i], want, a.C[row*a.LdC+j], c0[row*a.LdC+j])
							}
						}
					}
				}
			}
		}
		restore()
	}
}
