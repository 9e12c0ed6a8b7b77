package runtime

import "github.com/mtlrun/mtlrun/ops"

// The control-flow ops' descriptors: no kernel in the registry, because the
// executor runs them itself (their bodies are graphs that read the
// enclosing scope); shape rules in shapeinfer (none for SequenceMap, whose
// values are sequences); the gradient of If/Loop/Scan is train/autodiff's
// (control.go), which runs and replays the bodies.
func init() {
	for _, op := range []string{"If", "Loop", "Scan"} {
		ops.Define(ops.Desc{Type: op, Since: 1, Traits: ops.ControlFlow,
			NoKernel: "control flow: the runtime's executor runs it (runtime/control.go)"})
	}
	ops.Define(ops.Desc{Type: "SequenceMap", Since: 17, Traits: ops.ControlFlow,
		NoKernel: "control flow: the runtime's executor runs it (runtime/control.go)",
		Shape:    ops.NoShapeRule("sequence values: shapeinfer infers tensor types only"),
		Grad:     ops.NotDifferentiable("sequence values: the tape records tensors only")})
}
