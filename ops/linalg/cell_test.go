package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// cellRef is the float64 reference of LSTMCell / GRUCell over the
// unpacked weights.
func cellRef(lstm bool, in, hid int, w, r []float32, a *CellArgs) (hout, c []float64) {
	slots := 3
	if lstm {
		slots = 4
	}
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	for row := 0; row < a.Rows; row++ {
		pre := make([]float64, slots*hid)
		nh := make([]float64, hid)
		for g := 0; g < slots; g++ {
			for j := 0; j < hid; j++ {
				s := float64(a.Init[row*a.LdInit+g*hid+j])
				for k := 0; k < in; k++ {
					s += float64(a.X[row*a.LdX+k]) * float64(w[(g*hid+j)*in+k])
				}
				t := 0.0
				if !lstm && g == 2 && a.RB != nil {
					t = float64(a.RB[j])
				}
				for k := 0; k < hid; k++ {
					t += float64(a.H[row*a.LdH+k]) * float64(r[(g*hid+j)*hid+k])
				}
				if !lstm && g == 2 {
					nh[j] = t
				} else {
					s += t
				}
				pre[g*hid+j] = s
			}
		}
		for j := 0; j < hid; j++ {
			h := float64(a.H[row*a.LdH+j])
			if lstm {
				i, o, f, g := sig(pre[j]), sig(pre[hid+j]), sig(pre[2*hid+j]), math.Tanh(pre[3*hid+j])
				cn := f*float64(a.C[row*a.LdC+j]) + i*g
				c = append(c, cn)
				hout = append(hout, o*math.Tanh(cn))
			} else {
				z, rr := sig(pre[j]), sig(pre[hid+j])
				n := math.Tanh(pre[2*hid+j] + rr*nh[j])
				hout = append(hout, (1-z)*n+z*h)
			}
		}
	}
	return
}

func randVec(rng *rand.Rand, n int, scale float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = (rng.Float32()*2 - 1) * scale
	}
	return s
}

// TestCellMatchesReference: every kernel set (pure Go and AVX-512) against
// the float64 reference, over odd sizes, row counts around the 4-row tile,
// strides, fused and precomputed input projections, shared and per-row
// initial values.
func TestCellMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for _, lstm := range []bool{true, false} {
			slots := 3
			if lstm {
				slots = 4
			}
			for _, hid := range []int{1, 2, 5, 15, 16, 17, 31, 32, 33, 48, 64, 67} {
				for _, in := range []int{0, 1, 3, 8, 67} {
					for _, rows := range []int{1, 3, 4, 5, 9} {
						for _, shared := range []bool{false, true} {
							name := fmt.Sprintf("%s lstm=%v H=%d I=%d rows=%d shared=%v", kern, lstm, hid, in, rows, shared)
							w := randVec(rng, slots*hid*max(in, 1), 0.5)
							r := randVec(rng, slots*hid*hid, 0.5)
							var p CellWeights
							PackCell(&p, make([]float32, CellSize(slots, in, hid)), slots, in, hid, w, r)
							a := &CellArgs{Rows: rows, LdX: in + 2, LdH: hid + 1, LdHOut: hid + 3, LdC: hid + 2, LdInit: slots*hid + 1}
							if shared {
								a.LdInit = 0
							}
							a.X = randVec(rng, rows*a.LdX, 1)
							a.H = randVec(rng, rows*a.LdH, 1)
							a.C = randVec(rng, rows*a.LdC, 1)
							a.Init = randVec(rng, max(rows*a.LdInit, slots*hid), 1)
							if rows%2 == 1 {
								a.RB = randVec(rng, hid, 0.5)
							}
							a.HOut = randVec(rng, rows*a.LdHOut, 1)
							hOrig := append([]float32(nil), a.HOut...)
							cOrig := append([]float32(nil), a.C...)
							wantH, wantC := cellRef(lstm, in, hid, w, r, a)
							if lstm {
								LSTMCell(&p, a)
							} else {
								GRUCell(&p, a)
							}
							tol := 2e-6 * math.Sqrt(float64(in+hid+1))
							for row := 0; row < rows; row++ {
								for j := 0; j < a.LdHOut; j++ {
									got := a.HOut[row*a.LdHOut+j]
									if j >= hid {
										if got != hOrig[row*a.LdHOut+j] {
											t.Fatalf("%s: wrote h padding", name)
										}
										continue
									}
									if d := math.Abs(float64(got) - wantH[row*hid+j]); d > tol {
										t.Fatalf("%s: h[%d,%d] = %v, want %v", name, row, j, got, wantH[row*hid+j])
									}
								}
								if !lstm {
									continue
								}
								for j := 0; j < a.LdC; j++ {
									got := a.C[row*a.LdC+j]
									if j >= hid {
										if got != cOrig[row*a.LdC+j] {
											t.Fatalf("%s: wrote c padding", name)
										}
										continue
									}
									if d := math.Abs(float64(got) - wantC[row*hid+j]); d > tol {
										t.Fatalf("%s: c[%d,%d] = %v, want %v", name, row, j, got, wantC[row*hid+j])
									}
								}
							}
						}
					}
				}
			}
		}
		restore()
	}
}

