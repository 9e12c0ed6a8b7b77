package rnn

import (
	"math"
	"testing"

	"github.com/mtlrun/mtlrun/ops/linalg"
)

// TestNaNPropagates: a NaN in one batch row's input at the last time step
// makes that row's final hidden state NaN (as IEEE arithmetic and PyTorch
// give), on the fused and the general paths, every direction and layout,
// while the other rows stay finite. (An Inf input is no finite case: it
// meets weights of both signs, Inf - Inf.) Runs on the kernel set in use (MTLRUN_KERNELS picks it).
func TestNaNPropagates(t *testing.T) {
	defer func() { forceFused = 0 }()
	t.Logf("kernel set %s", linalg.KernelSet())
	const T, N, H = 7, 11, 17
	const row = T // sequence_lens gives row i the length i mod (T+1): row T is full
	for _, c := range arenaCases() {
		for _, bad := range []float32{float32(math.NaN())} {
			rc := c.randCase(9, T, N, H)
			x := rc.inputs[0].Float32s()
			for k := 0; k < c.in; k++ {
				if rc.attrs.Int("layout", 0) == 1 {
					x[(row*T+T-1)*c.in+k] = bad
				} else {
					x[((T-1)*N+row)*c.in+k] = bad
				}
			}
			for _, mode := range []int{-1, 0, 1} {
				forceFused = mode
				out := mustRun(t, buildOp(t, rc, 1, true), rc.inputs)
				yh := out[1].Float32s()
				nd := len(yh) / (N * H)
				for d := 0; d < nd; d++ {
					for r := 0; r < N; r++ {
						off := (d*N + r) * H
						if rc.attrs.Int("layout", 0) == 1 {
							off = (r*nd + d) * H
						}
						for j := 0; j < H; j++ {
							v := float64(yh[off+j])
							switch {
							case r == row && !math.IsNaN(v):
								t.Fatalf("%s fused=%d dir %d: Y_h[%d,%d] = %v after a NaN input, want NaN", c.name, mode, d, r, j, v)
							case r != row && (math.IsNaN(v) || math.IsInf(v, 0)):
								t.Fatalf("%s fused=%d dir %d: Y_h[%d,%d] = %v, want finite", c.name, mode, d, r, j, v)
							}
						}
					}
				}
			}
		}
	}
}
