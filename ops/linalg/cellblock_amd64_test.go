//go:build amd64 && !purego

package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"

	"github.com/mtlrun/mtlrun/internal/threadcpu"
	"golang.org/x/sys/cpu"
)

// TestCellBlockedMatchesFused: the blocked step (cellblock_amd64.go) gives
// the fused kernels' bits and the float64 reference's values, on every
// SIMD kernel set, over odd sizes (partial unit blocks, k blocks of
// blockK, row blocks of maxBlockRows, row chunks of blockTiles tiles, 1–5-row
// leftover tiles alone or joining the last chunk), strides,
// shared and per-row starting values, with and without RB.
func TestCellBlockedMatchesFused(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	defer func(m int) { cellBlockMode = m }(cellBlockMode)
	type size struct{ hid, in, rows int }
	sizes := []size{{300, 0, 7}, {67, 270, 13}, {20, 16, 100}, {48, 1, 197}, {33, 5, 40}, {17, 0, 64}}
	for _, hid := range []int{1, 5, 16, 17, 33, 67} {
		for _, in := range []int{0, 3, 17} {
			for _, rows := range []int{1, 5, 6, 7, 13, 25} {
				sizes = append(sizes, size{hid, in, rows})
			}
		}
	}
	ran := 0
	for _, kern := range kernels() {
		if kern == SetGo {
			continue
		}
		restore, _ := setKernel(kern)
		ran++
		for _, lstm := range []bool{true, false} {
			slots := 3
			if lstm {
				slots = 4
			}
			for n, sz := range sizes {
				hid, in, rows := sz.hid, sz.in, sz.rows
				shared := n%2 == 0
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
				if n%3 != 0 {
					a.RB = randVec(rng, hid, 0.5)
				}
				a.HOut = randVec(rng, rows*a.LdHOut, 1)
				b := *a
				b.HOut = append([]float32(nil), a.HOut...)
				b.C = append([]float32(nil), a.C...)
				wantH, wantC := cellRef(lstm, in, hid, w, r, a)
				run := func(mode int, a *CellArgs) {
					cellBlockMode = mode
					if lstm {
						LSTMCell(&p, a)
					} else {
						GRUCell(&p, a)
					}
				}
				run(-1, a)
				run(1, &b)
				if testing.Verbose() {
					t.Logf("%s: fused %v blocked %v want %v", name, a.HOut[0], b.HOut[0], wantH[0])
				}
				for i := range a.HOut {
					if math.Float32bits(a.HOut[i]) != math.Float32bits(b.HOut[i]) {
						t.Fatalf("%s: h element %d: fused %v, blocked %v", name, i, a.HOut[i], b.HOut[i])
					}
				}
				for i := range a.C {
					if math.Float32bits(a.C[i]) != math.Float32bits(b.C[i]) {
						t.Fatalf("%s: c element %d: fused %v, blocked %v", name, i, a.C[i], b.C[i])
					}
				}
				tol := 2e-6 * math.Sqrt(float64(in+hid+1))
				for row := 0; row < rows; row++ {
					for j := 0; j < hid; j++ {
						if d := math.Abs(float64(b.HOut[row*a.LdHOut+j]) - wantH[row*hid+j]); d > tol {
							t.Fatalf("%s: h[%d,%d] = %v, want %v", name, row, j, b.HOut[row*a.LdHOut+j], wantH[row*hid+j])
						}
						if lstm {
							if d := math.Abs(float64(b.C[row*a.LdC+j]) - wantC[row*hid+j]); d > tol {
								t.Fatalf("%s: c[%d,%d] = %v, want %v", name, row, j, b.C[row*a.LdC+j], wantC[row*hid+j])
							}
						}
					}
				}
			}
		}
		restore()
	}
	if ran == 0 {
		t.Skip("linalg: no SIMD kernel set on this CPU; the blocked step is not used")
	}
}

