package train_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/train"
)

// Fine-tune the heads of a two-task model on in-memory data, watch the
// epochs through a callback, and save the result as ONNX.
func ExampleFit() {
	m, err := importer.Load(filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm", "model.onnx"))
	if err != nil {
		panic(err)
	}
	// 64 sequences of 10 steps; targets: the mean and the last value
	rng := rand.New(rand.NewPCG(1, 2))
	const n, T = 64, 10
	x, mean, last := make([]float32, n*T), make([]float32, n), make([]float32, n)
	for i := 0; i < n; i++ {
		for t := 0; t < T; t++ {
			v := float32(rng.NormFloat64())
			x[i*T+t] = v
			mean[i] += v / T
		}
		last[i] = x[i*T+T-1]
	}
	data, err := train.NewDataset(map[string]*tensor.Tensor{
		"input":   tensor.From([]int{n, T, 1}, x),
		"output1": tensor.From([]int{n, 1}, mean),
		"output2": tensor.From([]int{n, 1}, last),
	})
	if err != nil {
		panic(err)
	}
	cfg := train.Config{
		Losses:    map[string]train.Loss{"output1": train.MSE, "output2": train.MAE},
		Optimizer: train.OptimizerConfig{Kind: train.Adam, LR: 0.01},
		Freeze:    "trunk", // only the two heads learn
		BatchSize: 16, Epochs: 3, Seed: 7,
	}
	res, err := train.Fit(context.Background(), m, cfg, data, nil, train.Callbacks{
		OnEpoch: func(s train.EpochStats) { fmt.Printf("epoch %d done\n", s.Epoch) },
	})
	if err != nil {
		panic(err)
	}
	fmt.Printf("trained %d tensors, kept %d frozen\n", len(res.Trainable), len(res.Frozen))
	dir, err := os.MkdirTemp("", "mtlrun-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := exporter.Save(m, filepath.Join(dir, "fine_tuned.onnx"), exporter.Options{}); err != nil {
		panic(err)
	}
	// Output:
	// epoch 1 done
	// epoch 2 done
	// epoch 3 done
	// trained 4 tensors, kept 3 frozen
}
