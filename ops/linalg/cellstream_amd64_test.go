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

// streamLayer is one layer of bench/models/lstm2x256 at batch 1 as the
// fused LSTM step sees it: LSTM(256) over 16 inputs multiplied in the
// step (a 1.06 MB panel) with the bias as Init, or over inputs projected
// beforehand (a 1 MB panel) with Init a fresh row of a 64-step projection
// chunk (256 KB, as ops/rnn's projChunk) every step.
type streamLayer struct {
	name string
	p    CellWeights
	a    CellArgs
	h    [2][]float32
	proj []float32 // layer 2: the projection chunk
	t    int
}

func newStreamLayers(rng *rand.Rand) []*streamLayer {
	const hid = 256
	var ls []*streamLayer
	for _, in := range []int{16, 0} {
		l := &streamLayer{name: "layer1"}
		PackCell(&l.p, make([]float32, CellSize(4, in, hid)), 4, in, hid, randVec(rng, 4*hid*in, 0.5), randVec(rng, 4*hid*hid, 0.5))
		l.h = [2][]float32{randVec(rng, hid, 1), make([]float32, hid)}
		l.a = CellArgs{Rows: 1, Init: randVec(rng, 4*hid, 1), C: make([]float32, hid)}
		if in > 0 {
			l.a.X, l.a.LdX = randVec(rng, in, 1), in
		} else {
			l.name = "layer2"
			l.proj = randVec(rng, 64*4*hid, 1)
		}
		ls = append(ls, l)
	}
	return ls
}

// step runs one step, H and HOut swapped from the last (so the chunk
// order alternates).
func (l *streamLayer) step() {
	if l.proj != nil {
		l.a.Init = l.proj[l.t%64*4*l.p.H:]
	}
	l.t++
	l.a.H, l.a.HOut = l.h[l.t%2], l.h[1-l.t%2]
	LSTMCell(&l.p, &l.a)
}

// BenchmarkCellOneRowStream: streamLayer steps per kernel set, CPU time.
func BenchmarkCellOneRowStream(b *testing.B) {
	for _, kern := range kernels() {
		if kern == SetGo {
			continue
		}
		for _, l := range newStreamLayers(rand.New(rand.NewPCG(1, 2))) {
			b.Run(fmt.Sprintf("%s/%s", kern, l.name), func(b *testing.B) {
				restore, _ := setKernel(kern)
				defer restore()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				t0 := threadcpu.Now()
				for b.Loop() {
					l.step()
				}
				b.ReportMetric(float64((threadcpu.Now()-t0).Nanoseconds())/float64(b.N), "cpu-ns/step")
			})
		}
	}
}

// BenchmarkCellOneRowStreamPaired: streamLayer steps, avx512, avx2 one
// call per block and avx2 looping over the blocks, alternating (two steps
// per turn, the second timed; 3000 timed steps each whatever b.N is); the
// metrics are each configuration's median CPU time per step. On a shared
// machine the avx2/avx512 ratio is the steadier figure.
func BenchmarkCellOneRowStreamPaired(b *testing.B) {
	if !cpuHas(SetAVX512) {
		b.Skip("no avx512")
	}
	defer func(v bool) { cellLoopBlocks = v }(cellLoopBlocks)
	for _, l := range newStreamLayers(rand.New(rand.NewPCG(1, 2))) {
		b.Run(l.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			names := []string{"avx512-us", "avx2-perblock-us", "avx2-loop-us"}
			ns := make([][]float64, len(names))
			for r := 0; r < 3000*len(names); r++ {
				cfg := r % len(names)
				restore, _ := setKernel([]string{SetAVX512, SetAVX2, SetAVX2}[cfg])
				cellLoopBlocks = cfg == 2
				l.step()
				t0 := threadcpu.Now()
				l.step()
				ns[cfg] = append(ns[cfg], float64(threadcpu.Now()-t0))
				restore()
			}
			for cfg := range ns {
				slices.Sort(ns[cfg])
				b.ReportMetric(ns[cfg][len(ns[cfg])/2]/1e3, names[cfg])
			}
		})
	}
}
