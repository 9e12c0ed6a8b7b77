//go:build amd64 && !purego

package linalg

import (
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
