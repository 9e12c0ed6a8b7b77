package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mtlrun/mtlrun/runtime"
)

// resumeRecipe exercises every piece of state a resume must carry: a
// shuffled order, a schedule, clipping, soft sharing, early stopping with
// best weights, validation, three tasks.
func resumeRecipe(weighting, optimizer string) Config {
	cfg := Config{
		Losses:    tinyLosses(3),
		Weighting: WeightingConfig{Kind: weighting, Seed: 9},
		Optimizer: OptimizerConfig{Kind: optimizer, LR: 0.05},
		Schedule:  Schedule{Kind: "step", StepSize: 2, Gamma: 0.5},
		BatchSize: 5, Epochs: 4, Seed: 3, ClipNorm: 2, SoftShare: 0.01, EarlyStop: 2,
	}
	if optimizer == "sgd" {
		cfg.Optimizer.Momentum = 0.9
	}
	if optimizer == "adamw" {
		cfg.Optimizer.WeightDecay = 0.02
	}
	return cfg
}

func sameWeights(t *testing.T, what string, a, b map[string][]float32) {
	t.Helper()
	for name, av := range a {
		bv := b[name]
		if len(av) != len(bv) {
			t.Fatalf("%s: parameter %q has %d values, %d expected", what, name, len(bv), len(av))
		}
		for i := range av {
			if math.Float32bits(av[i]) != math.Float32bits(bv[i]) {
				t.Fatalf("%s: parameter %q element %d: uninterrupted %v, resumed %v", what, name, i, av[i], bv[i])
			}
		}
	}
}

// TestResumeMatrix: for every weighting method and optimiser, a run that
// is interrupted (a cancelled context, as Ctrl-C) or crashes (stopping dead
// after a checkpoint written every few steps) at a random step and is then
// resumed ends with weights bit-identical to a run that was never stopped,
// and reports the same numbers for the epoch it finished.
func TestResumeMatrix(t *testing.T) {
	trainSet, valSet := tinyData(22, 4, 3, 1), tinyData(8, 4, 3, 2)
	rng := rand.New(rand.NewPCG(21, 21))
	cases := 0
	for _, weighting := range Weightings {
		for _, optimizer := range []string{"sgd", "adam", "adamw"} {
			cfg := resumeRecipe(weighting, optimizer)
			m := tinyModel(3, 4, 6, "Tanh", 7)
			ref, err := Fit(context.Background(), m, cfg, trainSet, valSet, Callbacks{})
			if err != nil {
				t.Fatalf("%s/%s: %v", weighting, optimizer, err)
			}
			want := floatParams(m)
			steps := 0
			for _, e := range ref.Epochs {
				steps += int(math.Ceil(float64(trainSet.Rows) / float64(cfg.BatchSize)))
				_ = e
			}
			for _, mode := range []string{"interrupt", "crash"} {
				at := 1 + rng.IntN(max(steps-1, 1))
				name := fmt.Sprintf("%s/%s/%s@%d", weighting, optimizer, mode, at)
				dir := filepath.Join(t.TempDir(), "ck")
				first := cfg
				first.Checkpoint = dir
				m1 := tinyModel(3, 4, 6, "Tanh", 7)
				tr, err := NewTrainer(m1, first)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				n := 0
				cb := Callbacks{}
				if mode == "interrupt" {
					cb.OnBatch = func(Progress) {
						if n++; n == at {
							cancel()
						}
					}
				} else {
					first.CheckpointEvery = 3
					tr.cfg.CheckpointEvery = 3
					tr.crashAt = at
				}
				_, err = tr.Fit(ctx, trainSet, valSet, cb)
				cancel()
				if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, errSimulatedCrash) {
					t.Fatalf("%s: first part: %v", name, err)
				}
				rest := cfg
				rest.Resume, rest.Checkpoint = dir, dir
				if !fileExists(filepath.Join(dir, stateFile)) {
					rest.Resume = "" // crashed before the first checkpoint: start again
				}
				m2 := tinyModel(3, 4, 6, "Tanh", 7)
				res, err := Fit(context.Background(), m2, rest, trainSet, valSet, Callbacks{})
				if err != nil {
					t.Fatalf("%s: resumed part: %v", name, err)
				}
				sameWeights(t, name, want, floatParams(m2))
				if len(res.Epochs) > 0 && len(ref.Epochs) >= res.Epochs[len(res.Epochs)-1].Epoch {
					got := res.Epochs[len(res.Epochs)-1]
					exp := ref.Epochs[got.Epoch-1]
					if got.TrainLoss != exp.TrainLoss || got.ValLoss != exp.ValLoss || fmt.Sprint(got.Weights) != fmt.Sprint(exp.Weights) {
						t.Errorf("%s: epoch %d reports loss %v val %v weights %v; uninterrupted %v %v %v", name, got.Epoch,
							got.TrainLoss, got.ValLoss, got.Weights, exp.TrainLoss, exp.ValLoss, exp.Weights)
					}
				}
				if res.Stopped != ref.Stopped {
					t.Errorf("%s: stopped %q, uninterrupted %q", name, res.Stopped, ref.Stopped)
				}
				cases++
			}
		}
	}
	t.Logf("%d interrupted or crashed runs resumed, all bit-identical to the uninterrupted run", cases)
}

func floatParams(m *runtime.Model) map[string][]float32 {
	out := map[string][]float32{}
	for name, w := range m.Graph.Initializers {
		if v, ok := w.Data.([]float32); ok {
			out[name] = v
		}
	}
	return out
}
