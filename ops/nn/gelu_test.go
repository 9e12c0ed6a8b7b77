package nn

import (
	"math"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestGeluErfAccuracy: every form of GeluErf against float64
// x·½·(1 + erf(x/√2)) over [-8, 8] on a 1/256 grid (odd length, so the
// vector tail runs too). The bound is the erf kernel's 3e-7 absolute
// error times ½|x|, plus a few float32 roundings of the result.
func TestGeluErfAccuracy(t *testing.T) {
	var xs []float32
	for v := -8.0; v <= 8; v += 1.0 / 256 {
		xs = append(xs, float32(v))
	}
	xs = append(xs, float32(math.Inf(1)), float32(math.Inf(-1)), 0)
	for form := int64(0); form < geluForms; form++ {
		scale := float32(math.Sqrt2)
		if form&1 != 0 {
			scale = float32(1 / math.Sqrt2)
		}
		op := newOpCfg(t, "ai.mtlrun", "GeluErf", 1, graph.Attrs{"scale": aFloat(scale), "form": aInt(form)}, 1, 1)
		got := runOp(t, op, tensor.From([]int{len(xs)}, xs))[0].Float32s()
		worst := 0.0
		for i, v := range xs {
			x := float64(v)
			want := 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
			if math.IsInf(x, 0) {
				if x > 0 && !math.IsInf(float64(got[i]), 1) || x < 0 && !math.IsNaN(float64(got[i])) {
					// −Inf·(1 + erf(−Inf)) = −Inf·0 is NaN, as the unfused nodes give
					t.Errorf("form %d: GELU(%v) = %v", form, x, got[i])
				}
				continue
			}
			e := math.Abs(float64(got[i]) - want)
			tol := 0.5*math.Abs(x)*3e-7 + 2.5e-7*math.Abs(want) + 1e-30
			if e > tol {
				t.Fatalf("form %d: GELU(%v) = %v, want %v (error %.3g > %.3g)", form, x, got[i], want, e, tol)
			}
			worst = max(worst, e)
		}
		t.Logf("form %d: max abs error %.3g", form, worst)
	}
	if _, err := ops.New(&ops.Config{Domain: "ai.mtlrun", OpType: "GeluErf", Opset: 1, Attrs: graph.Attrs{"form": aInt(6)}, NumInputs: 1, NumOutputs: 1}); err == nil {
		t.Error("GeluErf accepted form 6")
	}
	if _, err := ops.New(&ops.Config{Domain: "ai.mtlrun", OpType: "Dense", Opset: 1, Attrs: graph.Attrs{"activation": aStr("GeluErf"), "gelu_form": aInt(-1)}, NumInputs: 2, NumOutputs: 1}); err == nil {
		t.Error("Dense accepted gelu_form -1")
	}
}

// TestGeluTanhAccuracy: GeluTanh against float64 x·½·(1 + tanh(β(x +
// κx³))) over [-8, 8]; the bound allows tanh's 3e-7 relative error and a
// few float32 roundings of the inner and outer products.
func TestGeluTanhAccuracy(t *testing.T) {
	var xs []float32
	for v := -8.0; v <= 8; v += 1.0 / 256 {
		xs = append(xs, float32(v))
	}
	for form := int64(0); form < geluForms; form++ {
		op := newOpCfg(t, "ai.mtlrun", "GeluTanh", 1, graph.Attrs{"form": aInt(form)}, 1, 1)
		got := runOp(t, op, tensor.From([]int{len(xs)}, xs))[0].Float32s()
		worst := 0.0
		for i, v := range xs {
			x := float64(v)
			want := 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
			e := math.Abs(float64(got[i]) - want)
			if tol := 1e-6*math.Abs(x) + 1e-30; e > tol {
				t.Fatalf("form %d: GELU(%v) = %v, want %v (error %.3g > %.3g)", form, x, got[i], want, e, tol)
			}
			worst = max(worst, e)
		}
		t.Logf("form %d: max abs error %.3g", form, worst)
	}
}