// TestCellGatePass: the AVX2 gate-pass kernels, wide (…Gates16AVX2, mode
// 0) and narrow (lstmCellGatesAVX2, gruCellGatesAVX2, mode 1), give the
// 2-row gate kernels' bits — h out and c, NaN
// payloads included — over every row count of a trip and its leftovers,
// full and partial unit blocks, and pre-activations from NaN, ±Inf and
// saturating ±200 to subnormals.
func TestCellGatePass(t *testing.T) {
	restore, ok := setKernel(SetAVX2)
	if !ok {
		t.Skip("linalg: no AVX2 on this CPU; the gate-pass kernels are not used")
	}
	defer restore()
	defer func(m int) { cellGateMode = m }(cellGateMode)
	rng := rand.New(rand.NewPCG(5, 8))
	const ldS = 4 * cellBlock
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 200, -200, 1e-40, -1e-40, 0, float32(math.Copysign(0, -1)), 88.5, -88.5}
	for _, lstm := range []bool{true, false} {
		kind := kindGruCell
		if lstm {
			kind = kindLstmCell
		}
		for _, rows := range []int{1, 2, 3, 4, 5, 6, 7, 12, 13, 64, 96} {
			for _, w := range []int{16, 13, 8, 5} {
				pre := randVec(rng, rows*ldS, 3)
				for i := range pre {
					if rng.IntN(8) == 0 {
						pre[i] = special[rng.IntN(len(special))]
					}
				}
				ld := w + 3
				h, c := randVec(rng, rows*ld, 1), randVec(rng, rows*ld, 1)
				h[rng.IntN(len(h))] = float32(math.NaN())
				var out [3]*CellArgs
				for m, mode := range []int{0, 1, -1} {
					cellGateMode = mode
					a := &CellArgs{Rows: rows, H: append([]float32(nil), h...), LdH: ld, HOut: make([]float32, rows*ld), LdHOut: ld,
						C: append([]float32(nil), c...), LdC: ld}
					f := cellFrame{ldi: 4 * ldS, hb: 4 * cellBlock, ldo: 4 * a.LdHOut, ldc: 4 * a.LdC}
					if !lstm {
						f.ldc = 4 * a.LdH
					}
					blockGates(cellSet(kind), f, append([]float32(nil), pre...), a, 0, rows, 0, w, !lstm)
					out[m] = a
				}
				for m := range 2 {
					for i := range out[m].HOut {
						if math.Float32bits(out[m].HOut[i]) != math.Float32bits(out[2].HOut[i]) ||
							math.Float32bits(out[m].C[i]) != math.Float32bits(out[2].C[i]) {
							t.Fatalf("lstm=%v rows=%d w=%d: element %d: gate pass (mode %d) h %v c %v, 2-row kernels h %v c %v",
								lstm, rows, w, i, m, out[m].HOut[i], out[m].C[i], out[2].HOut[i], out[2].C[i])
						}
					}
				}
			}
		}
	}
}

