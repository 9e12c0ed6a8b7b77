package all_test

import (
	"testing"

	"github.com/mtlrun/mtlrun/ops"
	_ "github.com/mtlrun/mtlrun/ops/all"
	_ "github.com/mtlrun/mtlrun/runtime"        // control-flow descriptors
	_ "github.com/mtlrun/mtlrun/shapeinfer"     // attached shape rules
	_ "github.com/mtlrun/mtlrun/train/autodiff" // attached gradient rules
)

// TestRegistryComplete walks the op registry: every op has a kernel or a
// reason it has none, a shape rule or a reason, and a gradient rule or a
// waiver with a reason; no rule is attached to an op that is not defined,
// and no op is defined twice. (train/autodiff's TestEveryGradientRuleChecked
// checks every gradient rule against finite differences.)
func TestRegistryComplete(t *testing.T) {
	for _, p := range ops.Check() {
		t.Error(p)
	}
	var kernels, shapeOnly, grads, waived int
	for _, d := range ops.Descriptors() {
		if d.Kernel != nil {
			kernels++
		} else {
			shapeOnly++
		}
		if d.Grad.Differentiable() {
			grads++
		} else {
			waived++
		}
	}
	t.Logf("%d descriptors: %d with kernels, %d without; %d with gradient rules, %d waived", kernels+shapeOnly, kernels, shapeOnly, grads, waived)
}

// TestShrinkDescriptor is the example of docs/ARCHITECTURE.md's "Adding an
// op": Shrink is defined once, in ops/math's unary family, and every
// consumer sees it.
func TestShrinkDescriptor(t *testing.T) {
	d := ops.Describe("", "Shrink", 9)
	if d == nil || d.Kernel == nil || d.Shape.Kind != ops.ShapeSame || d.Grad.Kind != ops.GradUnary || d.Traits&ops.Elementwise == 0 {
		t.Fatalf("Shrink descriptor: %+v", d)
	}
	if ops.Describe("", "Shrink", 8) != nil {
		t.Error("Shrink is described at opset 8; it exists from opset 9")
	}
}
