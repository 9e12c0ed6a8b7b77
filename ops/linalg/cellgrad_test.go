package linalg

import (
	"math"
	"math/rand/v2"
	"testing"
)

// lstmGradRef is LSTMCellGrad in float64 from the same float32 inputs.
func lstmGradRef(rows, hid int, dh, dc, gates, c, t []float32) (da, dcOut []float64) {
	da, dcOut = make([]float64, rows*4*hid), make([]float64, rows*hid)
	for r := 0; r < rows; r++ {
		for j := 0; j < hid; j++ {
			q, e := r*hid+j, r*4*hid+j
			i, o, f, g := float64(gates[e]), float64(gates[e+hid]), float64(gates[e+2*hid]), float64(gates[e+3*hid])
			tj, y := float64(t[q]), float64(dh[q])
			dC := float64(dc[q]) + y*o*(1-tj*tj)
			da[e] = dC * g * i * (1 - i)
			da[e+hid] = y * tj * o * (1 - o)
			da[e+2*hid] = dC * float64(c[q]) * f * (1 - f)
			da[e+3*hid] = dC * i * (1 - g*g)
			dcOut[q] = dC * f
		}
	}
	return
}

// TestLSTMCellGradMatchesReference: every kernel set against the float64
// reference (within float32 rounding of the ~8 operations per result) and
// bitwise against the pure-Go set, over odd unit counts around the 8- and
// 16-lane widths and several rows.
func TestLSTMCellGradMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	type result struct{ da, dc []float32 }
	for _, hid := range []int{1, 2, 3, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33, 47, 48, 63, 64, 65, 67} {
		for _, rows := range []int{1, 2, 5} {
			n := rows * hid
			gates := randVec(rng, 4*n, 1)
			for i := range gates {
				if i/hid%4 == 3 {
					gates[i] = gates[i]*2 - 1 // g in (-1, 1), the sigmoids in (0, 1)
				} else {
					gates[i] = (gates[i] + 1) / 2
				}
			}
			dh, dc, c, th := randVec(rng, n, 2), randVec(rng, n, 2), randVec(rng, n, 3), randVec(rng, n, 1)
			wantDa, wantDc := lstmGradRef(rows, hid, dh, dc, gates, c, th)
			var goRes *result
			for _, kern := range kernels() {
				restore, _ := setKernel(kern)
				res := result{make([]float32, 4*n), append([]float32(nil), dc...)}
				LSTMCellGrad(rows, hid, dh, res.dc, gates, c, th, res.da)
				restore()
				check := func(name string, got []float32, want []float64) {
					for i, w := range want {
						if d := math.Abs(float64(got[i]) - w); d > 1e-6*(1+math.Abs(w)) { // ≤ 8 roundings of ~6e-8
							t.Fatalf("%s hid=%d rows=%d: %s[%d] = %v, float64 %v", kern, hid, rows, name, i, got[i], w)
						}
					}
				}
				check("da", res.da, wantDa)
				check("dc", res.dc, wantDc)
				if goRes == nil {
					goRes = &res
					continue
				}
				for i := range res.da {
					if math.Float32bits(res.da[i]) != math.Float32bits(goRes.da[i]) {
						t.Fatalf("%s hid=%d rows=%d: da[%d] = %v, pure Go %v", kern, hid, rows, i, res.da[i], goRes.da[i])
					}
				}
				for i := range res.dc {
					if math.Float32bits(res.dc[i]) != math.Float32bits(goRes.dc[i]) {
						t.Fatalf("%s hid=%d rows=%d: dc[%d] = %v, pure Go %v", kern, hid, rows, i, res.dc[i], goRes.dc[i])
					}
				}
			}
		}
	}
}

// TestLSTMCellGradChecksOperands: short operands panic with the sizes
// rather than writing past them.
func TestLSTMCellGradChecksOperands(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a short da")
		}
	}()
	s := make([]float32, 8)
	LSTMCellGrad(2, 4, s, s, make([]float32, 32), s, s, make([]float32, 31))
}

// TestLSTMCellStateMatchesReference: every kernel set against float64 and
// bitwise against the pure-Go set, over odd unit and row counts.
func TestLSTMCellStateMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, hid := range []int{1, 2, 3, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 47, 63, 64, 65, 67} {
		for _, rows := range []int{1, 2, 5} {
			n := rows * hid
			gates, c := randVec(rng, 4*n, 1), randVec(rng, n, 3)
			var goRes []float32
			for _, kern := range kernels() {
				restore, _ := setKernel(kern)
				cn := make([]float32, n)
				LSTMCellState(rows, hid, gates, c, cn)
				restore()
				for r := 0; r < rows; r++ {
					for j := 0; j < hid; j++ {
						e := r*4*hid + j
						w := float64(gates[e+2*hid])*float64(c[r*hid+j]) + float64(gates[e])*float64(gates[e+3*hid])
						if d := math.Abs(float64(cn[r*hid+j]) - w); d > 2e-7*(1+math.Abs(w)) {
							t.Fatalf("%s hid=%d rows=%d: c'[%d] = %v, float64 %v", kern, hid, rows, r*hid+j, cn[r*hid+j], w)
						}
					}
				}
				if goRes == nil {
					goRes = cn
					continue
				}
				for i := range cn {
					if math.Float32bits(cn[i]) != math.Float32bits(goRes[i]) {
						t.Fatalf("%s hid=%d rows=%d: c'[%d] = %v, pure Go %v", kern, hid, rows, i, cn[i], goRes[i])
					}
				}
			}
		}
	}
}
