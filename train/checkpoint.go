package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/mtlrun/mtlrun/internal/exitgate"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/tensorio"
)

// A checkpoint is a folder holding weights.npz (the trainable parameters,
// the best weights so far for early stopping, and the optimiser's moment
// buffers) and state.json (the loop's position down to the next batch, the
// optimiser's step and rate, the weighting method's full state, early
// stopping, and a SHA-256 of weights.npz).
//
// It is written in full into DIR.tmp, every file and the folder fsynced,
// then swapped in: DIR is renamed to DIR.old, DIR.tmp to DIR, and DIR.old
// removed. A crash at any moment leaves either DIR or (between the two
// renames) DIR.old complete, and Resume takes whichever is there; state and
// weights are never mixed, and the checksum catches a damaged file.

const (
	checkpointFormat = 2
	stateFile        = "state.json"
	weightsFile      = "weights.npz"
)

type checkpointState struct {
	Format int      `json:"format"`
	Run    runState `json:"run"`
	// the optimiser: step and rate here, moment buffers in weights.npz
	OptimizerKind string   `json:"optimizer_kind"`
	OptimizerStep int      `json:"optimizer_step"`
	OptimizerLR   float64  `json:"optimizer_lr"`
	Slots1        []string `json:"slots1,omitempty"`
	Slots2        []string `json:"slots2,omitempty"`
	// the weighting method's state (rlw/pcgrad draw counters, DWA's loss
	// history, GradNorm's weights and initial losses, log-variances, ...)
	WeightingKind string          `json:"weighting_kind"`
	Weighting     json.RawMessage `json:"weighting"`
	Params        []string        `json:"params"`
	Best          bool            `json:"best_weights"`
	// what the run must agree on to continue exactly
	Tasks     []string `json:"tasks"`
	Data      string   `json:"data"`
	BatchSize int      `json:"batch_size"`
	Shuffle   bool     `json:"shuffle"`
	Seed      uint64   `json:"seed"`
	// SHA-256 of the other files, checked on resume
	Files map[string]string `json:"files"`
}

// checkCheckpointDir refuses a folder that holds anything but a checkpoint,
// since saving replaces the folder as a whole.
func checkCheckpointDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	for _, e := range entries {
		if n := e.Name(); n != stateFile && n != weightsFile {
			return cfgErr("--checkpoint", "%s holds %s, which is not part of a checkpoint; the folder is replaced on every save, so give a new or empty folder", dir, n)
		}
	}
	return nil
}

