//go:build linux

package rnn

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/mtlrun/mtlrun/internal/threadcpu"
	"github.com/mtlrun/mtlrun/ops/linalg"
)

// BenchmarkGemmNTLarge times the input projections of the issue-16 models
// at batch 64 (all T·batch rows at once, with bias): LSTM(256) layer 2
// (6400×1024×256) and the bidirectional GRU(128) (6400×384×32). cpuGFMA/s
// divides by this thread's CPU time, steadier on a shared machine.
func BenchmarkGemmNTLarge(b *testing.B) {
	for _, sz := range [][3]int{{6400, 1024, 256}, {6400, 384, 32}} {
		m, n, k := sz[0], sz[1], sz[2]
		b.Run(fmt.Sprintf("%dx%dx%d", m, n, k), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			a := randSlice(r, m*k, 1)
			p := packRows(nil, randSlice(r, n*k, 1), 0, n, k)
			bias := randSlice(r, n, 1)
			c := make([]float32, m*n)
			work := make([]float32, linalg.WorkSize(m, k))
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			t0 := threadcpu.Now()
			for b.Loop() {
				gemmNT(m, a, k, &p, bias, c, n, work)
			}
			fma := float64(m*n*k) * float64(b.N)
			b.ReportMetric(fma/b.Elapsed().Seconds()/1e9, "GFMA/s")
			b.ReportMetric(fma/(threadcpu.Now()-t0).Seconds()/1e9, "cpuGFMA/s")
		})
	}
}
