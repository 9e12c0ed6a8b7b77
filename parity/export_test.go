package parity

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mtlrun/mtlrun/edit"
	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/train"
)

// TestTrainedAndEditedExportsAgree: a model fine-tuned by mtlrun, and one
// with a grafted head, are exported and then give onnxruntime's numbers.
func TestTrainedAndEditedExportsAgree(t *testing.T) {
	requireORT(t)
	m, err := importer.Load(filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	probe := map[string]*tensor.Tensor{"input": tensor.From([]int{2, 5, 1}, make([]float32, 10))}
	if err := edit.AddHead(m, edit.HeadSpec{Name: "band", From: "trunk", Units: 3, Activation: "softmax", Seed: 4}, probe); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const n, T = 96, 9
	x, y, c := make([]float32, n*T), make([]float32, n), make([]int64, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := 0; i < n; i++ {
		y[i] = x[i*T+T-1]
		c[i] = int64(i % 3)
	}
	d, err := train.NewDataset(map[string]*tensor.Tensor{"input": tensor.From([]int{n, T, 1}, x),
		"output1": tensor.From([]int{n, 1}, y), "band": tensor.From([]int{n}, c)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := train.Config{Losses: map[string]train.Loss{"output1": train.MSE, "band": train.SparseCCE},
		Optimizer: train.OptimizerConfig{Kind: train.Adam, LR: 0.01}, BatchSize: 32, Epochs: 2, Seed: 1}
	if _, err := train.Fit(context.Background(), m, cfg, d, nil, train.Callbacks{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "trained_with_head.onnx")
	if err := exporter.Save(m, out, exporter.Options{}); err != nil {
		t.Fatal(err)
	}
	back, err := importer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, shape := range [][2]int{{1, 7}, {17, 64}} {
		in, err := RandomInputs(back, shape[0], shape[1], 3)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Check(out, back, in, 1e-4, 1e-5)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Pass {
			t.Errorf("batch %d time %d: exported trained model differs from onnxruntime:\n%s", shape[0], shape[1], rep.String())
		}
	}
}

// TestExportsAgree: every model the parity test covers, imported and
// exported by mtlrun, still gives onnxruntime's numbers.
func TestExportsAgree(t *testing.T) {
	requireORT(t)
	tmp := t.TempDir()
	n := 0
	for name, path := range parityModels(t) {
		if _, skip := ortCannot[filepath.Base(filepath.Dir(path))]; skip {
			continue
		}
		m, err := importer.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n%2 == 1 {
			// every other model goes out optimised (mtlrun export --optimize)
			if m, _, err = runtime.FoldConstants(m); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		out := filepath.Join(tmp, fmt.Sprintf("export_%d.onnx", n))
		if err := exporter.Save(m, out, exporter.Options{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back, err := importer.Load(out)
		if err != nil {
			t.Fatalf("%s: re-import: %v", name, err)
		}
		in, err := RandomInputs(back, 3, 7, 11)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rep, err := Check(out, back, in, 1e-4, 1e-5)
		if err != nil {
			var re *RunError
			if errors.As(err, &re) {
				// a fixed batch or time dim: the original refuses these inputs too
				continue
			}
			t.Fatalf("%s: %v", name, err)
		}
		if !rep.Pass {
			t.Errorf("%s: exported model differs from onnxruntime:\n%s", name, rep.String())
		}
		n++
	}
	t.Logf("%d exported models agree with onnxruntime", n)
}
