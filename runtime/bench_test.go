package runtime_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mtlrun/mtlrun/runtime"
)

// BenchmarkModels times whole sample models through an Executor (the
// steady state a service sees) at the sizes of issue 5: batch 1 and 64,
// 50 time steps, one and two threads. rows/s is batch rows per second.
//
//	go test ./runtime -run XXX -bench Models
func BenchmarkModels(b *testing.B) {
	for _, rel := range []string{"models/seed_lstm", "testdata/pytorch/gru3", "models/mlp4"} {
		for _, batch := range []int{1, 64} {
			for _, threads := range []int{1, 2} {
				name := fmt.Sprintf("%s/batch=%d/threads=%d", filepath.Base(rel), batch, threads)
				b.Run(name, func(b *testing.B) {
					m := loadSample(b, rel)
					s, err := runtime.NewSession(m, runtime.Options{Threads: threads})
					if err != nil {
						b.Fatal(err)
					}
					ex, err := s.NewExecutor()
					if err != nil {
						b.Fatal(err)
					}
					feeds := randomFeeds(m, rand.New(rand.NewPCG(1, 1)), batch, 50)
					if _, err := ex.Run(feeds); err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					for b.Loop() {
						if _, err := ex.Run(feeds); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
				})
			}
		}
	}
}
