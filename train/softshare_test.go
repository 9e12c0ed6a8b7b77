package train

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/tensor"
)

// The seed model's two heads are towers of equal shape: soft sharing must
// pair them and pull them together.
func TestSoftSharing(t *testing.T) {
	m, err := importer.Load(filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if pairs := MatchTowers(m.Graph); len(pairs) != 2 || pairs[0][0] != "head1.weight" || pairs[0][1] != "head2.weight" {
		t.Fatalf("tower pairs %v", pairs)
	}
	dist := func(lambda float64) float64 {
		m, _ := importer.Load(filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm", "model.onnx"))
		x := make([]float32, 32*5)
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		y1, y2 := make([]float32, 32), make([]float32, 32)
		for i := range y1 {
			y1[i], y2[i] = 1, -1
		}
		d, _ := NewDataset(map[string]*tensor.Tensor{"input": tensor.From([]int{32, 5, 1}, x),
			"output1": tensor.From([]int{32, 1}, y1), "output2": tensor.From([]int{32, 1}, y2)})
		cfg := Config{Losses: map[string]Loss{"output1": MSE, "output2": MSE}, Freeze: "trunk", SoftShare: lambda,
			Optimizer: OptimizerConfig{Kind: SGD, LR: 0.05}, BatchSize: 8, Epochs: 5, NoShuffle: true}
		if _, err := Fit(context.Background(), m, cfg, d, nil, Callbacks{}); err != nil {
			t.Fatal(err)
		}
		a, b := m.Graph.Initializers["head1.weight"].Float32s(), m.Graph.Initializers["head2.weight"].Float32s()
		var s float64
		for i := range a {
			s += (float64(a[i]) - float64(b[i])) * (float64(a[i]) - float64(b[i]))
		}
		return math.Sqrt(s)
	}
	free, shared := dist(0), dist(5)
	t.Logf("‖head1 − head2‖ after training: %.4f without, %.4f with soft sharing", free, shared)
	if !(shared < free/2) {
		t.Errorf("soft sharing did not pull the towers together: %.4f vs %.4f", shared, free)
	}
}
