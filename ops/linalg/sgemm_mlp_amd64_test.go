//go:build amd64 && !purego

package linalg

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/mtlrun/mtlrun/internal/threadcpu"
)

// BenchmarkSgemmMLP runs mlp_gelu's two products at batch 64 (64×1024×256
// and 64×512×1024, B packed once) on every kernel set and reports
// GFMA/s of CPU time (threadcpu), steadier than wall time on a shared
// machine. "cold" sweeps 8 MB between runs so the weights come from L3
// or memory, as they do when another program ran in between.
// best-GFMA/s is the fastest single call (wall time): on a loaded machine
// the least disturbed one.
func BenchmarkSgemmMLP(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	junk := make([]float32, 2<<20)
	for _, kern := range kernels() {
		for _, sz := range [][3]int{{64, 1024, 256}, {64, 512, 1024}} {
			m, n, k := sz[0], sz[1], sz[2]
			a, bm, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
			pb := PackB(false, k, n, bm, n)
			for _, cold := range []bool{false, true} {
				name := fmt.Sprintf("%s/%dx%dx%d", kern, m, n, k)
				if cold {
					name += "/cold"
				}
				b.Run(name, func(b *testing.B) {
					restore, _ := setKernel(kern)
					defer restore()
					runtime.LockOSThread()
					defer runtime.UnlockOSThread()
					var cpu int64
					best := time.Duration(1 << 62)
					for i := 0; i < b.N; i++ {
						if cold {
							for j := 0; j < len(junk); j += 16 {
								junk[j]++
							}
						}
						t0, w0 := threadcpu.Now(), time.Now()
						SgemmPacked(false, m, 1, a, k, pb, 0, c, n)
						best = min(best, time.Since(w0))
						cpu += int64(threadcpu.Now() - t0)
					}
					if cpu > 0 { // 0 where the clock did not move
						b.ReportMetric(float64(m*n*k)*float64(b.N)/float64(cpu), "GFMA/s")
					}
					b.ReportMetric(float64(m*n*k)/float64(best), "best-GFMA/s")
				})
			}
		}
	}
}

// BenchmarkSgemmChain runs products as a model runs them, one after
// another with C holding a bias (beta 1): mlp_gelu at batch 64 (input
// 64×256 → 1024 → 512, the second product reading the first's output,
// lda 1024) and lstm2x256's input projections at batch 64, one per
// layer (6400 rows, K 16 and 256, N 1024), per linalg.RowBlock rows as
// ops/rnn runs them. It reports GFMA/s and ms of CPU time per
// sequence, and the fastest sequence's wall time (best-ms: on a shared
// machine the least disturbed one).
func BenchmarkSgemmChain(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	type prod struct{ m, k, n int }
	for _, ch := range []struct {
		name  string
		prods []prod
		chain bool // product i+1 reads product i's output
	}{
		{"mlp_gelu", []prod{{64, 256, 1024}, {64, 1024, 512}}, true},
		{"lstm2x256_in16", []prod{{6400, 16, 1024}}, false},
		{"lstm2x256_in256", []prod{{6400, 256, 1024}}, false},
	} {
		var fma int
		as, bs, cs, bias := make([][]float32, len(ch.prods)), make([]*PackedB, len(ch.prods)), make([][]float32, len(ch.prods)), make([][]float32, len(ch.prods))
		for i, p := range ch.prods {
			fma += p.m * p.k * p.n
			as[i] = randSlice(rng, p.m*p.k)
			bs[i] = PackB(false, p.k, p.n, randSlice(rng, p.k*p.n), p.n)
			cs[i] = make([]float32, p.m*p.n)
			bias[i] = randSlice(rng, p.n)
		}
		for _, kern := range kernels() {
			if kern == SetGo {
				continue
			}
			b.Run(kern+"/"+ch.name, func(b *testing.B) {
				restore, _ := setKernel(kern)
				defer restore()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				t0 := threadcpu.Now()
				best := time.Duration(1 << 62)
				for i := 0; i < b.N; i++ {
					w0 := time.Now()
					for pi, p := range ch.prods {
						a := as[pi]
						if ch.chain && pi > 0 {
							a = cs[pi-1]
						}
						for r0 := 0; r0 < p.m; r0 += RowBlock {
							r1 := min(p.m, r0+RowBlock)
							for r := r0; r < r1; r++ {
								copy(cs[pi][r*p.n:(r+1)*p.n], bias[pi])
							}
							SgemmPacked(false, r1-r0, 1, a[r0*p.k:], p.k, bs[pi], 1, cs[pi][r0*p.n:], p.n)
						}
					}
					best = min(best, time.Since(w0))
				}
				b.ReportMetric(float64(best)/1e6, "best-ms")
				if cpu := threadcpu.Now() - t0; cpu > 0 {
					b.ReportMetric(float64(fma)*float64(b.N)/float64(cpu), "GFMA/s")
					b.ReportMetric(float64(cpu)/1e6/float64(b.N), "cpu-ms/op")
				}
			})
		}
	}
}
