//go:build linux && amd64 && !purego

package linalg

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/mtlrun/mtlrun/internal/threadcpu"
)

// BenchmarkCellOneRowStream: one row stepping through LSTM(256) as the
// two layers of bench/models/lstm2x256 do at batch 1 (16 inputs, and 0:
// the second layer's input projection is a separate SGEMM; a 1.06 MB and
// a 1 MB panel, about this L2, streamed every step),
// H and HOut swapped every step so the chunk order alternates; CPU time.
func BenchmarkCellOneRowStream(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kern := range kernels() {
		if kern == SetGo {
			continue
		}
		for _, in := range []int{16, 0} {
			const hid = 256
			var p CellWeights
			PackCell(&p, make([]float32, CellSize(4, in, hid)), 4, in, hid, randVec(rng, 4*hid*in, 0.5), randVec(rng, 4*hid*hid, 0.5))
			h0, h1 := randVec(rng, hid, 1), make([]float32, hid)
			var x []float32
			if in > 0 {
				x = randVec(rng, in, 1)
			}
			a := &CellArgs{Rows: 1, X: x, LdX: in, Init: randVec(rng, 4*hid, 1), C: make([]float32, hid)}
			b.Run(fmt.Sprintf("%s/I%d", kern, in), func(b *testing.B) {
				restore, _ := setKernel(kern)
				defer restore()
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

// BenchmarkCellOneRowStreamPaired: BenchmarkCellOneRowStream's LSTM(256)
// steps, avx512, avx2 one call per block and avx2 looping over the
// blocks, alternating step by step (3000 steps each whatever b.N is);
// the medians of each configuration's CPU time per step are the metrics.
func BenchmarkCellOneRowStreamPaired(b *testing.B) {
	if !cpuHas(SetAVX512) {
		b.Skip("no avx512")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	defer func(v bool) { cellLoopBlocks = v }(cellLoopBlocks)
	for _, in := range []int{16, 0} {
		const hid = 256
		var p CellWeights
		PackCell(&p, make([]float32, CellSize(4, in, hid)), 4, in, hid, randVec(rng, 4*hid*in, 0.5), randVec(rng, 4*hid*hid, 0.5))
		h0, h1 := randVec(rng, hid, 1), make([]float32, hid)
		var x []float32
		if in > 0 {
			x = randVec(rng, in, 1)
		}
		a := &CellArgs{Rows: 1, X: x, LdX: in, Init: randVec(rng, 4*hid, 1), C: make([]float32, hid)}
		b.Run(fmt.Sprintf("I%d", in), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			names := []string{"avx512-us", "avx2-perblock-us", "avx2-loop-us"}
			ns := make([][]float64, len(names))
			for r := 0; r < 3*len(names)*1000; r++ {
				cfg := r % len(names)
				restore, _ := setKernel([]string{SetAVX512, SetAVX2, SetAVX2}[cfg])
				cellLoopBlocks = cfg == 2
				// two steps per configuration: the second is timed, the
				// first's alternated chunk order set the cache for it
				for i := range 2 {
					a.H, a.HOut = h0, h1
					t0 := threadcpu.Now()
					LSTMCell(&p, a)
					if i == 1 {
						ns[cfg] = append(ns[cfg], float64(threadcpu.Now()-t0))
					}
					h0, h1 = h1, h0
				}
				restore()
			}
			for cfg := range ns {
				slices.Sort(ns[cfg])
				b.ReportMetric(ns[cfg][len(ns[cfg])/2]/1e3, names[cfg])
			}
		})
	}
}
