package math

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/tensorio"
)

// TestShrink checks Shrink against values computed from the ONNX
// definition: y = x+bias for x < -lambd, x-bias for x > lambd, else 0.
func TestShrink(t *testing.T) {
	at := func(lambd, bias float32) ops.Attrs { return ops.Attrs{"lambd": fattr(lambd), "bias": fattr(bias)} }
	cases := []struct {
		name   string
		attrs  ops.Attrs
		in     *tensor.Tensor
		want   *tensor.Tensor
		errHas string
	}{
		// defaults lambd 0.5, bias 0; ±lambd itself maps to 0
		{name: "defaults", in: f32([]int{7}, -1, -0.5, -0.25, 0, 0.25, 0.5, 1), want: f32([]int{7}, -1, 0, 0, 0, 0, 0, 1)},
		{name: "soft f32", attrs: at(1, 0.25), in: f32([]int{2, 3}, -3, -1.5, -1, 1, 1.5, 3), want: f32([]int{2, 3}, -2.75, -1.25, 0, 0, 1.25, 2.75)},
		{name: "soft f64", attrs: at(0.1, 0.1), in: f64([]int{3}, -0.3, 0.05, 0.3), want: f64([]int{3}, -0.3+0.1, 0, 0.3-0.1)},
		{name: "f16", attrs: at(1, 0.5), in: f16([]int{3}, -2, 0.5, 4), want: f16([]int{3}, -1.5, 0, 3.5)},
		{name: "lambd zero", attrs: at(0, 1), in: f32([]int{3}, -2, 0, 2), want: f32([]int{3}, -1, 0, 1)},
		{name: "empty", in: f32([]int{0, 2}), want: f32([]int{0, 2})},
		{name: "negative lambd", attrs: at(-1, 1), in: f32([]int{3}, -3, 0, 2), want: f32([]int{3}, -2, 1, 1)},
		{name: "int input", in: i32([]int{1}, 1), errHas: "not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := runOp("Shrink", 9, c.attrs, 1, c.in)
			if c.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("error %v, want one containing %q", err, c.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			same(t, got[0], c.want)
		})
	}
	if _, err := runOp("Shrink", 8, nil, 1, f32([]int{1}, 1)); err == nil {
		t.Error("Shrink ran at opset 8; it exists from opset 9")
	}
}

// TestShrinkNodeTests runs the official ONNX node tests of Shrink (their
// attributes from model.onnx) and wants their outputs bit for bit.
func TestShrinkNodeTests(t *testing.T) {
	fixtures.Require(t, fixtures.NodeTests, fixtures.HowToGetNodeTests)
	for _, name := range []string{"test_shrink_hard", "test_shrink_soft"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(fixtures.NodeTests, name)
			fixtures.Require(t, dir, fixtures.HowToGetNodeTests)
			m, err := importer.Load(filepath.Join(dir, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			n := m.Graph.Nodes[0]
			x, err := tensorio.ReadFile(filepath.Join(dir, "test_data_set_0", "input_0.pb"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := tensorio.ReadFile(filepath.Join(dir, "test_data_set_0", "output_0.pb"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := runOp(n.OpType, m.Opset(), n.Attrs, 1, x)
			if err != nil {
				t.Fatal(err)
			}
			g, w := got[0].Data.([]float32), want.Data.([]float32)
			if !tensor.SameShape(got[0].Shape, want.Shape) || len(g) != len(w) {
				t.Fatalf("got %v, want %v", got[0], want)
			}
			for i := range w {
				if g[i] != w[i] {
					t.Fatalf("element %d: got %v, want %v (x %v, attrs %v)", i, g[i], w[i], x.Data, n.Attrs)
				}
			}
		})
	}
}
