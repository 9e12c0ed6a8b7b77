package autodiff

import (
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestEveryGradientRuleChecked walks the op registry so that no gradient
// rule goes unchecked against float64 central differences: a unary
// element-wise op's declared derivative is checked here on random inputs
// (no test to write when adding one); every other rule needs a hand-written
// case in gradCases or recurrentGradCases, or a NoFDCheck reason in its
// descriptor. Control flow (Loop, Scan, If) is checked by control_test.go.
func TestEveryGradientRuleChecked(t *testing.T) {
	covered := map[string]bool{"Loop": true, "Scan": true, "If": true}
	for _, c := range append(append(gradCases(), recurrentGradCases()...), opsetGradCases()...) {
		covered[c.op] = true
	}
	rng := rand.New(rand.NewPCG(5, 6))
	generated, listed := 0, 0
	for _, d := range ops.Descriptors() {
		if !d.Grad.Differentiable() {
			continue
		}
		switch {
		case d.Grad.NoFDCheck != "":
			t.Logf("%s: no finite-difference check: %s", d.Type, d.Grad.NoFDCheck)
		case d.Domain != "":
			t.Errorf("%s:%s has a gradient rule but the gradient checks build ai.onnx nodes only", d.Domain, d.Type)
		case d.Grad.Kind == ops.GradUnary:
			x := randT(rng, d.Grad.PositiveInputs, 3, 4)
			if lo, hi := d.Grad.InputLo, d.Grad.InputHi; lo < hi {
				v := x.Float64s()
				for i := range v {
					v[i] = lo + (hi-lo)*rng.Float64()
				}
			}
			gc := gradCase{name: "derivative_" + d.Type, op: d.Type, opset: max(17, d.Since), inputs: []*tensor.Tensor{x}}
			t.Run(gc.name, func(t *testing.T) { checkGradients(t, gc) })
			generated++
		case !covered[d.Type]:
			t.Errorf("%s (opset %d+) has a gradient rule but no finite-difference case: add one to gradCases in rules_test.go, or give its descriptor a NoFDCheck reason", d.Type, d.Since)
		default:
			listed++
		}
	}
	t.Logf("%d derivative rules checked here, %d rules checked by the hand-written cases", generated, listed)
}
