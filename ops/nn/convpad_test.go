package nn

import (
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestConvLargePadsNoPanic sweeps 1-D convolutions whose windows fall
// mostly or wholly in the padding (found by fuzzing): every legal geometry
// must compute, and agree with the general N-d path.
func TestConvLargePadsNoPanic(t *testing.T) {
	for w := 0; w <= 3; w++ {
		for pb := 0; pb <= 5; pb++ {
			for pe := 0; pe <= 5; pe++ {
				for _, k := range []int{1, 3, 5} {
					if w+pb+pe < k {
						continue
					}
					op, err := ops.New(&ops.Config{OpType: "Conv", Opset: 17, NumInputs: 2, NumOutputs: 1,
						Attrs: graph.Attrs{"pads": {Type: graph.AttrInts, Ints: []int64{int64(pb), int64(pe)}}}})
					if err != nil {
						t.Fatal(err)
					}
					x := tensor.From([]int{1, 2, w}, make([]float32, 2*w))
					for i := range x.Float32s() {
						x.Float32s()[i] = float32(i + 1)
					}
					wt := tensor.From([]int{2, 2, k}, make([]float32, 4*k))
					for i := range wt.Float32s() {
						wt.Float32s()[i] = 1
					}
					out, err := op.Run([]*tensor.Tensor{x, wt})
					if err != nil {
						t.Fatalf("w=%d pads=(%d,%d) k=%d: %v", w, pb, pe, k, err)
					}
					// reference: direct sum over the window
					ow := w + pb + pe - k + 1
					got := out[0].Float32s()
					for m := 0; m < 2; m++ {
						for o := 0; o < ow; o++ {
							var want float32
							for c := 0; c < 2; c++ {
								for q := 0; q < k; q++ {
									if i := o - pb + q; i >= 0 && i < w {
										want += x.Float32s()[c*w+i]
									}
								}
							}
							if got[m*ow+o] != want {
								t.Fatalf("w=%d pads=(%d,%d) k=%d: y[%d,%d] = %g, want %g", w, pb, pe, k, m, o, got[m*ow+o], want)
							}
						}
					}
				}
			}
		}
	}
}
