package linalg

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLSTMCellGradPackMatchesSeparatePasses: on every kernel set,
// LSTMCellGradPack gives bitwise what LSTMCellGrad then PackBRows give (da,
// dc and the whole packed buffer, the rows it must not touch included),
// over unit counts that do and do not fill whole panels, several row
// counts and row offsets in the packed matrix.
func TestLSTMCellGradPackMatchesSeparatePasses(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, hid := range []int{1, 3, 8, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 67} {
		for _, rows := range []int{1, 2, 5, 7} {
			for _, q0 := range []int{0, 3} {
				k := q0 + rows + 2
				n := rows * hid
				gates := randVec(rng, 4*n, 1)
				for i := range gates {
					if i/hid%4 == 3 {
						gates[i] = gates[i]*2 - 1
					} else {
						gates[i] = (gates[i] + 1) / 2
					}
				}
				dh, dc, c, th := randVec(rng, n, 2), randVec(rng, n, 2), randVec(rng, n, 3), randVec(rng, n, 1)
				sentinel := func() []float32 {
					b := make([]float32, PackedSize(k, 4*hid))
					for i := range b {
						b[i] = float32(math.NaN())
					}
					return b
				}
				wantBuf, wantDa, wantDc := sentinel(), make([]float32, 4*n), append([]float32(nil), dc...)
				var want PackedB
				PackBRowsInit(&want, wantBuf, k, 4*hid)
				LSTMCellGrad(rows, hid, dh, wantDc, gates, c, th, wantDa)
				PackBRows(&want, q0, rows, wantDa, 4*hid)
				for _, kern := range kernels() {
					restore, _ := setKernel(kern)
					buf, da, gdc := sentinel(), make([]float32, 4*n), append([]float32(nil), dc...)
					var p PackedB
					PackBRowsInit(&p, buf, k, 4*hid)
					LSTMCellGradPack(rows, hid, dh, gdc, gates, c, th, da, &p, q0)
					restore()
					same := func(name string, got, want []float32) {
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%s hid=%d rows=%d q0=%d: %s[%d] = %v, separate passes %v", kern, hid, rows, q0, name, i, got[i], want[i])
							}
						}
					}
					same("da", da, wantDa)
					same("dc", gdc, wantDc)
					same("packed", buf, wantBuf)
				}
			}
		}
	}
}

// TestLSTMCellGradPackChecksOperands: rows outside the packed matrix, a
// packed matrix of the wrong width or short operands panic.
func TestLSTMCellGradPackChecksOperands(t *testing.T) {
	const rows, hid, k = 2, 16, 4
	ok := func() (dh, dc, g, c, th, da []float32, p *PackedB) {
		p = &PackedB{}
		PackBRowsInit(p, make([]float32, PackedSize(k, 4*hid)), k, 4*hid)
		return make([]float32, rows*hid), make([]float32, rows*hid), make([]float32, 4*rows*hid),
			make([]float32, rows*hid), make([]float32, rows*hid), make([]float32, 4*rows*hid), p
	}
	for name, f := range map[string]func(){
		"rows past k": func() {
			dh, dc, g, c, th, da, p := ok()
			LSTMCellGradPack(rows, hid, dh, dc, g, c, th, da, p, k-1)
		},
		"wrong width": func() {
			dh, dc, g, c, th, da, _ := ok()
			p := &PackedB{}
			PackBRowsInit(p, make([]float32, PackedSize(k, 2*hid)), k, 2*hid)
			LSTMCellGradPack(rows, hid, dh, dc, g, c, th, da, p, 0)
		},
		"short da": func() {
			dh, dc, g, c, th, da, p := ok()
			LSTMCellGradPack(rows, hid, dh, dc, g, c, th, da[:len(da)-1], p, 0)
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// BenchmarkLSTMCellGradPack: one step of the seed model's backward pass
// (32 rows of 64 units into a block of 192 rows), LSTMCellGrad then
// PackBRows against LSTMCellGradPack, on every kernel set.
func BenchmarkLSTMCellGradPack(b *testing.B) {
	const rows, hid, k = 32, 64, 192
	rng := rand.New(rand.NewPCG(1, 2))
	n := rows * hid
	gates := randVec(rng, 4*n, 1)
	dh, dc, c, th, da := randVec(rng, n, 1), randVec(rng, n, 1), randVec(rng, n, 1), randVec(rng, n, 1), make([]float32, 4*n)
	var p PackedB
	PackBRowsInit(&p, make([]float32, PackedSize(k, 4*hid)), k, 4*hid)
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		b.Run(kern+"/separate", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				LSTMCellGrad(rows, hid, dh, dc, gates, c, th, da)
				PackBRows(&p, 64, rows, da, 4*hid)
			}
		})
		b.Run(kern+"/fused", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				LSTMCellGradPack(rows, hid, dh, dc, gates, c, th, da, &p, 64)
			}
		})
		restore()
	}
}
