//go:build amd64 && !purego

package linalg

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"github.com/mtlrun/mtlrun/internal/threadcpu"
	"golang.org/x/sys/cpu"
)

// BenchmarkTileEfficiency states the AVX2 product tiles' speed as a
// fraction of the FMA peak measured just before them, pair by pair in
// one thread (CPU time): on a shared VM the peak itself moves with the
// other tenants' load, so a ratio per pair is steadier than GFMA/s
// against an idle peak. Products: lstm2x256's recurrent step (the
// blocked step's tiles alone, LSTM(256), 64 rows, I = 0, no gates) and
// its input projection (64×256×1024 through SgemmPacked). Metrics:
// median and 90th percentile of product/peak.
//
//	go test ./ops/linalg -run XXX -bench TileEfficiency -benchtime 2000x
func BenchmarkTileEfficiency(b *testing.B) {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		b.Skip("linalg: no AVX2+FMA")
	}
	restore, ok := setKernel(SetAVX2)
	defer restore()
	if !ok {
		b.Skip("linalg: kernel set avx2 unavailable")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const H, S, rows = 256, 4, 64
	panel := randVec(rng, H*H*S, 0.5)
	h := randVec(rng, rows*H, 1)
	init := randVec(rng, rows*S*H, 1)
	scr := make([]float32, rows*S*cellBlock)
	pb := PackB(false, H, S*H, randSlice(rng, H*S*H), S*H)
	x, c := randSlice(rng, rows*H), make([]float32, rows*S*H)
	step := func() { // cellBlocked's product calls for one step
		for u := 0; u < H/cellBlock; u++ {
			blk := panel[u*H*S*cellBlock:]
			for c0, ce := 0, 0; c0 < rows; c0 = ce {
				ce = chunkEnd(c0, rows, 6)
				for s := 0; s < S; s++ {
					i := c0
					for _, sg := range tileRuns(ce-c0, 6) {
						if sg.n == 0 {
							continue
						}
						callMul(int(mulIDsAVX2[sg.t-1]), H, unsafe.Pointer(&h[i*H]), 4*H, unsafe.Pointer(&blk[s*cellBlock]), 4*S*cellBlock,
							unsafe.Pointer(&init[i*S*H+s*H+u*cellBlock]), 4*S*H, unsafe.Pointer(&scr[i*S*cellBlock+s*cellBlock]), 4*S*cellBlock, sg.n)
						i += sg.t * sg.n
					}
				}
			}
		}
	}
	proj := func() { SgemmPacked(false, rows, 1, x, H, pb, 0, c, S*H) }
	const iters = 1 << 13 // ~14 µs of FMAs
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var r [2][]float64
	n := 0
	for b.Loop() {
		t0 := threadcpu.Now()
		fmaPeakAVX2(iters)
		t1 := threadcpu.Now()
		if n%2 == 0 {
			step()
		} else {
			proj()
		}
		t2 := threadcpu.Now()
		if t1 > t0 && t2 > t1 {
			peak := float64(iters*12*8) / float64(t1-t0)
			r[n%2] = append(r[n%2], float64(rows*S*H*H)/float64(t2-t1)/peak)
		}
		n++
	}
	for i, name := range []string{"step", "proj"} {
		if len(r[i]) == 0 {
			continue
		}
		slices.Sort(r[i])
		b.ReportMetric(r[i][len(r[i])/2], name+"/peak")
		b.ReportMetric(r[i][len(r[i])*9/10], name+"/peak-p90")
	}
}
