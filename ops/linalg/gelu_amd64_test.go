//go:build amd64 && !purego

package linalg

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/mtlrun/mtlrun/internal/threadcpu"
)

// BenchmarkGeluErfPrefix: the one-pass GELU against the unfused passes
// (divide, Erf, tail) over 64×1024 elements (mlp_gelu's hidden layer at
// batch 64), ns per element by this thread's CPU time, each pass on a
// fresh copy of the input (GELU applied to its own output again and again
// would end in subnormals; the copy costs ~0.02 ns per element).
func BenchmarkGeluErfPrefix(b *testing.B) {
	src := randVec(rand.New(rand.NewPCG(1, 1)), 64*1024, 4)
	x := make([]float32, len(src))
	t := make([]float32, len(x))
	for _, run := range []struct {
		kern    string
		onePass bool
	}{{SetAVX2, true}, {SetAVX512, true}, {SetAVX2, false}} {
		onePass := run.onePass
		name := run.kern + "/passes"
		if onePass {
			name = run.kern + "/onepass"
		}
		b.Run(name, func(b *testing.B) {
			restore, ok := setKernel(run.kern)
			defer restore()
			if !ok {
				b.Skip("this CPU lacks " + run.kern)
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			t0 := threadcpu.Now()
			for b.Loop() {
				copy(x, src)
				if onePass {
					GeluErfPrefix(x, 1.4142135, true, 0)
					continue
				}
				for i, v := range x {
					t[i] = v / 1.4142135
				}
				Erf(t)
				for i, v := range x {
					p := float32(v * float32(t[i]+1))
					x[i] = p * 0.5
				}
			}
			b.ReportMetric(float64((threadcpu.Now()-t0).Nanoseconds())/float64(b.N*len(x)), "cpu-ns/elem")
		})
	}
}