func (t *Trainer) saveCheckpoint(dir string) error {
	dir = filepath.Clean(dir)
	if err := checkCheckpointDir(dir); err != nil {
		return err
	}
	tmp, old := dir+".tmp", dir+".old"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := t.writeCheckpoint(tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("checkpoint: %w", err)
	}
	// swap: dir → dir.old, tmp → dir, both renames through one gate
	// (exitgate) so an exit at once never falls between them. If dir does
	// not exist, dir.old may be the only complete checkpoint (a crash
	// between the renames): keep it until the new one is in place.
	err := exitgate.Do(func() error {
		if _, err := os.Stat(dir); err == nil {
			if err := os.RemoveAll(old); err != nil {
				return err
			}
			if err := os.Rename(dir, old); err != nil {
				return err
			}
		}
		return os.Rename(tmp, dir)
	})
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func (t *Trainer) writeCheckpoint(dir string) error {
	// the folder and each file are made through exitgate: a process that
	// exits at once removes dir and knows nothing is made behind it
	if err := exitgate.Do(func() error { return os.MkdirAll(dir, 0o755) }); err != nil {
		return err
	}
	os.Chmod(dir, 0o755)
	arrays := map[string]*tensor.Tensor{}
	for _, p := range t.params {
		arrays["param__"+safeKey(p)] = t.model.Graph.Initializers[p]
	}
	if t.bestWeights != nil {
		for _, p := range t.params {
			arrays["best__"+safeKey(p)] = t.bestWeights[p]
		}
	}
	wstate := t.weighting.State()
	if len(wstate) == 0 {
		return fmt.Errorf("the %s weighting's state holds a non-finite number and cannot be saved", t.weighting.Kind())
	}
	os1 := t.opt.State()
	st := checkpointState{
		Format: checkpointFormat, Run: t.run,
		OptimizerKind: string(os1.Kind), OptimizerStep: os1.Step, OptimizerLR: os1.LR,
		WeightingKind: string(t.weighting.Kind()), Weighting: wstate,
		Params: t.params, Best: t.bestWeights != nil, Tasks: t.tasks,
		Data: t.fingerprint, BatchSize: t.cfg.BatchSize, Shuffle: !t.cfg.NoShuffle, Seed: t.cfg.Seed,
	}
	for _, slot := range []struct {
		prefix string
		m      map[string][]float32
		names  *[]string
	}{{"m1__", os1.Slots1, &st.Slots1}, {"m2__", os1.Slots2, &st.Slots2}} {
		for _, name := range sortedKeys(slot.m) {
			v := slot.m[name]
			arrays[slot.prefix+safeKey(name)] = tensor.From([]int{len(v)}, append([]float32(nil), v...))
			*slot.names = append(*slot.names, name)
		}
	}
	wpath := filepath.Join(dir, weightsFile)
	f, err := createGated(wpath)
	if err != nil {
		return err
	}
	f.Close() // WriteNPZ rewrites the entry made here; if dir is gone, it fails
	if err := tensorio.WriteNPZ(wpath, arrays); err != nil {
		return err
	}
	sum, err := syncAndHash(wpath)
	if err != nil {
		return err
	}
	st.Files = map[string]string{weightsFile: sum}
	data, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(dir, stateFile), data); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncAndHash fsyncs a written file and returns its SHA-256.
func syncAndHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	os.Chmod(path, 0o644)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// createGated creates (or truncates) path through exitgate.
func createGated(path string) (*os.File, error) {
	var f *os.File
	err := exitgate.Do(func() (err error) {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		return err
	})
	return f, err
}

func writeSynced(path string, data []byte) error {
	f, err := createGated(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// CheckpointError is a checkpoint that cannot be resumed from.
type CheckpointError struct {
	Dir string
	Msg string
}

func (e *CheckpointError) Error() string { return "resume: " + e.Dir + ": " + e.Msg }

// loadCheckpoint restores the run from dir (or from dir.old, left by a
// crash between the two renames of a save). Nothing is changed unless the
// whole checkpoint reads and verifies.
func (t *Trainer) loadCheckpoint(dir string) error {
	dir = filepath.Clean(dir)
	from := dir
	if _, err := os.Stat(filepath.Join(dir, stateFile)); err != nil {
		if _, err2 := os.Stat(filepath.Join(dir+".old", stateFile)); err2 == nil {
			from = dir + ".old"
		} else {
			return &CheckpointError{Dir: dir, Msg: "no checkpoint here (state.json is missing); start without --resume, or give the folder that --checkpoint wrote"}
		}
	}
	ck, err := readCheckpoint(from)
	if err != nil {
		return err
	}
	return t.applyCheckpoint(from, ck)
}

type loadedCheckpoint struct {
	st     checkpointState
	arrays map[string]*tensor.Tensor
}

func readCheckpoint(dir string) (*loadedCheckpoint, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, &CheckpointError{Dir: dir, Msg: err.Error()}
	}
	var st checkpointState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, &CheckpointError{Dir: dir, Msg: "state.json is damaged: " + err.Error()}
	}
	if st.Format != checkpointFormat {
		return nil, &CheckpointError{Dir: dir, Msg: fmt.Sprintf("checkpoint format %d, this mtlrun reads format %d (written by an older mtlrun? start the run again without --resume)", st.Format, checkpointFormat)}
	}
	want, ok := st.Files[weightsFile]
	if !ok {
		return nil, &CheckpointError{Dir: dir, Msg: "state.json lists no checksum for weights.npz"}
	}
	wpath := filepath.Join(dir, weightsFile)
	raw, err := os.ReadFile(wpath)
	if err != nil {
		return nil, &CheckpointError{Dir: dir, Msg: err.Error()}
	}
	sum := sha256.Sum256(raw)
	if got := hex.EncodeToString(sum[:]); got != want {
		return nil, &CheckpointError{Dir: dir, Msg: fmt.Sprintf("weights.npz does not match state.json (SHA-256 %s, recorded %s): the checkpoint is damaged", got[:12], want[:min(12, len(want))])}
	}
	arrays, err := tensorio.ReadNPZ(wpath)
	if err != nil {
		return nil, &CheckpointError{Dir: dir, Msg: err.Error()}
	}
	return &loadedCheckpoint{st: st, arrays: arrays}, nil
}

func sameStrings(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (t *Trainer) applyCheckpoint(dir string, ck *loadedCheckpoint) error {
	st := ck.st
	bad := func(format string, args ...any) error {
		return &CheckpointError{Dir: dir, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case !sameStrings(st.Tasks, t.tasks):
		return bad("made for tasks %v, this run trains %v (use the same --loss)", st.Tasks, t.tasks)
	case st.WeightingKind != string(t.weighting.Kind()):
		return bad("made with --weighting %s, this run uses %s", st.WeightingKind, t.weighting.Kind())
	case st.OptimizerKind != string(t.cfg.Optimizer.Kind.orDefault()):
		return bad("made with --optimizer %s, this run uses %s", st.OptimizerKind, t.cfg.Optimizer.Kind.orDefault())
	case st.BatchSize != t.cfg.BatchSize || st.Shuffle != !t.cfg.NoShuffle || st.Seed != t.cfg.Seed:
		return bad("made with --batch %d --shuffle=%v --seed %d; resuming exactly needs the same (this run: --batch %d --shuffle=%v --seed %d)",
			st.BatchSize, st.Shuffle, st.Seed, t.cfg.BatchSize, !t.cfg.NoShuffle, t.cfg.Seed)
	case t.fingerprint != "" && st.Data != t.fingerprint:
		return bad("made on other training data (%s; this data is %s)", st.Data, t.fingerprint)
	case !sameStrings(st.Params, t.params):
		return bad("trains %d parameters, this run %d (was it made with the same --freeze?)", len(st.Params), len(t.params))
	}
	if st.Run.Metrics == nil || len(st.Run.EpochLoss) != len(t.tasks) || len(st.Run.WeightSum) != len(t.tasks) {
		return bad("state.json has no complete loop state")
	}
	weights := map[string]*tensor.Tensor{}
	var best map[string]*tensor.Tensor
	if st.Best {
		best = map[string]*tensor.Tensor{}
	}
	for _, p := range t.params {
		old := t.model.Graph.Initializers[p]
		for _, kind := range []string{"param", "best"} {
			if kind == "best" && best == nil {
				continue
			}
			w, ok := ck.arrays[kind+"__"+safeKey(p)]
			if !ok {
				return bad("weights.npz has no %s for parameter %q", kind, p)
			}
			if !tensor.SameShape(old.Shape, w.Shape) || w.DType != old.DType {
				return bad("parameter %q is %v %v in the checkpoint, %v %v in the model", p, w.DType, w.Shape, old.DType, old.Shape)
			}
			if kind == "param" {
				weights[p] = w
			} else {
				best[p] = w
			}
		}
	}
	ostate := OptimizerState{Kind: OptimizerKind(st.OptimizerKind), Step: st.OptimizerStep, LR: st.OptimizerLR}
	for _, slot := range []struct {
		prefix string
		names  []string
		m      *map[string][]float32
	}{{"m1__", st.Slots1, &ostate.Slots1}, {"m2__", st.Slots2, &ostate.Slots2}} {
		*slot.m = map[string][]float32{}
		for _, name := range slot.names {
			v, ok := ck.arrays[slot.prefix+safeKey(name)]
			if !ok || v.DType != tensor.Float32 {
				return bad("weights.npz has no optimiser buffer for %q", name)
			}
			(*slot.m)[name] = append([]float32(nil), v.Float32s()...)
		}
	}
	// everything read and checked: apply
	if err := t.weighting.Restore(st.Weighting); err != nil {
		return bad("%v", err)
	}
	for p, w := range weights {
		t.model.Graph.Initializers[p] = w
	}
	t.bestWeights = best
	t.opt.Restore(ostate)
	t.run = st.Run
	t.run.Metrics.setLosses(t.cfg.Losses)
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
