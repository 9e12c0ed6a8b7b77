package linalg

import (
	"fmt"
	"math"
	"testing"
)

// TestCellActivationAccuracy measures the fused cells' σ and tanh on every
// kernel set against float64, through the LSTM gates a step keeps
// (CellArgs.Gates) with zero weights, so each gate's pre-activation is
// exactly its Init value: a dense sweep of [-30, 30], tiny values of both
// signs, zeros and ±Inf, in full and partial chunks and every row kernel.
//
// Bounds follow what the kernels do. Every set: σ and tanh within 4e-7
// absolute (measured: the rational functions of AVX2 and AVX-512 3.2e-7
// for tanh near ±1 and 1.7e-7 for σ, internal/asmgen/cellact.go; the
// exp-based sets, pure Go and NEON, a few 1e-8). The rational tanh is
// also within 6 ulp of float64's tanh rounded to float32 at every input
// (measured 5.4 over 3 million inputs by scripts/fit_tanh.py), tiny
// inputs included, where an exp-based 1 - 2/(e+1) would cancel. AVX2,
// AVX-512 and NEON run the same operations, so their gates must agree bit
// for bit, with each other and, across machines, with a table of values
// the AVX2 kernels gave (testCellActivationGolden).
func TestCellActivationAccuracy(t *testing.T) {
	testCellActivationGolden(t)
	var in []float32
	for i := -30000; i <= 30000; i++ {
		in = append(in, float32(i)/1000+float32(i%7)*1e-5)
	}
	for e := -40; e <= 0; e++ {
		v := float32(math.Pow(10, float64(e)))
		in = append(in, v, -v, 1.37*v, -1.37*v)
	}
	in = append(in, 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)))
	rational := map[string]bool{SetAVX2: true, SetAVX512: true, SetNEON: true}
	firstRational := map[string][]float32{} // shape → gates of the first rational set
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for _, hid := range []int{16, 13} {
			for _, rows := range []int{64, 5, 1} {
				name := fmt.Sprintf("%s H=%d rows=%d", kern, hid, rows)
				var p CellWeights
				PackCell(&p, make([]float32, CellSize(4, 0, hid)), 4, 0, hid, nil, make([]float32, 4*hid*hid))
				a := &CellArgs{Rows: rows, LdH: hid, LdHOut: hid, LdC: hid, LdInit: 4 * hid, LdGates: 4 * hid, LdTanhC: hid}
				a.H, a.C, a.HOut, a.TanhC = make([]float32, rows*hid), make([]float32, rows*hid), make([]float32, rows*hid), make([]float32, rows*hid)
				a.Init, a.Gates = make([]float32, rows*4*hid), make([]float32, rows*4*hid)
				var sigAbs, tanhAbs, tanhUlp float64
				for done := 0; done < len(in); {
					for i := range a.Init {
						a.Init[i] = in[(done+i)%len(in)]
					}
					clear(a.C)
					LSTMCell(&p, a)
					for i, x := range a.Init {
						got, want := float64(a.Gates[i]), 1/(1+math.Exp(-float64(x)))
						isTanh := i%(4*hid) >= 3*hid
						if isTanh {
							want = math.Tanh(float64(x))
						}
						d := math.Abs(got - want)
						if math.IsNaN(got) || d > 4e-7 {
							t.Fatalf("%s: gate input %v: got %v, want %v (|diff| %.3g > 4e-7)", name, x, got, want, d)
						}
						if !isTanh {
							sigAbs = max(sigAbs, d)
							continue
						}
						tanhAbs = max(tanhAbs, d)
						w32 := math.Abs(float64(float32(want)))
						ulp := float64(math.Nextafter32(float32(w32), 2)) - w32
						if w32 == 0 {
							ulp = math.SmallestNonzeroFloat32
						}
						u := d / ulp
						tanhUlp = max(tanhUlp, u)
						if rational[kern] && u > 6 {
							t.Fatalf("%s: tanh(%v) = %v, want %v: %.2f ulp > 6", name, x, got, want, u)
						}
					}
					if rational[kern] {
						key := fmt.Sprintf("%s %d", name[len(kern):], done)
						if ref, ok := firstRational[key]; !ok {
							firstRational[key] = append([]float32(nil), a.Gates...)
						} else {
							for i := range ref {
								if math.Float32bits(ref[i]) != math.Float32bits(a.Gates[i]) {
									t.Fatalf("%s: gate input %v: %v, another rational set %v", name, a.Init[i], a.Gates[i], ref[i])
								}
							}
						}
					}
					done += len(a.Init)
				}
				if hid == 16 && rows == 64 {
					t.Logf("%s: σ max abs error %.3g, tanh %.3g (%.3g ulp)", kern, sigAbs, tanhAbs, tanhUlp)
				}
			}
		}
		restore()
	}
}

// cellActivationGolden are σ(x) and tanh(x) as the AVX2 cells computed
// them (float32 bits); every set running the rational functions must give
// these exactly, on amd64 and arm64 alike. σ(-20) is -6e-8 and tanh(±20)
// ±1 past an ulp: the bounded errors internal/asmgen/cellact.go states.
var cellActivationGolden = []struct {
	x         float32
	sig, tanh uint32
}{
	{-20, 0xb3800000, 0xbf800001},
	{-9.5, 0x389ce000, 0xbf800001},
	{-3.7, 0x3cc5a600, 0xbf7fafed},
	{-1, 0x3e89b2b0, 0xbf42f7d6},
	{-0.3, 0x3ed9e2ac, 0xbe9526ed},
	{-1e-05, 0x3effffac, 0xb727c5ac},
	{0, 0x3f000000, 0x00000000},
	{2e-07, 0x3f000001, 0x3456bf95},
	{0.5, 0x3f1f597f, 0x3eec9a9f},
	{0.7071, 0x3f2b7565, 0x3f1bdded},
	{1.25, 0x3f46fd20, 0x3f59291e},
	{4.4, 0x3f7ce526, 0x3f7fec40},
	{8.9, 0x3f7ff710, 0x3f800000},
	{12, 0x3f7fff9a, 0x3f800001},
}

// testCellActivationGolden checks cellActivationGolden on every set that
// runs the rational functions (a 16-unit LSTM row, zero weights: the
// gates' pre-activations are their Init values).
func testCellActivationGolden(t *testing.T) {
	const hid = 16
	var p CellWeights
	PackCell(&p, make([]float32, CellSize(4, 0, hid)), 4, 0, hid, nil, make([]float32, 4*hid*hid))
	for _, kern := range kernels() {
		if kern != SetAVX2 && kern != SetAVX512 && kern != SetNEON {
			continue
		}
		restore, _ := setKernel(kern)
		a := &CellArgs{Rows: 1, LdH: hid, LdHOut: hid, LdC: hid, LdInit: 4 * hid, LdGates: 4 * hid, LdTanhC: hid,
			H: make([]float32, hid), C: make([]float32, hid), HOut: make([]float32, hid), TanhC: make([]float32, hid),
			Init: make([]float32, 4*hid), Gates: make([]float32, 4*hid)}
		for i, g := range cellActivationGolden {
			a.Init[i], a.Init[3*hid+i] = g.x, g.x
		}
		LSTMCell(&p, a)
		for i, g := range cellActivationGolden {
			if s, th := math.Float32bits(a.Gates[i]), math.Float32bits(a.Gates[3*hid+i]); s != g.sig || th != g.tanh {
				t.Errorf("%s: σ(%v), tanh(%v) = %#08x, %#08x; the AVX2 cells gave %#08x, %#08x", kern, g.x, g.x, s, th, g.sig, g.tanh)
			}
		}
		restore()
	}
}
