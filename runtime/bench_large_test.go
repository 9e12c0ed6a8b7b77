//go:build linux

package runtime_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"

	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/internal/threadcpu"
	"github.com/mtlrun/mtlrun/runtime"
)

// BenchmarkLargeModels runs the generated models of bench/models (issue
// 16) at batch 64 through an Executor on one thread; cpu-ms/op is this
// thread's CPU time per run (steadier than wall time on a shared
// machine). For CPU profiles:
//
//	MTLRUN_KERNELS=avx2 go test ./runtime -run XXX -bench LargeModels/bigru128 -cpuprofile cpu.out
//
// It skips when bench/models has not been generated.
func BenchmarkLargeModels(b *testing.B) {
	for _, c := range []struct {
		name string
		time int
	}{{"bigru128", 100}, {"mlp_gelu", 1}, {"lstm2x256", 100}} {
		b.Run(c.name, func(b *testing.B) {
			rel := filepath.Join("bench/models", c.name)
			if _, err := os.Stat(filepath.Join(fixtures.RepoRoot(), rel, "model.onnx")); err != nil {
				b.Skip("bench/models not generated (scripts/gen_bench_models.py)")
			}
			m := loadSample(b, rel)
			s, err := runtime.NewSession(m, runtime.Options{Threads: 1})
			if err != nil {
				b.Fatal(err)
			}
			ex, err := s.NewExecutor()
			if err != nil {
				b.Fatal(err)
			}
			feeds := randomFeeds(m, rand.New(rand.NewPCG(1, 1)), 64, c.time)
			if _, err := ex.Run(feeds); err != nil {
				b.Fatal(err)
			}
			goruntime.LockOSThread()
			defer goruntime.UnlockOSThread()
			b.ReportAllocs()
			cpu0 := threadcpu.Now()
			for b.Loop() {
				if _, err := ex.Run(feeds); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(threadcpu.Now()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
		})
	}
}
