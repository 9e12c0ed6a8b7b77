//go:build amd64 && !purego

package linalg

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"golang.org/x/sys/cpu"

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

// TestGeluErfRows2Bits: the two-vector AVX2 GELU rows kernel (the
// epilogue's) gives geluErfRowsAVX2's bits, every variant, with and
// without bias, widths 1…67 (pairs, an odd vector, a masked tail), rows
// with a stride, specials included; and it writes nothing outside the
// rows × n block.
func TestGeluErfRows2Bits(t *testing.T) {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		t.Skip("linalg: no AVX2+FMA")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	const rows, ld = 3, 80
	specials := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-40, -3.95, 40, -1e30}
	src := randVec(rng, rows*ld, 6)
	copy(src[5:], specials)
	bias := randVec(rng, ld, 1)
	for n := 1; n <= 67; n++ {
		for v := 0; v < 12; v++ {
			var bp unsafe.Pointer
			if v >= 6 {
				bp = unsafe.Pointer(&bias[0])
			}
			want, got := slices.Clone(src), slices.Clone(src)
			geluErfRowsAVX2(unsafe.Pointer(&want[0]), rows, n, 4*ld, bp, 1.4142135, v)
			geluErfRows2AVX2(unsafe.Pointer(&got[0]), rows, n, 4*ld, bp, 1.4142135, v)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d variant %d: x[%d] = %g (%#x), geluErfRowsAVX2 %g (%#x)", n, v, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
		}
	}
}