// TestCellRowIndependentOfBlock: a row computed alone equals the same row
// inside a block of four, bit for bit, so batching never changes a result.
func TestCellRowIndependentOfBlock(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for _, lstm := range []bool{true, false} {
			slots := 3
			if lstm {
				slots = 4
			}
			for _, hid := range []int{7, 32, 64} {
				const in, rows = 5, 6
				w, r := randVec(rng, slots*hid*in, 0.5), randVec(rng, slots*hid*hid, 0.5)
				var p CellWeights
				PackCell(&p, make([]float32, CellSize(slots, in, hid)), slots, in, hid, w, r)
				x, h, init := randVec(rng, rows*in, 1), randVec(rng, rows*hid, 1), randVec(rng, slots*hid, 1)
				c := randVec(rng, rows*hid, 1)
				all := &CellArgs{Rows: rows, X: x, LdX: in, H: h, LdH: hid, Init: init, RB: init[:hid],
					HOut: make([]float32, rows*hid), LdHOut: hid, C: append([]float32(nil), c...), LdC: hid}
				run := func(a *CellArgs) {
					if lstm {
						LSTMCell(&p, a)
					} else {
						GRUCell(&p, a)
					}
				}
				run(all)
				for row := 0; row < rows; row++ {
					one := &CellArgs{Rows: 1, X: x[row*in:], H: h[row*hid:], Init: init, RB: init[:hid],
						HOut: make([]float32, hid), C: append([]float32(nil), c[row*hid:(row+1)*hid]...)}
					run(one)
					for j := 0; j < hid; j++ {
						if one.HOut[j] != all.HOut[row*hid+j] || (lstm && one.C[j] != all.C[row*hid+j]) {
							t.Fatalf("%s lstm=%v H=%d: row %d unit %d differs alone and in a block", kern, lstm, hid, row, j)
						}
					}
				}
			}
		}
		restore()
	}
}

