package train

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/tensorio"
)

// FuzzConfig drives Config.Validate, NewTrainer and a short Fit with
// arbitrary settings: whatever they are, the result is an error or a run,
// never a panic.
func FuzzConfig(f *testing.F) {
	f.Add("mse", "fixed", "adam", "step", "none", "", 0.01, 0.0, 0.0, 1.0, 0.0, 4, 1, 0, 0, 0.5, 2)
	f.Add("sparse_cce", "uncertainty", "sgd", "cosine", "trunk", "skip-batch", 0.1, 0.9, 1.0, -1.0, 0.1, 0, 0, 2, 3, 0.0, 0)
	f.Add("bce", "pcgrad", "adamw", "exp", "^head", "stop", 1e30, 1.5, -2.0, math.NaN(), -1.0, -4, -1, -1, -1, 1.5, 1)
	f.Fuzz(func(t *testing.T, loss, weighting, opt, schedule, freeze, onNaN string, lr, momentum, clip, lossWeight, soft float64,
		batch, epochs, early, every int, gamma float64, stepSize int) {
		cfg := Config{
			Losses:          map[string]Loss{"task1": LossKind(loss), "task2": MSE},
			LossWeights:     map[string]float64{"task1": lossWeight},
			Weighting:       WeightingConfig{Kind: WeightingKind(weighting)},
			Optimizer:       OptimizerConfig{Kind: OptimizerKind(opt), LR: lr, Momentum: momentum},
			Schedule:        Schedule{Kind: ScheduleKind(schedule), Gamma: gamma, StepSize: stepSize},
			BatchSize:       batch % 64,
			Epochs:          epochs % 3,
			Freeze:          freeze,
			ClipNorm:        clip,
			SoftShare:       soft,
			EarlyStop:       early % 4,
			CheckpointEvery: every % 4,
			OnNaN:           OnNaNAction(onNaN),
		}
		if cfg.Validate() != nil {
			return
		}
		tr, err := NewTrainer(tinyModel(2, 3, 4, "Tanh", 1), cfg)
		if err != nil {
			return
		}
		tr.cfg.Checkpoint = "" // no files from a fuzz run
		tr.cfg.CheckpointEvery = 0
		d := tinyData(6, 3, 2, 1)
		var val *Dataset
		if cfg.EarlyStop > 0 {
			val = tinyData(3, 3, 2, 2)
		}
		tr.Fit(context.Background(), d, val, Callbacks{})
	})
}

// FuzzLoadCSV: any CSV text and column mapping gives a data set or an
// error; a data set then passes through CheckData and Split without a panic.
func FuzzLoadCSV(f *testing.F) {
	f.Add("a,b,c\n1,2,3\n4,5,6\n", "x=a:b,task1=c,task2=c", 0.5)
	f.Add("a,b\n1\n", "x=a:b:a,task1=b,task2=a", 1.5)
	f.Add("a\n,\nnan,inf\n-inf\n", "x=a:a:a,task1=a,task2=a", 0.2)
	f.Add("\"a\nb\",c\n", "x=c", -1.0)
	tr, err := NewTrainer(tinyModel(2, 3, 4, "Tanh", 1), Config{Losses: map[string]Loss{"task1": MSE, "task2": SparseCCE}, Optimizer: OptimizerConfig{LR: 0.1}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text, mapping string, frac float64) {
		m := map[string][]string{}
		for _, part := range strings.Split(mapping, ",") {
			k, v, _ := strings.Cut(part, "=")
			m[k] = strings.Split(v, ":")
		}
		d, err := LoadCSV(strings.NewReader(text), m)
		if err != nil {
			return
		}
		d.RowName(0)
		d.Split(frac)
		tr.CheckData(d, "training")
	})
}

// FuzzLoadNPZ: any file given as .npz gives a data set or an error, and
// the data set then passes through CheckData, Split and a step.
func FuzzLoadNPZ(f *testing.F) {
	var buf bytes.Buffer
	dir := f.TempDir()
	seed := filepath.Join(dir, "seed.npz")
	d := tinyData(5, 3, 2, 1)
	d.Arrays["extra"] = tensor.From([]int{2, 2}, []float64{1, 2, 3, 4})
	if err := tensorio.WriteNPZ(seed, d.Arrays); err != nil {
		f.Fatal(err)
	}
	data, _ := os.ReadFile(seed)
	f.Add(data, 0.4)
	buf.Write(data[:len(data)/2])
	f.Add(buf.Bytes(), 0.5)
	f.Add([]byte("PK\x03\x04"), 2.0)
	tr, err := NewTrainer(tinyModel(2, 3, 4, "Tanh", 1), Config{Losses: tinyLosses(2), Optimizer: OptimizerConfig{LR: 0.1}, BatchSize: 2})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, file []byte, frac float64) {
		path := filepath.Join(t.TempDir(), "d.npz")
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := LoadNPZ(path)
		if err != nil {
			return
		}
		d.Split(frac)
		sel, _, err := tr.CheckData(d, "training")
		if err != nil {
			return
		}
		tr.Step(sel.Take([]int{0}))
	})
}
