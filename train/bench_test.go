package train

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/tensor"
)

// BenchmarkSeedTraining: the seed model (LSTM(64), two heads), T=50, batch
// 32, Adam, mse on both tasks — the configuration scripts/
// bench_train_torch.py times in PyTorch.
func BenchmarkSeedTraining(b *testing.B) {
	m, err := importer.Load(filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm", "model.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	const batch, T = 32, 50
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, batch*T)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y1, y2 := make([]float32, batch), make([]float32, batch)
	for i := range y1 {
		y1[i], y2[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	d, _ := NewDataset(map[string]*tensor.Tensor{"input": tensor.From([]int{batch, T, 1}, x),
		"output1": tensor.From([]int{batch, 1}, y1), "output2": tensor.From([]int{batch, 1}, y2)})
	tr, err := NewTrainer(m, Config{Losses: map[string]Loss{"output1": MSE, "output2": MSE},
		Optimizer: OptimizerConfig{Kind: Adam, LR: 1e-3}, BatchSize: batch})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Step(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}
