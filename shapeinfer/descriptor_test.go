package shapeinfer

import (
	"testing"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestDeclaredRules runs every op whose descriptor declares its shape rule
// (ops.ShapeSameAsInput, ...) through Infer, so an op added with a
// declared rule is covered without a case of its own.
func TestDeclaredRules(t *testing.T) {
	n := 0
	for _, d := range ops.Descriptors() {
		if d.Domain != "" {
			continue
		}
		ins := []runtime.ValueInfo{vi("x", tensor.Float32, "batch", 3)}
		var want string
		switch d.Shape.Kind {
		case ops.ShapeSame:
			want = "float32[batch 3]"
		case ops.ShapeSameBool:
			want = "bool[batch 3]"
		case ops.ShapeBroadcast:
			ins, want = append(ins, vi("z", tensor.Float32, 2, 1, 3)), "float32[2 batch 3]"
		case ops.ShapeBroadcastBool:
			ins, want = append(ins, vi("z", tensor.Float32, 2, 1, 3)), "bool[2 batch 3]"
		default:
			continue
		}
		names := "x"
		if len(ins) == 2 {
			names = "x,z"
		}
		n++
		m := model(max(d.Since, 17), ins, nil, nd(d.Type, names, "y", nil))
		infos, problems, err := Infer(m)
		if err != nil {
			t.Fatalf("%s: %v", d.Type, err)
		}
		if got := infos["y"].DType.String() + infos["y"].ShapeString(); got != want {
			t.Errorf("%s: y is %s, want %s", d.Type, got, want)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", d.Type, p)
		}
	}
	t.Logf("%d ops with declared shape rules", n)
}