// BenchmarkCellBlocked compares the fused and the blocked step (mode -1
// and 1; 2: blocked with the 2-row gate kernels instead of the AVX2
// gate-pass kernels) at the sizes of the issue-16 models at batch 64.
//
//	go test ./ops/linalg -run XXX -bench CellBlocked
func BenchmarkCellBlocked(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	defer func(m, g int) { cellBlockMode, cellGateMode = m, g }(cellBlockMode, cellGateMode)
	for _, kern := range kernels() {
		if kern == SetGo {
			continue
		}
		for _, tc := range []struct {
			lstm          bool
			rows, in, hid int
		}{{true, 64, 1, 64}, {true, 64, 16, 256}, {true, 64, 0, 256}, {false, 64, 0, 128}, {true, 64, 0, 128}, {false, 64, 8, 32}} {
			slots := 3
			if tc.lstm {
				slots = 4
			}
			var p CellWeights
			PackCell(&p, make([]float32, CellSize(slots, tc.in, tc.hid)), slots, tc.in, tc.hid,
				randVec(rng, slots*tc.hid*max(tc.in, 1), 0.5), randVec(rng, slots*tc.hid*tc.hid, 0.5))
			a := &CellArgs{Rows: tc.rows, X: randVec(rng, tc.rows*max(tc.in, 1), 1), LdX: tc.in,
				H: randVec(rng, tc.rows*tc.hid, 1), LdH: tc.hid, Init: randVec(rng, tc.rows*slots*tc.hid, 1), LdInit: slots * tc.hid,
				HOut: make([]float32, tc.rows*tc.hid), LdHOut: tc.hid, C: make([]float32, tc.rows*tc.hid), LdC: tc.hid}
			name := "gru"
			if tc.lstm {
				name = "lstm"
			}
			for _, mode := range []int{-1, 1, 2} {
				b.Run(fmt.Sprintf("%s/%s/rows%d_I%d_H%d/mode%d", kern, name, tc.rows, tc.in, tc.hid, mode), func(b *testing.B) {
					restore, _ := setKernel(kern)
					defer restore()
					cellBlockMode, cellGateMode = min(mode, 1), 0
					if mode == 2 {
						cellGateMode = -1
					}
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					t0 := threadcpu.Now()
					for b.Loop() {
						if tc.lstm {
							LSTMCell(&p, a)
						} else {
							GRUCell(&p, a)
						}
					}
					fma := float64(tc.rows*slots*tc.hid*(tc.in+tc.hid)) * float64(b.N)
					b.ReportMetric(fma/b.Elapsed().Seconds()/1e9, "GFMA/s")
					// per CPU second of this thread: steadier than wall time on a shared machine
					b.ReportMetric(fma/(threadcpu.Now()-t0).Seconds()/1e9, "cpuGFMA/s")
				})
			}
		}
	}
}

// TestCellChunkOrder: single rows give the same bits whichever order their
// chunks run in (stepBackward), for every cell kind with several-chunk
// kernels, odd sizes and both SIMD sets.
func TestCellChunkOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 9))
	defer func(m int) { cellBackMode = m }(cellBackMode)
	for _, kern := range kernels() {
		if kern == SetGo {
			continue
		}
		restore, _ := setKernel(kern)
		for _, lstm := range []bool{true, false} {
			slots := 3
			if lstm {
				slots = 4
			}
			for _, hid := range []int{1, 7, 16, 17, 33, 64, 67, 100} {
				for _, rows := range []int{1, 3} {
					in := 5
					w, r := randVec(rng, slots*hid*in, 0.5), randVec(rng, slots*hid*hid, 0.5)
					var p CellWeights
					PackCell(&p, make([]float32, CellSize(slots, in, hid)), slots, in, hid, w, r)
					mk := func() *CellArgs {
						return &CellArgs{Rows: rows, X: randVec(rand.New(rand.NewPCG(1, 1)), rows*in, 1), LdX: in,
							H: randVec(rand.New(rand.NewPCG(2, 2)), rows*hid, 1), LdH: hid,
							Init: randVec(rand.New(rand.NewPCG(3, 3)), slots*hid, 1), RB: make([]float32, hid),
							HOut: make([]float32, rows*hid), LdHOut: hid,
							C: randVec(rand.New(rand.NewPCG(4, 4)), rows*hid, 1), LdC: hid}
					}
					var out [2]*CellArgs
					for i, mode := range []int{-1, 1} {
						cellBackMode = mode
						out[i] = mk()
						if lstm {
							LSTMCell(&p, out[i])
						} else {
							GRUCell(&p, out[i])
						}
					}
					for i := range out[0].HOut {
						if math.Float32bits(out[0].HOut[i]) != math.Float32bits(out[1].HOut[i]) ||
							math.Float32bits(out[0].C[i]) != math.Float32bits(out[1].C[i]) {
							t.Fatalf("%s lstm=%v H=%d rows=%d: element %d differs forward and backward", kern, lstm, hid, rows, i)
						}
					}
				}
			}
		}
		restore()
	}
}

