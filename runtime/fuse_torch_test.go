package runtime_test

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestFusionOnTorchExports: real torch.onnx.export output
// (scripts/gen_fusion_fixtures.py: Linear → GELU erf → LayerNorm → Linear
// → GELU tanh → Linear, GELU scalars as Constant nodes) fuses into Dense
// nodes with GELU epilogues, and at opset 16, where LayerNorm is
// decomposed, one LayerNormPattern; the fused graph gives bitwise the
// unfused graph's results, and both match PyTorch's within 2e-6 (observed
// 1.5e-7: float32 erf/tanh kernels and summation order).
func TestFusionOnTorchExports(t *testing.T) {
	for _, c := range []struct {
		dir  string
		want []string
	}{
		{"gelu_ln16", []string{"ai.mtlrun:Dense", "ai.mtlrun:LayerNormPattern", "ai.mtlrun:Dense", ":Gemm"}},
		{"gelu_ln17", []string{"ai.mtlrun:Dense", ":LayerNormalization", "ai.mtlrun:Dense", ":Gemm"}},
	} {
		t.Run(c.dir, func(t *testing.T) {
			dir := filepath.Join(fixtures.RepoRoot(), "testdata", "fusion", c.dir)
			m, err := importer.Load(filepath.Join(dir, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			x, err := importer.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "input_0.pb"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := importer.ReadTensorFile(filepath.Join(dir, "test_data_set_0", "output_0.pb"))
			if err != nil {
				t.Fatal(err)
			}
			fused, err := runtime.NewSession(m, runtime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			plain, err := runtime.NewSession(m, runtime.Options{NoFusion: true})
			if err != nil {
				t.Fatal(err)
			}
			// the Constant nodes of the GELU scalars went with the patterns
			if ran := opTypes(fused.ExecutedGraph()); !slices.Equal(ran, c.want) {
				t.Fatalf("executed graph %v, want %v", ran, c.want)
			}
			feeds := map[string]*tensor.Tensor{"x": x}
			sameRuns(t, fused, plain, feeds)
			got, err := fused.Run(feeds)
			if err != nil {
				t.Fatal(err)
			}
			g, w := got["y"].Float32s(), want.Float32s()
			worst := 0.0
			for i := range w {
				worst = max(worst, math.Abs(float64(g[i])-float64(w[i])))
			}
			if worst > 2e-6 {
				t.Fatalf("max abs difference from PyTorch %.3g > 2e-6", worst)
			}
			t.Logf("max abs difference from PyTorch %.3g", worst)
		})
	}
}
