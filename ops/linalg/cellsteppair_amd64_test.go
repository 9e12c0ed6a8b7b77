//go:build linux && amd64 && !purego

package linalg

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/mtlrun/mtlrun/internal/threadcpu"
)

// BenchmarkCellStepEvictedPaired times one LSTM(256) step
// over 64 rows, avx512 fused against avx2 blocked, warm (the same Init
// and panel every step) or as in a model (Init a fresh 256 KB of a 26 MB
// projection each step, a 1 MB weight panel streamed between steps as the
// input projection's SGEMM does), alternating every step, CPU time of the
// steps alone (1200 steps whatever b.N is; the medians are reported as
// us/step metrics).
func BenchmarkCellStepEvictedPaired(b *testing.B) {
	if !cpuHas(SetAVX512) {
		b.Skip("no avx512")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	defer func(m int) { cellBlockMode = m }(cellBlockMode)
	const rows, hid, slots, T = 64, 256, 4, 100
	var p CellWeights
	PackCell(&p, make([]float32, CellSize(slots, 0, hid)), slots, 0, hid,
		randVec(rng, slots*hid, 0.5), randVec(rng, slots*hid*hid, 0.5))
	proj := randVec(rng, T*rows*slots*hid, 1)
	other := randVec(rng, 256<<10, 1) // 1 MB
	a := &CellArgs{Rows: rows, LdX: 0,
		H: randVec(rng, rows*hid, 1), LdH: hid, Init: proj, LdInit: slots * hid,
		HOut: make([]float32, rows*hid), LdHOut: hid, C: make([]float32, rows*hid), LdC: hid}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var ns [4][]float64
	var sink float32
	b.ResetTimer()
	for r := 0; r < 1200; r++ {
		cfg := r % 4
		restore, _ := setKernel([]string{SetAVX512, SetAVX2}[cfg%2])
		cellBlockMode = []int{-1, 1}[cfg%2]
		cold := cfg >= 2
		a.Init = proj[:rows*slots*hid]
		if cold {
			// the two sets' cold steps read different steps' rows (the
			// second would otherwise find the first's in cache)
			a.Init = proj[(r/4+cfg%2*T/2)%T*rows*slots*hid:]
			for i := 0; i < len(other); i += 16 {
				sink += other[i]
			}
		}
		t0 := int64(threadcpu.Now())
		LSTMCell(&p, a)
		ns[cfg] = append(ns[cfg], float64(int64(threadcpu.Now())-t0))
		restore()
	}
	_ = sink
	for cfg := range 4 {
		slices.Sort(ns[cfg])
		b.ReportMetric(ns[cfg][len(ns[cfg])/2]/1e3, []string{"avx512-warm-us", "avx2-warm-us", "avx512-cold-us", "avx2-cold-us"}[cfg])
	}
}