// BenchmarkCellOneRow: one row stepping with H and HOut swapped every
// step, as a sequence runs, chunk order alternating (auto) or always
// forward; LSTM(64) (the seed model, 66 KB panel) and LSTM(128).
func BenchmarkCellOneRow(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	defer func(m int) { cellBackMode = m }(cellBackMode)
	for _, kern := range kernels() {
		if kern == SetGo {
			continue
		}
		for _, hid := range []int{64, 128} {
			const in = 1
			var p CellWeights
			PackCell(&p, make([]float32, CellSize(4, in, hid)), 4, in, hid, randVec(rng, 4*hid*in, 0.5), randVec(rng, 4*hid*hid, 0.5))
			h0, h1 := randVec(rng, hid, 1), make([]float32, hid)
			a := &CellArgs{Rows: 1, X: randVec(rng, in, 1), LdX: in, Init: randVec(rng, 4*hid, 1), C: make([]float32, hid)}
			for _, mode := range []int{0, -1} {
				b.Run(fmt.Sprintf("%s/H%d/mode%d", kern, hid, mode), func(b *testing.B) {
					restore, _ := setKernel(kern)
					defer restore()
					cellBackMode = mode
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					t0 := threadcpu.Now()
					for b.Loop() {
						a.H, a.HOut = h0, h1
						LSTMCell(&p, a)
						h0, h1 = h1, h0
					}
					b.ReportMetric(float64((threadcpu.Now()-t0).Nanoseconds())/float64(b.N), "cpu-ns/step")
				})
			}
		}
	}
}

