//go:build amd64 && !purego

package linalg

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/cpu"
)

func fmaPeakAVX2(n int)
func fmaPeakAVX512(n int)

// BenchmarkFMAPeak measures this core's float32 FMA peak (GFLOP/s), the
// yardstick for stating kernel speed as a fraction of the machine.
func BenchmarkFMAPeak(b *testing.B) {
	const iters = 1 << 16
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		b.Run("avx2", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				fmaPeakAVX2(iters)
			}
			b.ReportMetric(float64(iters)*12*8*2*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
	if cpu.X86.HasAVX512F {
		b.Run("avx512", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				fmaPeakAVX512(iters)
			}
			b.ReportMetric(float64(iters)*12*16*2*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkFMAPeakParallel states the machine's parallel compute ceiling:
// the same FMA loop as BenchmarkFMAPeak on 1 and on 2 goroutines at once,
// each locked to its OS thread and given the same fixed work per op
// (iters loop trips), reporting the aggregate GFLOP/s of all of them.
// Comparing threads=2 with threads=1 tells what two threads can ever give
// on this machine, whatever the kernel: on a VM whose two vCPUs are SMT
// siblings of one core the ratio stays near 1×, and no parallel split of
// a compute-bound product can beat it.
func BenchmarkFMAPeakParallel(b *testing.B) {
	const iters = 1 << 16
	type isa struct {
		name  string
		ok    bool
		lanes int
		run   func(int)
	}
	for _, s := range []isa{
		{"avx2", cpu.X86.HasAVX2 && cpu.X86.HasFMA, 8, fmaPeakAVX2},
		{"avx512", cpu.X86.HasAVX512F, 16, fmaPeakAVX512},
	} {
		if !s.ok {
			continue
		}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", s.name, threads), func(b *testing.B) {
				if runtime.NumCPU() < threads {
					b.Skipf("%d CPUs", runtime.NumCPU())
				}
				// every goroutine needs a P of its own to run at the same time
				if runtime.GOMAXPROCS(0) < threads {
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
				}
				var ready, done sync.WaitGroup
				start := make(chan struct{})
				ready.Add(threads)
				done.Add(threads)
				for g := 0; g < threads; g++ {
					go func() {
						defer done.Done()
						runtime.LockOSThread()
						defer runtime.UnlockOSThread()
						ready.Done()
						<-start
						for i := 0; i < b.N; i++ {
							s.run(iters)
						}
					}()
				}
				ready.Wait() // threads locked and waiting: time only the FMAs
				b.ResetTimer()
				close(start)
				done.Wait()
				b.StopTimer()
				flops := float64(iters) * 12 * float64(s.lanes) * 2 * float64(b.N) * float64(threads)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