func BenchmarkCell(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kern := range kernels() {
		for _, tc := range []struct {
			lstm          bool
			rows, in, hid int
		}{{true, 1, 1, 64}, {true, 64, 1, 64}, {false, 1, 8, 32}, {false, 64, 8, 32}} {
			slots := 3
			if tc.lstm {
				slots = 4
			}
			var p CellWeights
			PackCell(&p, make([]float32, CellSize(slots, tc.in, tc.hid)), slots, tc.in, tc.hid,
				randVec(rng, slots*tc.hid*tc.in, 0.5), randVec(rng, slots*tc.hid*tc.hid, 0.5))
			a := &CellArgs{Rows: tc.rows, X: randVec(rng, tc.rows*tc.in, 1), LdX: tc.in,
				H: randVec(rng, tc.rows*tc.hid, 1), LdH: tc.hid, Init: randVec(rng, slots*tc.hid, 1),
				HOut: make([]float32, tc.rows*tc.hid), LdHOut: tc.hid, C: make([]float32, tc.rows*tc.hid), LdC: tc.hid}
			name := "gru"
			if tc.lstm {
				name = "lstm"
			}
			b.Run(fmt.Sprintf("%s/%s/rows%d_I%d_H%d", kern, name, tc.rows, tc.in, tc.hid), func(b *testing.B) {
				restore, _ := setKernel(kern)
				defer restore()
				b.ReportAllocs()
				for b.Loop() {
					if tc.lstm {
						LSTMCell(&p, a)
					} else {
						GRUCell(&p, a)
					}
				}
				b.ReportMetric(float64(tc.rows*slots*tc.hid*(tc.in+tc.hid))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFMA/s")
			})
		}
	}
}

// gru0Ref is the float64 reference of GRU0Cell.
func gru0Ref(in, hid int, w, r []float32, a *CellArgs) (hout []float64) {
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	for row := 0; row < a.Rows; row++ {
		h := a.H[row*a.LdH:][:hid]
		pre := func(g int, j int, hv []float64) float64 {
			s := float64(a.Init[row*a.LdInit+g*hid+j])
			for k := 0; k < in; k++ {
				s += float64(a.X[row*a.LdX+k]) * float64(w[(g*hid+j)*in+k])
			}
			for k := 0; k < hid; k++ {
				s += hv[k] * float64(r[(g*hid+j)*hid+k])
			}
			return s
		}
		h64 := make([]float64, hid)
		for k := range h64 {
			h64[k] = float64(h[k])
		}
		z := make([]float64, hid)
		rh := make([]float64, hid)
		for j := 0; j < hid; j++ {
			z[j] = sig(pre(0, j, h64))
			rh[j] = sig(pre(1, j, h64)) * h64[j]
		}
		for j := 0; j < hid; j++ {
			n := math.Tanh(pre(2, j, rh))
			hout = append(hout, (1-z[j])*n+z[j]*h64[j])
		}
	}
	return
}

// TestGRU0MatchesReference: the two-pass linear_before_reset=0 GRU step,
// every kernel set against the float64 reference over odd sizes.
func TestGRU0MatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for _, hid := range []int{1, 2, 5, 15, 16, 17, 31, 32, 33, 64, 67} {
			for _, in := range []int{0, 1, 3, 8, 67} {
				for _, rows := range []int{1, 3, 4, 5, 9} {
					name := fmt.Sprintf("%s H=%d I=%d rows=%d", kern, hid, in, rows)
					w := randVec(rng, 3*hid*max(in, 1), 0.5)
					r := randVec(rng, 3*hid*hid, 0.5)
					var p GRU0Weights
					PackGRU0(&p, make([]float32, GRU0Size(in, hid)), in, hid, w, r)
					a := &CellArgs{Rows: rows, LdX: in + 2, LdH: hid + 1, LdHOut: hid + 3, LdInit: 3*hid + 1}
					if rows%2 == 0 {
						a.LdInit = 0
					}
					a.X = randVec(rng, rows*a.LdX, 1)
					a.H = randVec(rng, rows*a.LdH, 1)
					a.Init = randVec(rng, max(rows*a.LdInit, 3*hid), 1)
					a.HOut = randVec(rng, rows*a.LdHOut, 1)
					hOrig := append([]float32(nil), a.HOut...)
					want := gru0Ref(in, hid, w, r, a)
					GRU0Cell(&p, a, make([]float32, rows*hid), make([]float32, rows*hid))
					tol := 2e-6 * math.Sqrt(float64(in+hid+1))
					for row := 0; row < rows; row++ {
						for j := 0; j < a.LdHOut; j++ {
							got := a.HOut[row*a.LdHOut+j]
							if j >= hid {
								if got != hOrig[row*a.LdHOut+j] {
									t.Fatalf("%s: wrote h padding", name)
								}
								continue
							}
							if d := math.Abs(float64(got) - want[row*hid+j]); d > tol {
								t.Fatalf("%s: h[%d,%d] = %v, want %v", name, row, j, got, want[row*hid+j])
							}
						}
					}
				}
			}
		}
		restore()
	}
}

// TestGRU0RowIndependentOfBlock: as TestCellRowIndependentOfBlock for the
// two-pass GRU.
func TestGRU0RowIndependentOfBlock(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for _, hid := range []int{7, 32} {
			const in, rows = 5, 6
			var p GRU0Weights
			PackGRU0(&p, make([]float32, GRU0Size(in, hid)), in, hid, randVec(rng, 3*hid*in, 0.5), randVec(rng, 3*hid*hid, 0.5))
			x, h, init := randVec(rng, rows*in, 1), randVec(rng, rows*hid, 1), randVec(rng, 3*hid, 1)
			all := &CellArgs{Rows: rows, X: x, LdX: in, H: h, LdH: hid, Init: init, HOut: make([]float32, rows*hid), LdHOut: hid}
			GRU0Cell(&p, all, make([]float32, rows*hid), make([]float32, rows*hid))
			for row := 0; row < rows; row++ {
				one := &CellArgs{Rows: 1, X: x[row*in:], H: h[row*hid:], Init: init, HOut: make([]float32, hid)}
				GRU0Cell(&p, one, make([]float32, hid), make([]float32, hid))
				for j := 0; j < hid; j++ {
					if one.HOut[j] != all.HOut[row*hid+j] {
						t.Fatalf("%s H=%d: row %d unit %d differs alone and in a block", kern, hid, row, j)
					}
				}
			}
		}
		restore()
	}
}

