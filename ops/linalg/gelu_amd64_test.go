//go:build amd64 && !purego

package linalg

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// BenchmarkGeluErfPrefix: the one-pass GELU against the unfused passes
// (divide, Erf, tail) over 64×1024 elements (mlp_gelu's hidden layer at
// batch 64), ns per element by this thread's CPU time.
func BenchmarkGeluErfPrefix(b *testing.B) {
	x := randVec(rand.New(rand.NewPCG(1, 1)), 64*1024, 4)
	t := make([]float32, len(x))
	for _, onePass := range []bool{true, false} {
		name := "passes"
		if onePass {
			name = "onepass"
		}
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			t0 := threadCPU()
			for b.Loop() {
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
			b.ReportMetric(float64((threadCPU()-t0).Nanoseconds())/float64(b.N*len(x)), "cpu-ns/elem")
		})
	}
}
