package ops

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/tensor"
)

// testDomain keeps this test's descriptors apart from the real ones.
const testDomain = "test.descriptor"

func testKernel(tag string) Factory {
	return func(*Config) (Op, error) {
		return OpFunc(func([]*tensor.Tensor) ([]*tensor.Tensor, error) { return []*tensor.Tensor{tensor.Scalar(tag)}, nil }), nil
	}
}

// domainProblems returns Check's findings about testDomain.
func domainProblems() []string {
	var out []string
	for _, p := range Check() {
		if strings.HasPrefix(p, testDomain+":") {
			out = append(out, p)
		}
	}
	return out
}

// isolate restores the registry when the test ends (so -count=N works).
func isolate(t *testing.T) {
	mu.Lock()
	defer mu.Unlock()
	saved := map[key][]*Desc{}
	for k, v := range registry {
		saved[k] = append([]*Desc(nil), v...)
	}
	sShapes, sGrads, sProblems := maps.Clone(shapes), maps.Clone(grads), slices.Clone(problems)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		registry, shapes, grads, problems = saved, sShapes, sGrads, sProblems
	})
}

func TestDescriptorRegistry(t *testing.T) {
	isolate(t)
	waive := NotDifferentiable("test op")
	// an op in two opset ranges
	Define(Desc{Domain: testDomain, Type: "Ranged", Since: 13, Kernel: testKernel("v13"), Shape: ShapeSameAsInput, Grad: waive})
	Define(Desc{Domain: testDomain, Type: "Ranged", Since: 7, Kernel: testKernel("v7"), Shape: ShapeSameAsInput, Grad: waive, Traits: Elementwise})
	// complete through attachments made before the definition (init order)
	AttachShape(testDomain, "Attached", "shape rule")
	AttachGrad(testDomain, "Attached", "grad rule")
	Define(Desc{Domain: testDomain, Type: "Attached", Since: 1, Kernel: testKernel("a")})
	// shape-only
	Define(Desc{Domain: testDomain, Type: "NoKernel", Since: 1, NoKernel: "not yet", Shape: ShapeCompare, Grad: ZeroGradient("bool output")})
	// differentiable by declaration
	Define(Desc{Domain: testDomain, Type: "Unary", Since: 1, Kernel: testKernel("u"), Shape: ShapeSameAsInput,
		Grad: Derivative(func(x, _ float64, _ Attrs) float64 { return 2 * x }).Positive(), Traits: Elementwise | Activation})

	for _, c := range []struct {
		op    string
		opset int
		tag   string // "" = unsupported
	}{
		{"Ranged", 6, ""}, {"Ranged", 7, "v7"}, {"Ranged", 12, "v7"}, {"Ranged", 13, "v13"}, {"Ranged", 0, "v13"},
		{"Attached", 5, "a"}, {"NoKernel", 5, ""}, {"Missing", 5, ""},
	} {
		k, err := New(&Config{Domain: testDomain, OpType: c.op, Opset: c.opset})
		if c.tag == "" {
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s@%d: err %v, want ErrUnsupported", c.op, c.opset, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s@%d: %v", c.op, c.opset, err)
			continue
		}
		out, _ := k.Run(nil)
		if got := out[0].Data.([]string)[0]; got != c.tag {
			t.Errorf("%s@%d: ran %s, want %s", c.op, c.opset, got, c.tag)
		}
	}

	if d := Describe(testDomain, "Ranged", 10); d == nil || d.Since != 7 || d.Traits != Elementwise {
		t.Errorf("Describe(Ranged, 10) = %+v, want the opset-7 descriptor", d)
	}
	if d := Describe(testDomain, "Attached", 1); d.Shape.Impl != "shape rule" || d.Grad.Impl != "grad rule" || !d.Grad.Differentiable() {
		t.Errorf("attachments not resolved: %+v", d)
	}
	if d := Describe(testDomain, "Unary", 1); d.Grad.Derivative(3, 0, nil) != 6 || !d.Grad.PositiveInputs || !d.Grad.Differentiable() {
		t.Errorf("Unary's derivative rule: %+v", d.Grad)
	}
	if Describe(testDomain, "NoKernel", 1).Grad.Differentiable() {
		t.Error("a ZeroGradient waiver counts as a rule")
	}
	if !HasTraits(testDomain, "Unary", Activation) || HasTraits(testDomain, "Ranged", Elementwise) {
		t.Error("HasTraits reads the latest descriptor")
	}
	if slices.Contains(Registered(), testDomain+":NoKernel") || !slices.Contains(Registered(), testDomain+":Ranged") {
		t.Error("Registered lists ops with kernels only")
	}
	// a provisional waiver, then a rule attached for it
	Define(Desc{Domain: testDomain, Type: "Later", Since: 1, Kernel: testKernel("l"), Shape: ShapeSameAsInput, Grad: NotDifferentiableYet("no rule yet")})
	if Describe(testDomain, "Later", 1).Grad.Differentiable() {
		t.Error("NotDifferentiableYet without a rule counts as a rule")
	}
	if p := domainProblems(); len(p) != 0 {
		t.Fatalf("complete descriptors reported: %v", p)
	}
	AttachGrad(testDomain, "Later", "rule")
	if !Describe(testDomain, "Later", 1).Grad.Differentiable() {
		t.Error("a rule attached to a NotDifferentiableYet op is not used")
	}
	if p := domainProblems(); len(p) != 0 {
		t.Fatalf("complete descriptors reported: %v", p)
	}

	// every kind of mistake is reported
	Define(Desc{Domain: testDomain, Type: "Bare", Since: 1, Kernel: testKernel("b")})
	Define(Desc{Domain: testDomain, Type: "Both", Since: 1, Kernel: testKernel("b"), NoKernel: "x", Shape: NoShapeRule(""), Grad: NotDifferentiable("")})
	Define(Desc{Domain: testDomain, Type: "Unary", Since: 1, Kernel: testKernel("u2"), Shape: ShapeSameAsInput, Grad: waive})
	AttachGrad(testDomain, "Unary", "late rule")
	AttachShape(testDomain, "Orphan", "rule")
	AttachShape(testDomain, "Attached", "again")
	want := []string{
		"Attached: shape rule attached twice",
		"Bare (opset 1+): no gradient rule",
		"Bare (opset 1+): no shape rule",
		"Both (opset 1+): gradient waived without a reason",
		"Both (opset 1+): has a kernel and a NoKernel reason",
		"Both (opset 1+): shape rule waived without a reason",
		"Orphan: shape rule attached to an op that is not defined",
		"Unary: defined twice for opset 1",
		"Unary: gradient rule attached in autodiff but every descriptor declares",
	}
	got := domainProblems()
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, testDomain+":"+w)
		}
		if !found {
			t.Errorf("Check does not report %q; it reports:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(got) != len(want) {
		t.Errorf("Check reports %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}
