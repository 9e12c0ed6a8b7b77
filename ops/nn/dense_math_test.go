package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/ops"
	_ "github.com/mtlrun/mtlrun/ops/math" // the unfused activation and Add nodes
	"github.com/mtlrun/mtlrun/tensor"
)

// TestDenseMatchesOpsMath checks the fusion contract against the real
// unfused nodes: Gemm → ops/math activation, and MatMul → ops/math Add →
// activation, bit for bit, at one and two threads, for every op whose
// descriptor has the ops.Activation trait (the ones the fusion pass folds).
func TestDenseMatchesOpsMath(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	var acts []string
	for _, d := range ops.Descriptors() {
		if d.Traits&ops.Activation != 0 {
			acts = append(acts, d.Type)
		}
	}
	if len(acts) < 4 {
		t.Fatalf("activations from the registry: %v, want at least Relu, LeakyRelu, Sigmoid, Tanh", acts)
	}
	for _, act := range acts {
		for _, sz := range [][3]int{{1, 20, 128}, {64, 128, 64}, {64, 64, 1}, {67, 64, 5}, {300, 33, 17}, {1024, 64, 64}} {
			m, k, n := sz[0], sz[1], sz[2]
			for _, threads := range []int{1, 2} {
				name := fmt.Sprintf("%s %dx%dx%d t%d", act, m, k, n, threads)
				attrs := ops.Attrs{}
				if act == "LeakyRelu" {
					attrs["alpha"] = aFloat(0.07)
				}
				actOp := newOpCfg(t, "", act, 13, attrs, 1, threads)
				x, w, wt, bias := randF32(rng, m, k), randF32(rng, n, k), randF32(rng, k, n), randF32(rng, n)

				gemm := newOpCfg(t, "", "Gemm", 13, ops.Attrs{"transB": aInt(1)}, 3, threads)
				want := runOp(t, actOp, runOp(t, gemm, x, w, bias)[0])[0]
				d := newOpCfg(t, "ai.mtlrun", "Dense", 1, denseAttrs(act, ops.Attrs{"transB": aInt(1)}), 3, threads)
				sameBits(t, name+" Gemm", runOp(t, d, x, w, bias)[0], want)

				x3 := &tensor.Tensor{DType: x.DType, Shape: []int{1, m, k}, Data: x.Data}
				mm := newOpCfg(t, "", "MatMul", 13, nil, 2, threads)
				add := newOpCfg(t, "", "Add", 14, nil, 2, threads)
				want = runOp(t, actOp, runOp(t, add, runOp(t, mm, x3, wt)[0], bias)[0])[0]
				d = newOpCfg(t, "ai.mtlrun", "Dense", 1, denseAttrs(act, nil), 3, threads)
				sameBits(t, name+" MatMul+Add", runOp(t, d, x3, wt, bias)[0], want)
			}
		}
	}
}
