package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/tensorio"
)

// A checkpoint folder holds weights.npz (the trainable parameters) and
// state.json (epoch, step, optimiser and weighting state). Both are written
// to temporary files and renamed, so a crash or Ctrl-C never leaves a torn
// checkpoint.

type checkpointState struct {
	Epoch     int            `json:"epoch"`
	Step      int            `json:"step"`
	Optimizer OptimizerState `json:"optimizer"`
	Weighting []float64      `json:"weighting,omitempty"`
	Params    []string       `json:"params"`
}

func (t *Trainer) saveCheckpoint(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	weights := map[string]*tensor.Tensor{}
	for _, p := range t.params {
		weights[safeKey(p)] = t.model.Graph.Initializers[p]
	}
	tmpW := filepath.Join(dir, ".weights.npz.tmp")
	if err := tensorio.WriteNPZ(tmpW, weights); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	st := checkpointState{Epoch: t.epoch, Step: t.step, Optimizer: t.opt.State(), Weighting: t.weighting.State(), Params: t.params}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmpS := filepath.Join(dir, ".state.json.tmp")
	if err := os.WriteFile(tmpS, data, 0o644); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Rename(tmpW, filepath.Join(dir, "weights.npz")); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Rename(tmpS, filepath.Join(dir, "state.json")); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func (t *Trainer) loadCheckpoint(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var st checkpointState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("resume: %s: %w", filepath.Join(dir, "state.json"), err)
	}
	weights, err := tensorio.ReadNPZ(filepath.Join(dir, "weights.npz"))
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	for _, p := range t.params {
		w, ok := weights[safeKey(p)]
		if !ok {
			return fmt.Errorf("resume: checkpoint has no weights for parameter %q (was it made with the same --freeze?)", p)
		}
		old := t.model.Graph.Initializers[p]
		if !tensor.SameShape(old.Shape, w.Shape) || w.DType != old.DType {
			return fmt.Errorf("resume: parameter %q is %v in the checkpoint, %v in the model", p, w, old)
		}
		t.model.Graph.Initializers[p] = w
	}
	t.epoch, t.step = st.Epoch, st.Step
	t.opt.Restore(st.Optimizer)
	t.weighting.Restore(st.Weighting)
	return nil
}

// safeKey makes a parameter name usable as an npz member name.
func safeKey(name string) string {
	out := []byte(name)
	for i, c := range out {
		if c == '/' || c == ':' || c == '\\' {
			out[i] = '_'
		}
	}
	return fmt.Sprintf("%s__%08x", out, fnvString(name))
}