func BenchmarkGRU0Cell(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kern := range kernels() {
		for _, rows := range []int{1, 64} {
			const in, hid = 8, 32
			var p GRU0Weights
			PackGRU0(&p, make([]float32, GRU0Size(in, hid)), in, hid, randVec(rng, 3*hid*in, 0.5), randVec(rng, 3*hid*hid, 0.5))
			a := &CellArgs{Rows: rows, X: randVec(rng, rows*in, 1), LdX: in, H: randVec(rng, rows*hid, 1), LdH: hid,
				Init: randVec(rng, 3*hid, 1), HOut: make([]float32, rows*hid), LdHOut: hid}
			z, rh := make([]float32, rows*hid), make([]float32, rows*hid)
			b.Run(fmt.Sprintf("%s/rows%d_I%d_H%d", kern, rows, in, hid), func(b *testing.B) {
				restore, _ := setKernel(kern)
				defer restore()
				b.ReportAllocs()
				for b.Loop() {
					GRU0Cell(&p, a, z, rh)
				}
			})
		}
	}
}

// TestRNNCellMatchesReference: every kernel set against float64 over odd
// sizes, and a row alone equals the same row in a block, bit for bit.
func TestRNNCellMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, kern := range kernels() {
		restore, _ := setKernel(kern)
		for _, hid := range []int{1, 2, 5, 15, 16, 17, 31, 32, 33, 64, 67} {
			for _, in := range []int{0, 1, 3, 8, 67} {
				for _, rows := range []int{1, 3, 4, 5, 9} {
					name := fmt.Sprintf("%s H=%d I=%d rows=%d", kern, hid, in, rows)
					w := randVec(rng, hid*max(in, 1), 0.5)
					r := randVec(rng, hid*hid, 0.5)
					var p CellWeights
					PackCell(&p, make([]float32, CellSize(1, in, hid)), 1, in, hid, w, r)
					a := &CellArgs{Rows: rows, LdX: in + 2, LdH: hid + 1, LdHOut: hid + 3, LdInit: hid + 1}
					if rows%2 == 0 {
						a.LdInit = 0
					}
					a.X = randVec(rng, rows*a.LdX, 1)
					a.H = randVec(rng, rows*a.LdH, 1)
					a.Init = randVec(rng, max(rows*a.LdInit, hid), 1)
					a.HOut = randVec(rng, rows*a.LdHOut, 1)
					hOrig := append([]float32(nil), a.HOut...)
					RNNCell(&p, a)
					tol := 2e-6 * math.Sqrt(float64(in+hid+1))
					for row := 0; row < rows; row++ {
						for j := 0; j < a.LdHOut; j++ {
							got := a.HOut[row*a.LdHOut+j]
							if j >= hid {
								if got != hOrig[row*a.LdHOut+j] {
									t.Fatalf("%s: wrote h padding", name)
								}
								continue
							}
							s := float64(a.Init[row*a.LdInit+j])
							for k := 0; k < in; k++ {
								s += float64(a.X[row*a.LdX+k]) * float64(w[j*in+k])
							}
							for k := 0; k < hid; k++ {
								s += float64(a.H[row*a.LdH+k]) * float64(r[j*hid+k])
							}
							if d := math.Abs(float64(got) - math.Tanh(s)); d > tol {
								t.Fatalf("%s: h[%d,%d] = %v, want %v", name, row, j, got, math.Tanh(s))
							}
						}
						// the same row alone
						one := &CellArgs{Rows: 1, X: a.X[row*a.LdX:], H: a.H[row*a.LdH:], Init: a.Init[row*a.LdInit:], HOut: make([]float32, hid)}
						RNNCell(&p, one)
						for j := 0; j < hid; j++ {
							if one.HOut[j] != a.HOut[row*a.LdHOut+j] {
								t.Fatalf("%s: row %d unit %d differs alone and in a block", name, row, j)
							}
						}
					}
				}
			}
		}
		restore()
	}
}

func BenchmarkRNNCell(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kern := range kernels() {
		for _, rows := range []int{1, 64} {
			const in, hid = 8, 32
			var p CellWeights
			PackCell(&p, make([]float32, CellSize(1, in, hid)), 1, in, hid, randVec(rng, hid*in, 0.5), randVec(rng, hid*hid, 0.5))
			a := &CellArgs{Rows: rows, X: randVec(rng, rows*in, 1), LdX: in, H: randVec(rng, rows*hid, 1), LdH: hid,
				Init: randVec(rng, hid, 1), HOut: make([]float32, rows*hid), LdHOut: hid}
			b.Run(fmt.Sprintf("%s/rows%d_I%d_H%d", kern, rows, in, hid), func(b *testing.B) {
				restore, _ := setKernel(kern)
				defer restore()
				b.ReportAllocs()
				for b.Loop() {
					RNNCell(&p, a)
				}
			})
		}
	}
}