// BenchmarkCellGates times the blocked step's gate pass alone (every unit
// block of one step over 64 rows, scratch already filled): the AVX2
// gate-pass kernels, wide (mode 0) and narrow (mode 1), against the 2-row
// gate kernels (mode -1).
//
//	go test ./ops/linalg -run XXX -bench CellGates
func BenchmarkCellGates(b *testing.B) {
	if restore, ok := setKernel(SetAVX2); !ok {
		b.Skip("linalg: no AVX2 on this CPU")
	} else {
		restore()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	defer func(m int) { cellGateMode = m }(cellGateMode)
	for _, tc := range []struct {
		lstm      bool
		rows, hid int
	}{{true, 64, 256}, {false, 64, 128}} {
		const ldS = 4 * cellBlock
		kind, name := kindGruCell, "gru"
		if tc.lstm {
			kind, name = kindLstmCell, "lstm"
		}
		nb := (tc.hid + cellBlock - 1) / cellBlock
		// the pre-activations, copied into the one scratch per block as the
		// products would write them (the gate-pass kernels work in place;
		// gates over their own outputs drift into slow denormal divisions)
		pre := randVec(rng, tc.rows*ldS, 2)
		scr := make([]float32, len(pre))
		c0 := randVec(rng, tc.rows*tc.hid, 1)
		a := &CellArgs{Rows: tc.rows, H: randVec(rng, tc.rows*tc.hid, 1), LdH: tc.hid,
			HOut: make([]float32, tc.rows*tc.hid), LdHOut: tc.hid, C: make([]float32, len(c0)), LdC: tc.hid}
		f := cellFrame{ldi: 4 * ldS, hb: 4 * cellBlock, ldo: 4 * a.LdHOut, ldc: 4 * a.LdC}
		if !tc.lstm {
			f.ldc = 4 * a.LdH
		}
		for _, mode := range []int{0, 1, -1} {
			b.Run(fmt.Sprintf("avx2/%s/rows%d_H%d/mode%d", name, tc.rows, tc.hid, mode), func(b *testing.B) {
				restore, _ := setKernel(SetAVX2)
				defer restore()
				cellGateMode = mode
				ks := cellSet(kind)
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				t0 := threadcpu.Now()
				for b.Loop() {
					copy(a.C, c0)
					for u := 0; u < nb; u++ {
						copy(scr, pre)
						blockGates(ks, f, scr, a, 0, tc.rows, u*cellBlock, min(cellBlock, tc.hid-u*cellBlock), !tc.lstm)
					}
				}
				b.ReportMetric(float64((threadcpu.Now()-t0).Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// TestTileRuns: the row split covers every row once with tiles of 1…T
// rows and leaves no tile shorter than (T+1)/2 rows beside full ones.
func TestTileRuns(t *testing.T) {
	for _, tc := range []struct {
		r, T int
		want [3]tileRun
	}{
		{4, 6, [3]tileRun{{4, 1}}},
		{6, 6, [3]tileRun{{6, 1}, {0, 0}}},
		{7, 6, [3]tileRun{{6, 0}, {4, 1}, {3, 1}}},
		{8, 6, [3]tileRun{{6, 0}, {4, 2}}},
		{9, 6, [3]tileRun{{6, 0}, {5, 1}, {4, 1}}},
		{10, 6, [3]tileRun{{6, 1}, {4, 1}}},
		{28, 6, [3]tileRun{{6, 4}, {4, 1}}},
		{25, 12, [3]tileRun{{12, 1}, {7, 1}, {6, 1}}},
	} {
		if got := tileRuns(tc.r, tc.T); got != tc.want {
			t.Errorf("tileRuns(%d, %d) = %v, want %v", tc.r, tc.T, got, tc.want)
		}
	}
	for T := 1; T <= 12; T++ {
		for r := 1; r <= 60; r++ {
			sum := 0
			for _, sg := range tileRuns(r, T) {
				if sg.n > 0 && (sg.t < 1 || sg.t > T) {
					t.Fatalf("tileRuns(%d, %d): a tile of %d rows", r, T, sg.t)
				}
				if sg.n > 0 && r > T && sg.t < (T+1)/2 {
					t.Fatalf("tileRuns(%d, %d): a tile of %d rows beside full ones", r, T, sg.t)
				}
				sum += sg.t * sg.n
			}
			if sum != r {
				t.Fatalf("tileRuns(%d, %d) covers %d rows", r, T, sum)
			}
		}
	}
}

// BenchmarkCellMulRows: the AVX2 product tiles by height, 60 rows of
// LSTM(256)'s h phase in tiles of t rows (4 per call, as cellBlocked's
// chunks), every unit block and slot: the per-row speeds behind
// tileRuns. cpuGFMA/s per CPU second of this thread.
func BenchmarkCellMulRows(b *testing.B) {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		b.Skip("linalg: no AVX2+FMA")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const H, S, rows = 256, 4, 60
	panel := randVec(rng, H*H*S, 0.5)
	h := randVec(rng, rows*H, 1)
	init := randVec(rng, rows*S*H, 1)
	scr := make([]float32, rows*S*cellBlock)
	for t := 6; t >= 1; t-- {
		b.Run(fmt.Sprintf("rows%d", t), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			t0 := threadcpu.Now()
			for b.Loop() {
				for u := 0; u < H/cellBlock; u++ {
					blk := panel[u*H*S*cellBlock:]
					for c0 := 0; c0 < rows; c0 += 4 * t {
						n := (min(rows, c0+4*t) - c0) / t
						for s := 0; s < S; s++ {
							callMul(int(mulIDsAVX2[t-1]), H, unsafe.Pointer(&h[c0*H]), 4*H, unsafe.Pointer(&blk[s*cellBlock]), 4*S*cellBlock,
								unsafe.Pointer(&init[c0*S*H+s*H+u*cellBlock]), 4*S*H, unsafe.Pointer(&scr[c0*S*cellBlock+s*cellBlock]), 4*S*cellBlock, n)
						}
					}
				}
			}
			b.ReportMetric(float64(rows*S*H*H)*float64(b.N)/(threadcpu.Now()-t0).Seconds()/1e9, "cpuGFMA/s")
		})
	}
}
