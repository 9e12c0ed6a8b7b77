package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/tensorio"
)

// resumeRecipe exercises every piece of state a resume must carry: a
// shuffled order, a schedule, clipping, soft sharing, early stopping with
// best weights, validation, three tasks.
func resumeRecipe(weighting WeightingKind, optimizer OptimizerKind) Config {
	cfg := Config{
		Losses:    tinyLosses(3),
		Weighting: WeightingConfig{Kind: weighting, Seed: 9},
		Optimizer: OptimizerConfig{Kind: optimizer, LR: 0.05},
		Schedule:  Schedule{Kind: ScheduleStep, StepSize: 2, Gamma: 0.5},
		BatchSize: 5, Epochs: 4, Seed: 3, ClipNorm: 2, SoftShare: 0.01, EarlyStop: 2,
	}
	if optimizer == SGD {
		cfg.Optimizer.Momentum = 0.9
	}
	if optimizer == AdamW {
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
		for _, optimizer := range OptimizerKinds {
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

func floatParams(m *graph.Model) map[string][]float32 {
	out := map[string][]float32{}
	for name, w := range m.Graph.Initializers {
		if v, ok := w.Data.([]float32); ok {
			out[name] = v
		}
	}
	return out
}

// killResumeRecipe is the run TestKillAndResumeIsExact kills over and over.
func killResumeRecipe(dir string) Config {
	cfg := resumeRecipe("dwa", "adam")
	cfg.Epochs, cfg.EarlyStop = 30, 0
	cfg.Checkpoint, cfg.CheckpointEvery = dir, 1
	return cfg
}

// TestKillResumeHelper trains killResumeRecipe, resuming from its
// checkpoint if there is one, and saves the final weights.
func TestKillResumeHelper(t *testing.T) {
	dir := os.Getenv("MTLRUN_RESUME_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process of TestKillAndResumeIsExact")
	}
	cfg := killResumeRecipe(dir)
	if fileExists(filepath.Join(dir, stateFile)) || fileExists(filepath.Join(dir+".old", stateFile)) {
		cfg.Resume = dir
	}
	m := tinyModel(3, 4, 6, "Tanh", 7)
	if _, err := Fit(context.Background(), m, cfg, tinyData(22, 4, 3, 1), nil, Callbacks{}); err != nil {
		fmt.Println("fit:", err)
		os.Exit(3)
	}
	final := map[string]*tensor.Tensor{}
	for name, v := range floatParams(m) {
		final[name] = tensor.From([]int{len(v)}, v)
	}
	if err := tensorio.WriteNPZ(dir+".final.npz", final); err != nil {
		fmt.Println("save:", err)
		os.Exit(4)
	}
	os.Exit(0)
}

// TestKillAndResumeIsExact: a run checkpointing after every step is
// SIGKILLed at random moments and resumed each time until it finishes; its
// final weights are bit-identical to a run never killed.
func TestKillAndResumeIsExact(t *testing.T) {
	if testing.Short() {
		t.Skip("kill loop: -short")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "ck")
	ref := killResumeRecipe("")
	ref.CheckpointEvery = 0
	m := tinyModel(3, 4, 6, "Tanh", 7)
	if _, err := Fit(context.Background(), m, ref, tinyData(22, 4, 3, 1), nil, Callbacks{}); err != nil {
		t.Fatal(err)
	}
	want := floatParams(m)
	rng := rand.New(rand.NewPCG(17, 17))
	kills, finished := 0, false
	for i := 0; i < 400 && !finished; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillResumeHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), "MTLRUN_RESUME_HELPER_DIR="+dir)
		out := &strings.Builder{}
		cmd.Stdout = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("helper failed: %v\n%s", err, out.String())
			}
			finished = true
		case <-time.After(time.Duration(10+rng.IntN(30)) * time.Millisecond):
			cmd.Process.Signal(syscall.SIGKILL)
			if err := <-exited; err == nil {
				finished = true
			} else {
				kills++
			}
		}
	}
	if !finished {
		t.Fatalf("the run did not finish after %d kills", kills)
	}
	got, err := tensorio.ReadNPZ(dir + ".final.npz")
	if err != nil {
		t.Fatal(err)
	}
	final := map[string][]float32{}
	for name, v := range got {
		final[name] = v.Float32s()
	}
	sameWeights(t, fmt.Sprintf("after %d kills", kills), want, final)
	t.Logf("killed %d times at random moments, resumed each time: final weights bit-identical to the uninterrupted run", kills)
}
