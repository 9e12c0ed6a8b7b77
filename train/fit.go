package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/train/autodiff"
)

// Config is a training recipe. Zero values are sensible defaults: fixed
// weights of 1, SGD, batch 32, 1 epoch, shuffling on, nothing frozen.
type Config struct {
	Losses      map[string]Loss    // task output → loss, e.g. MSE or SparseCCELogits (outputs without one are not trained toward)
	LossWeights map[string]float64 // task output → fixed weight (default 1)
	Weighting   WeightingConfig
	Optimizer   OptimizerConfig
	Schedule    Schedule
	BatchSize   int
	Epochs      int
	NoShuffle   bool
	Seed        uint64
	Freeze      string  // none, trunk, heads, or a regular expression over parameter names
	ClipNorm    float64 // 0: no clipping
	EarlyStop   int     // patience in epochs on validation loss; 0: off
	SoftShare   float64 // λ of soft parameter sharing between matched towers
	// ClassWeights maps a classification task to one weight per class
	// (Keras' class_weight); per-row weights come from data arrays named
	// SampleWeightPrefix+task.
	ClassWeights map[string][]float64
	// Checkpoint, when set, is a folder that receives a checkpoint after
	// every epoch (and when the context is cancelled).
	Checkpoint string
	// CheckpointEvery, when positive, also writes the checkpoint every that
	// many optimisation steps within an epoch.
	CheckpointEvery int
	// Resume, when set, continues from a checkpoint folder at the batch
	// after the one it was written at.
	Resume string
	// OnNaN says what a non-finite loss or gradient does: OnNaNStop (the
	// default) ends Fit with a *NonFiniteError, OnNaNSkipBatch skips it.
	OnNaN OnNaNAction
}

// TaskMetrics are one task's numbers over an epoch.
type TaskMetrics struct {
	Loss     float64 `json:"loss"`
	MSE      float64 `json:"mse,omitempty"`
	MAE      float64 `json:"mae,omitempty"`
	Accuracy float64 `json:"accuracy,omitempty"`
	Rows     int     `json:"rows"`
	Kind     string  `json:"kind"`
}

// EpochStats is what Fit reports after each epoch.
type EpochStats struct {
	Epoch     int                    `json:"epoch"`
	LR        float64                `json:"lr"`
	TrainLoss float64                `json:"train_loss"`
	ValLoss   float64                `json:"val_loss,omitempty"`
	Train     map[string]TaskMetrics `json:"train"`
	Val       map[string]TaskMetrics `json:"val,omitempty"`
	Weights   map[string]float64     `json:"task_weights,omitempty"`    // applied by the method, mean over the epoch's steps
	Skipped   int                    `json:"skipped_batches,omitempty"` // batches skipped this epoch (--on-nan skip-batch)
	Seconds   float64                `json:"seconds"`
	Samples   float64                `json:"samples_per_second"`
}

// Progress is reported after each batch.
type Progress struct {
	Epoch, Epochs    int
	Batch, Batches   int
	RunningLoss      float64
	SamplesPerSecond float64
}

// Callbacks observe training. Any may be nil.
type Callbacks struct {
	OnBatch func(Progress)
	OnEpoch func(EpochStats)
}

// Result sums up a Fit.
type Result struct {
	Epochs      []EpochStats
	Stopped     string // "", "early stopping", "interrupted"
	BestEpoch   int
	Trainable   []string
	Frozen      []string
	Fingerprint string
	Notes       []string // e.g. arrays in the data that the model does not use
}

// Trainer holds the state of one training run over a model whose float
// initializers it updates (replacing the tensors, never writing into them).
type Trainer struct {
	model     *graph.Model
	cfg       Config
	tasks     []string // outputs with a loss, in graph order
	params    []string // trainable parameters
	frozen    []string
	trunk     map[string]bool
	lastLayer []string // GradNorm's last shared layer
	pairs     [][2]string
	prog      *autodiff.Program
	opt       Optimizer
	weighting Weighting

	run         runState
	applied     []float64 // the task weights of the last step
	skipped     bool      // the last step skipped its batch
	bestWeights map[string]*tensor.Tensor
	fingerprint string // of the training data, recorded in checkpoints
	resumed     bool   // Resume has loaded the checkpoint
	crashAt     int    // tests: stop dead after this step
	// the optimiser's moment buffers before the step's update (keepSlots)
	kept [2]map[string][]float32
}

// NewTrainer validates the recipe against the model.
func NewTrainer(m *graph.Model, cfg Config) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 32
	}
	if cfg.Epochs <= 0 {
		cfg.Epochs = 1
	}
	t := &Trainer{model: m, cfg: cfg, trunk: map[string]bool{}}
	for _, name := range sortedKeys(cfg.Losses) {
		if _, ok := m.Graph.Output(name); !ok {
			var outs []string
			for _, o := range m.Graph.Outputs {
				outs = append(outs, o.Name)
			}
			return nil, cfgErr("--loss", "names %q, which is not an output (outputs: %s)", name, strings.Join(outs, ", "))
		}
	}
	for _, o := range m.Graph.Outputs {
		if _, ok := cfg.Losses[o.Name]; ok {
			t.tasks = append(t.tasks, o.Name)
		}
	}
	split := graph.TaskSplit(m.Graph)
	for _, p := range split.Trunk {
		t.trunk[p] = true
	}
	// parameters that can influence a trained task
	candidates := map[string]bool{}
	for p, outs := range split.Influence {
		for _, o := range outs {
			if _, ok := cfg.Losses[o]; ok {
				candidates[p] = true
			}
		}
	}
	freeze, err := freezeRule(cfg.Freeze, t.trunk)
	if err != nil {
		return nil, err
	}
	all := graph.FloatParams(m.Graph)
	if err := freezeMatches(cfg.Freeze, all, freeze); err != nil {
		return nil, err
	}
	// constants (shape plumbing, fill values, initial states) never train
	trainable, _ := autodiff.Parameters(m)
	for _, p := range trainable {
		if !candidates[p] {
			continue
		}
		if freeze(p) {
			t.frozen = append(t.frozen, p)
		} else {
			t.params = append(t.params, p)
		}
	}
	if len(t.params) == 0 && len(t.frozen) == 0 {
		msg := fmt.Sprintf("train: no trainable parameter reaches the tasks (%s) through differentiable ops", strings.Join(t.tasks, ", "))
		if len(graph.FloatParams(m.Graph)) == 0 {
			msg += "; the model has no float initializers (are its weights graph inputs?)"
		} else if stops := autodiff.GradientStops(m, t.tasks); len(stops) > 0 {
			msg += "; the weights they depend on stop carrying a gradient at " + strings.Join(stops, ", ")
		}
		return nil, errors.New(msg)
	}
	if len(t.params) == 0 {
		return nil, fmt.Errorf("train: nothing to train: every parameter the tasks use is frozen (--freeze %s)", cfg.Freeze)
	}
	t.prog, err = autodiff.NewProgram(m, t.tasks, t.params)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if t.opt, err = NewOptimizer(cfg.Optimizer); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	wc := cfg.Weighting
	if wc.Kind.orDefault() == Fixed {
		wc.Fixed = make([]float64, len(t.tasks))
		for i, name := range t.tasks {
			wc.Fixed[i] = 1
			if w, ok := cfg.LossWeights[name]; ok {
				wc.Fixed[i] = w
			}
		}
	}
	if wc.Seed == 0 {
		wc.Seed = cfg.Seed
	}
	if t.weighting, err = NewWeighting(wc, len(t.tasks)); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	t.lastLayer = lastSharedLayer(m.Graph, t.trunk, t.params)
	if u, ok := t.weighting.(*uncertainty); ok {
		u.managed = true // the run's optimiser steps the log-variances
	}
	t.startEpoch()
	if cfg.SoftShare > 0 {
		t.pairs = MatchTowers(m.Graph)
		if len(t.pairs) == 0 {
			return nil, errors.New("train: --soft-share found no matching task towers (parameters of equal shape at equal positions along two tasks' paths)")
		}
	}
	return t, nil
}

func freezeRule(spec string, trunk map[string]bool) (func(string) bool, error) {
	switch spec {
	case "", "none":
		return func(string) bool { return false }, nil
	case "trunk":
		return func(p string) bool { return trunk[p] }, nil
	case "heads":
		return func(p string) bool { return !trunk[p] }, nil
	}
	re, err := regexp.Compile(spec)
	if err != nil {
		return nil, fmt.Errorf("train: --freeze %q is neither none/trunk/heads nor a valid regular expression: %w", spec, err)
	}
	return re.MatchString, nil
}

// freezeMatches refuses a --freeze expression that matches no parameter,
// listing the names it could have matched.
func freezeMatches(spec string, params []string, freeze func(string) bool) error {
	switch spec {
	case "", "none", "trunk", "heads":
		return nil
	}
	for _, p := range params {
		if freeze(p) {
			return nil
		}
	}
	const most = 40
	shown := params
	if len(shown) > most {
		shown = shown[:most]
	}
	more := ""
	if len(params) > most {
		more = fmt.Sprintf(" and %d more (mtlrun inspect lists all)", len(params)-most)
	}
	return cfgErr("--freeze", "%q matches no parameter; the parameters are: %s%s (or use none, trunk or heads)", spec, strings.Join(shown, ", "), more)
}

// lastSharedLayer picks the trainable trunk parameters read by the last
// node (in topological order) that reads any trainable trunk parameter.
func lastSharedLayer(g *graph.Graph, trunk map[string]bool, params []string) []string {
	trainable := map[string]bool{}
	for _, p := range params {
		trainable[p] = true
	}
	var last []string
	for _, n := range g.Nodes {
		var here []string
		for _, in := range n.Inputs {
			if trunk[in] && trainable[in] {
				here = append(here, in)
			}
		}
		if len(here) > 0 {
			last = here
		}
	}
	return last
}

// Trainable lists the parameters being trained; Frozen the ones held fixed.
func (t *Trainer) Trainable() []string { return t.params }

// Frozen lists the parameters held fixed.
func (t *Trainer) Frozen() []string { return t.frozen }

// Tasks lists the outputs trained toward.
func (t *Trainer) Tasks() []string { return t.tasks }

// StepResult is what one Trainer.Step measured on its batch.
type StepResult struct {
	Loss  float64          // the weighted total the step minimised
	Tasks []LossResult     // each task's loss, in Trainer.Tasks order
	Preds []*tensor.Tensor // each task's prediction on the batch (before the update)
}

// NonFiniteError is a loss or gradient that became NaN or infinite during
// training. The step's update was not applied.
type NonFiniteError struct {
	Step  int    // 1-based optimisation step
	Task  string // the task whose loss or gradient is not finite
	What  string // "loss" or "gradient of PARAM"
	Value float64
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("train: step %d: task %q: %s is %v; the weights were left as they were before this step "+
		"(lower --lr, set --clip-norm, check the data for extreme values, or pass --on-nan skip-batch to skip such batches)",
		e.Step, e.Task, e.What, e.Value)
}

// Step runs one optimisation step on a batch. A non-finite loss or
// gradient returns a *NonFiniteError and changes nothing, unless the recipe
// says --on-nan skip-batch: then the batch is skipped (Skipped reports it).
func (t *Trainer) Step(batch *Dataset) (StepResult, error) {
	t.skipped = false
	inputs := map[string]*tensor.Tensor{}
	for _, v := range t.model.Graph.FeedInputs() {
		x, ok := batch.Arrays[v.Name]
		if !ok {
			return StepResult{}, fmt.Errorf("train: the data has no array for model input %q", v.Name)
		}
		inputs[v.Name] = x
	}
	tape, err := t.prog.Forward(inputs)
	if err != nil {
		return StepResult{}, err
	}
	defer tape.Release() // the next step reuses its recurrent buffers
	res := StepResult{Tasks: make([]LossResult, len(t.tasks)), Preds: make([]*tensor.Tensor, len(t.tasks))}
	losses := make([]float64, len(t.tasks))
	for i, name := range t.tasks {
		target, ok := batch.Arrays[name]
		if !ok {
			return res, fmt.Errorf("train: the data has no target array for task %q", name)
		}
		rw, err := RowWeights(t.cfg.Losses[name], target, batch.Arrays[SampleWeightPrefix+name], t.cfg.ClassWeights[name])
		if err != nil {
			return res, fmt.Errorf("train: task %q: %w", name, err)
		}
		r, err := t.cfg.Losses[name].Eval(tape.Value(name), target, rw)
		if err != nil {
			var re *rowError
			if errors.As(err, &re) {
				return res, &batchRowError{task: name, row: re.row, msg: re.msg}
			}
			return res, fmt.Errorf("train: task %q: %w", name, err)
		}
		res.Tasks[i] = r
		res.Preds[i] = tape.Value(name)
		losses[i] = r.Loss
		if bad(r.Loss) {
			return res, t.nonFinite(&NonFiniteError{Step: t.run.Step + 1, Task: name, What: "loss", Value: r.Loss})
		}
	}
	g, err := t.gradients(tape, res.Tasks, losses)
	if err != nil {
		return res, err
	}
	if p, v := firstBad(g.grads, t.params); p != "" {
		task := t.blame(tape, res.Tasks, g.perTask, p)
		return res, t.nonFinite(&NonFiniteError{Step: t.run.Step + 1, Task: task, What: "the gradient of " + p, Value: v})
	}
	t.applied = g.weights
	for i, l := range losses {
		res.Loss += g.weights[i] * l
	}
	if t.cfg.SoftShare > 0 {
		res.Loss += t.softShare(g.grads)
	}
	if t.cfg.ClipNorm > 0 {
		ClipGradNorm(g.grads, t.cfg.ClipNorm)
	}
	// the optimiser keeps its moments per parameter: a rejected update must
	// not have touched them, so work on a copy until all values are finite
	saved := t.opt.State()
	keepSlots(&t.kept, saved)
	updated := make(map[string][]float32, len(t.params))
	for _, p := range t.params {
		updated[p] = t.opt.Step(p, t.model.Graph.Initializers[p].Float32s(), g.grads[p])
	}
	check := t.params
	l, hasLearner := t.weighting.(learner)
	var learned []float32
	if hasLearner {
		name, value, grad := l.Learned(losses)
		learned = t.opt.Step(name, value, grad)
		updated[name] = learned
		check = append(append([]string(nil), t.params...), name)
	}
	if p, v := firstBad(updated, check); p != "" {
		restoreSlots(saved, &t.kept)
		t.opt.Restore(saved)
		return res, t.nonFinite(&NonFiniteError{Step: t.run.Step + 1, Task: strings.Join(t.tasks, "+"), What: "the update of " + p, Value: v})
	}
	t.weighting.Observe(losses, g.norms)
	if hasLearner {
		l.SetLearned(learned)
	}
	for _, p := range t.params {
		w := t.model.Graph.Initializers[p]
		t.model.Graph.Initializers[p] = tensor.From(w.Shape, updated[p])
	}
	t.opt.Tick()
	t.run.Step++
	return res, nil
}

// keepSlots copies the moment buffers of an optimiser state into kept,
// reusing kept's slices, so that a rejected update can put them back
// (restoreSlots; Step updates them in place) without every step
// allocating a copy of all of them.
func keepSlots(kept *[2]map[string][]float32, s OptimizerState) {
	for i, m := range [2]map[string][]float32{s.Slots1, s.Slots2} {
		if kept[i] == nil {
			kept[i] = make(map[string][]float32, len(m))
		}
		for k := range kept[i] {
			if _, ok := m[k]; !ok {
				delete(kept[i], k)
			}
		}
		for k, v := range m {
			kept[i][k] = append(kept[i][k][:0], v...)
		}
	}
}

// restoreSlots writes the buffers keepSlots kept back into s's, in place,
// and drops the buffers made since (a parameter's first update makes them).
func restoreSlots(s OptimizerState, kept *[2]map[string][]float32) {
	for i, m := range [2]map[string][]float32{s.Slots1, s.Slots2} {
		for k, v := range m {
			if b, ok := kept[i][k]; ok {
				copy(v, b)
			} else {
				delete(m, k)
			}
		}
	}
}

// Skipped reports whether the last Step skipped its batch (--on-nan skip-batch).
func (t *Trainer) Skipped() bool { return t.skipped }

func (t *Trainer) nonFinite(e *NonFiniteError) error {
	if t.cfg.OnNaN == OnNaNSkipBatch {
		t.skipped = true
		return nil
	}
	return e
}

func bad(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }

// firstBad finds the first parameter (in order) with a non-finite gradient.
// A float32 is NaN or infinite exactly when its exponent bits are all set:
// one mask and compare an element, no conversion to float64.
func firstBad(grads map[string][]float32, params []string) (string, float64) {
	const exp = 0x7f800000
	for _, p := range params {
		for _, v := range grads[p] {
			if math.Float32bits(v)&exp == exp {
				return p, float64(v)
			}
		}
	}
	return "", 0
}

// blame names the task whose own gradient of param is not finite (the
// first such task; the joint backward pass is redone per task if needed).
func (t *Trainer) blame(tape *autodiff.Tape, tasks []LossResult, perTask []map[string]*tensor.Tensor, param string) string {
	for i, name := range t.tasks {
		var g map[string]*tensor.Tensor
		if perTask != nil {
			g = perTask[i]
		} else {
			var err error
			if g, err = tape.Backward(map[string]*tensor.Tensor{name: tasks[i].Grad}); err != nil {
				continue
			}
		}
		if x := g[param]; x != nil {
			if p, _ := firstBad(map[string][]float32{param: x.Float32s()}, []string{param}); p != "" {
				return name
			}
		}
	}
	return strings.Join(t.tasks, "+")
}

// batchRowError is a bad target in a batch row; Fit names the file row.
type batchRowError struct {
	task string
	row  int
	msg  string
}

func (e *batchRowError) Error() string {
	return fmt.Sprintf("train: array %q, row %d of the batch: %s", e.task, e.row, e.msg)
}

// stepGrads is what gradients computes for one step.
type stepGrads struct {
	grads   map[string][]float32 // combined gradient per trainable parameter
	weights []float64            // the task weights applied (to losses, or to head gradients)
	norms   []float64            // GradNorm: weighted gradient norms on the last shared layer
	perTask []map[string]*tensor.Tensor
}

// gradients combines the tasks' gradients per the weighting method and
// returns them as float32 slices per parameter, with the loss weights used.
func (t *Trainer) gradients(tape *autodiff.Tape, tasks []LossResult, losses []float64) (stepGrads, error) {
	w := t.weighting
	weights := append([]float64(nil), w.Weights(losses)...)
	out := map[string][]float32{}
	perTask := w.TaskGrads() || w.Kind() == GradNorm
	if !perTask {
		gout := map[string]*tensor.Tensor{}
		for i, name := range t.tasks {
			gout[name] = scaled(tasks[i].Grad, weights[i])
		}
		g, err := tape.Backward(gout)
		if err != nil {
			return stepGrads{}, err
		}
		for _, p := range t.params {
			out[p] = g[p].Float32s()
		}
		return stepGrads{grads: out, weights: weights}, nil
	}
	taskGrads := make([]map[string]*tensor.Tensor, len(t.tasks))
	for i, name := range t.tasks {
		g, err := tape.Backward(map[string]*tensor.Tensor{name: tasks[i].Grad})
		if err != nil {
			return stepGrads{}, err
		}
		taskGrads[i] = g
	}
	if w.Kind() == GradNorm {
		norms := make([]float64, len(t.tasks))
		for i := range t.tasks {
			var s float64
			for _, p := range t.lastLayer {
				for _, v := range taskGrads[i][p].Float32s() {
					s += float64(v) * float64(v)
				}
			}
			norms[i] = weights[i] * math.Sqrt(s)
		}
		for _, p := range t.params {
			acc := make([]float32, t.model.Graph.Initializers[p].Len())
			for i := range t.tasks {
				for j, v := range taskGrads[i][p].Float32s() {
					acc[j] += float32(weights[i]) * v
				}
			}
			out[p] = acc
		}
		return stepGrads{grads: out, weights: weights, norms: norms, perTask: taskGrads}, nil
	}
	// gradient-level methods: combine the trunk, weight the heads
	var trunkParams []string
	for _, p := range t.params {
		if t.trunk[p] {
			trunkParams = append(trunkParams, p)
		}
	}
	flat := make([][]float64, len(t.tasks))
	for i := range t.tasks {
		for _, p := range trunkParams {
			for _, v := range taskGrads[i][p].Float32s() {
				flat[i] = append(flat[i], float64(v))
			}
		}
	}
	headW := weights
	if len(trunkParams) > 0 {
		var combined []float64
		combined, headW = w.Combine(flat)
		off := 0
		for _, p := range trunkParams {
			n := t.model.Graph.Initializers[p].Len()
			g := make([]float32, n)
			for j := range g {
				g[j] = float32(combined[off+j])
			}
			out[p] = g
			off += n
		}
	}
	for _, p := range t.params {
		if t.trunk[p] {
			continue
		}
		acc := make([]float32, t.model.Graph.Initializers[p].Len())
		for i := range t.tasks {
			for j, v := range taskGrads[i][p].Float32s() {
				acc[j] += float32(headW[i]) * v
			}
		}
		out[p] = acc
	}
	return stepGrads{grads: out, weights: append([]float64(nil), headW...), perTask: taskGrads}, nil
}

func scaled(g *tensor.Tensor, w float64) *tensor.Tensor {
	if w == 1 {
		return g
	}
	v := g.Float32s()
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = x * float32(w)
	}
	return tensor.From(g.Shape, out)
}

// Evaluate computes per-task metrics on a data set with the current
// weights, through an inference session built for the purpose.
func (t *Trainer) Evaluate(d *Dataset) (map[string]TaskMetrics, float64, error) {
	sess, err := runtime.NewSession(t.model, runtime.Options{})
	if err != nil {
		return nil, 0, err
	}
	return evaluate(sess, t.model, t.tasks, t.cfg, d)
}

func evaluate(sess *runtime.Session, m *graph.Model, tasks []string, cfg Config, d *Dataset) (map[string]TaskMetrics, float64, error) {
	acc := newMetricAcc(tasks, cfg.Losses)
	for _, rows := range d.Batches(max(cfg.BatchSize, 256), false, 0, 0) {
		b := d.Take(rows)
		inputs := map[string]*tensor.Tensor{}
		for _, v := range m.Graph.FeedInputs() {
			x, ok := b.Arrays[v.Name]
			if !ok {
				return nil, 0, fmt.Errorf("train: the data has no array for model input %q", v.Name)
			}
			inputs[v.Name] = x
		}
		outs, err := sess.Run(inputs, tasks...)
		if err != nil {
			return nil, 0, err
		}
		for i, name := range tasks {
			rw, err := RowWeights(cfg.Losses[name], b.Arrays[name], b.Arrays[SampleWeightPrefix+name], cfg.ClassWeights[name])
			if err != nil {
				return nil, 0, fmt.Errorf("train: task %q: %w", name, err)
			}
			r, err := cfg.Losses[name].Eval(outs[name], b.Arrays[name], rw)
			if err != nil {
				return nil, 0, fmt.Errorf("train: task %q: %w", name, err)
			}
			acc.add(i, r, outs[name], b.Arrays[name])
		}
	}
	return acc.result(cfg.LossWeights)
}

// metricAcc accumulates row-weighted task metrics over batches (saved in
// checkpoints, hence the exported fields).
type metricAcc struct {
	Tasks []string  `json:"tasks"`
	Kinds []string  `json:"kinds"`
	Loss  []float64 `json:"loss"`
	SE    []float64 `json:"se"`
	AE    []float64 `json:"ae"`
	Rows  []int     `json:"rows"`
	Right []int     `json:"right"`
	Seen  []int     `json:"seen"`
	Elems []int     `json:"elems"`
	class []bool    // per task: judged by accuracy (from the losses, not saved)
}

func newMetricAcc(tasks []string, losses map[string]Loss) *metricAcc {
	k := len(tasks)
	a := &metricAcc{Tasks: tasks, Loss: make([]float64, k), SE: make([]float64, k), AE: make([]float64, k),
		Rows: make([]int, k), Right: make([]int, k), Seen: make([]int, k), Elems: make([]int, k)}
	for _, t := range tasks {
		a.Kinds = append(a.Kinds, losses[t].Name())
	}
	a.setLosses(losses)
	return a
}

// setLosses tells the accumulator which tasks are classification tasks
// (again after a checkpoint is read back).
func (a *metricAcc) setLosses(losses map[string]Loss) {
	a.class = make([]bool, len(a.Tasks))
	for i, t := range a.Tasks {
		a.class[i] = losses[t].Classification()
	}
}

func (a *metricAcc) add(i int, r LossResult, pred, target *tensor.Tensor) {
	a.Loss[i] += r.Loss * float64(r.Rows)
	a.Rows[i] += r.Rows
	a.Right[i] += r.Right
	a.Seen[i] += r.Judged
	if a.class[i] || pred == nil {
		return
	}
	p := pred.Float32s()
	tv, _ := tensor.AsFloat64(target)
	for j := range p {
		if j < len(tv) && !math.IsNaN(tv[j]) {
			d := float64(p[j]) - tv[j]
			a.SE[i] += d * d
			a.AE[i] += math.Abs(d)
			a.Elems[i]++
		}
	}
}

func (a *metricAcc) result(weights map[string]float64) (map[string]TaskMetrics, float64, error) {
	out := map[string]TaskMetrics{}
	total := 0.0
	for i, name := range a.Tasks {
		m := TaskMetrics{Kind: a.Kinds[i], Rows: a.Rows[i]}
		if a.Rows[i] > 0 {
			m.Loss = a.Loss[i] / float64(a.Rows[i])
		}
		if a.class[i] {
			if a.Seen[i] > 0 {
				m.Accuracy = float64(a.Right[i]) / float64(a.Seen[i])
			}
		} else if a.Elems[i] > 0 {
			m.MSE = a.SE[i] / float64(a.Elems[i])
			m.MAE = a.AE[i] / float64(a.Elems[i])
		}
		w := 1.0
		if v, ok := weights[name]; ok {
			w = v
		}
		total += w * m.Loss
		out[name] = m
	}
	return out, total, nil
}

// Fit trains for cfg.Epochs epochs (or until early stopping or ctx ends,
// which stops after the current batch and still writes a checkpoint).
func Fit(ctx context.Context, m *graph.Model, cfg Config, trainSet, valSet *Dataset, cb Callbacks) (*Result, error) {
	t, err := NewTrainer(m, cfg)
	if err != nil {
		return nil, err
	}
	return t.Fit(ctx, trainSet, valSet, cb)
}

// runState is everything the training loop carries from one step to the
// next; a checkpoint saves it whole, so a resumed run continues at the
// next batch exactly as if it had not stopped.
type runState struct {
	Epoch   int `json:"epoch"`   // current epoch, 0-based
	Batch   int `json:"batch"`   // next batch within the epoch
	Step    int `json:"step"`    // optimisation steps taken
	Skipped int `json:"skipped"` // batches skipped this epoch (--on-nan skip-batch)
	// the epoch so far
	Running   float64    `json:"running"`    // Σ weighted batch loss × rows
	Seen      int        `json:"seen"`       // rows
	EpochLoss []float64  `json:"epoch_loss"` // per task: Σ loss × rows
	WeightSum []float64  `json:"weight_sum"` // per task: Σ applied weights
	Steps     int        `json:"steps"`      // steps taken this epoch
	Metrics   *metricAcc `json:"metrics"`
	// early stopping
	Best      *float64 `json:"best_val_loss,omitempty"`
	Patience  int      `json:"patience"`
	BestEpoch int      `json:"best_epoch"`
	Done      string   `json:"done,omitempty"` // "early stopping" once the run has stopped early
}

func (t *Trainer) startEpoch() {
	k := len(t.tasks)
	r := &t.run
	r.Batch, r.Running, r.Seen, r.Steps, r.Skipped = 0, 0, 0, 0, 0
	r.EpochLoss, r.WeightSum = make([]float64, k), make([]float64, k)
	r.Metrics = newMetricAcc(t.tasks, t.cfg.Losses)
}

// errSimulatedCrash ends a run at once, as a killed process would (tests).
var errSimulatedCrash = errors.New("train: simulated crash")

// Fit runs the training loop of an already-built trainer. The data is
// checked first (CheckData); notes about ignored arrays go to Result.Notes.
func (t *Trainer) Fit(ctx context.Context, trainSet, valSet *Dataset, cb Callbacks) (*Result, error) {
	cfg := t.cfg
	trainSet, notes, err := t.CheckData(trainSet, "training")
	if err != nil {
		return nil, err
	}
	if valSet != nil {
		var more []string
		if valSet, more, err = t.CheckData(valSet, "validation"); err != nil {
			return nil, err
		}
		notes = append(notes, more...)
	}
	if cfg.EarlyStop > 0 && valSet == nil {
		return nil, cfgErr("--early-stop", "early stopping watches the validation loss: give --val FILE or --val-split F")
	}
	if cfg.Checkpoint != "" {
		// refused now rather than after the first epoch
		if err := checkCheckpointDir(filepath.Clean(cfg.Checkpoint)); err != nil {
			return nil, err
		}
	}
	res := &Result{Trainable: t.params, Frozen: t.frozen, Fingerprint: trainSet.Fingerprint(), BestEpoch: -1, Notes: notes}
	switch {
	case t.resumed:
		if t.fingerprint != res.Fingerprint {
			return nil, errors.New("train: Resume was given other training data than Fit")
		}
	case cfg.Resume != "":
		t.fingerprint = res.Fingerprint
		if err := t.loadCheckpoint(cfg.Resume); err != nil {
			return nil, err
		}
	default:
		t.fingerprint = res.Fingerprint
		t.startEpoch()
	}
	r := &t.run
	if r.Done != "" {
		res.Stopped = r.Done
		res.BestEpoch = r.BestEpoch
		return res, nil
	}
	base := cfg.Optimizer.LR
	for r.Epoch < cfg.Epochs {
		t.opt.SetLR(cfg.Schedule.LR(base, r.Epoch))
		start := time.Now()
		seenHere := 0
		batches := trainSet.Batches(cfg.BatchSize, !cfg.NoShuffle, cfg.Seed, r.Epoch)
		if r.Batch > len(batches) {
			return res, fmt.Errorf("resume: the checkpoint is at batch %d of epoch %d, which has %d batches (were --batch or the data changed?)", r.Batch, r.Epoch+1, len(batches))
		}
		interrupted := false
		for r.Batch < len(batches) {
			rows := batches[r.Batch]
			b := trainSet.Take(rows)
			out, err := t.Step(b)
			if err != nil {
				var be *batchRowError
				if errors.As(err, &be) {
					err = &DataError{Array: be.task, Row: trainSet.RowName(rows[be.row]), Msg: be.msg}
				}
				return res, fmt.Errorf("epoch %d batch %d: %w", r.Epoch+1, r.Batch+1, err)
			}
			if t.skipped {
				r.Skipped++
			} else {
				for i, name := range t.tasks {
					r.Metrics.add(i, out.Tasks[i], out.Preds[i], b.Arrays[name])
					r.EpochLoss[i] += out.Tasks[i].Loss * float64(len(rows))
					r.WeightSum[i] += t.applied[i]
				}
				r.Running += out.Loss * float64(len(rows))
				r.Seen += len(rows)
				r.Steps++
			}
			seenHere += len(rows)
			r.Batch++
			if cb.OnBatch != nil {
				cb.OnBatch(Progress{Epoch: r.Epoch + 1, Epochs: cfg.Epochs, Batch: r.Batch, Batches: len(batches),
					RunningLoss: r.Running / float64(max(r.Seen, 1)), SamplesPerSecond: float64(seenHere) / time.Since(start).Seconds()})
			}
			if r.Batch < len(batches) {
				if cfg.CheckpointEvery > 0 && r.Step%cfg.CheckpointEvery == 0 && !t.skipped {
					if err := t.saveCheckpoint(cfg.Checkpoint); err != nil {
						return res, err
					}
				}
				if t.crashAt > 0 && r.Step >= t.crashAt {
					return res, errSimulatedCrash
				}
				if ctx.Err() != nil {
					interrupted = true
					break
				}
			}
		}
		if interrupted {
			res.Stopped = "interrupted"
			if cfg.Checkpoint != "" {
				if err := t.saveCheckpoint(cfg.Checkpoint); err != nil {
					return res, err
				}
			}
			return res, ctx.Err()
		}
		stats, stop, err := t.endEpoch(valSet, res, time.Since(start).Seconds(), seenHere)
		if err != nil {
			return res, err
		}
		if cfg.Checkpoint != "" {
			if err := t.saveCheckpoint(cfg.Checkpoint); err != nil {
				return res, err
			}
		}
		res.Epochs = append(res.Epochs, stats)
		if cb.OnEpoch != nil {
			cb.OnEpoch(stats)
		}
		if stop {
			res.Stopped = r.Done
			break
		}
		if t.crashAt > 0 && r.Step >= t.crashAt {
			return res, errSimulatedCrash
		}
		if ctx.Err() != nil {
			if r.Epoch < cfg.Epochs {
				res.Stopped = "interrupted"
			}
			return res, ctx.Err()
		}
	}
	return res, nil
}

// Resume loads the checkpoint of Config.Resume now rather than at the start
// of Fit, checking it against the training data (as CheckData returned
// it), so that the caller can report where the run continues: the 1-based
// epoch and the number of its batches already done.
func (t *Trainer) Resume(trainSet *Dataset) (epoch, batchesDone int, err error) {
	if t.cfg.Resume == "" {
		return 0, 0, cfgErr("--resume", "no checkpoint folder given")
	}
	t.fingerprint = trainSet.Fingerprint()
	if err := t.loadCheckpoint(t.cfg.Resume); err != nil {
		return 0, 0, err
	}
	t.resumed = true
	return t.run.Epoch + 1, t.run.Batch, nil
}

// endEpoch closes the current epoch: the weighting sees the epoch's mean
// losses, validation runs, early stopping decides, and the state moves to
// the next epoch's first batch.
func (t *Trainer) endEpoch(valSet *Dataset, res *Result, seconds float64, seenHere int) (EpochStats, bool, error) {
	r, cfg := &t.run, t.cfg
	epochLoss := make([]float64, len(t.tasks))
	for i := range epochLoss {
		epochLoss[i] = r.EpochLoss[i] / float64(max(r.Seen, 1))
	}
	t.weighting.EndEpoch(epochLoss)
	stats := EpochStats{Epoch: r.Epoch + 1, LR: t.opt.LR(), TrainLoss: r.Running / float64(max(r.Seen, 1)),
		Seconds: seconds, Weights: map[string]float64{}, Skipped: r.Skipped}
	stats.Samples = float64(seenHere) / math.Max(seconds, 1e-9)
	stats.Train, _, _ = r.Metrics.result(cfg.LossWeights)
	// the weights each method applied, averaged over the epoch's steps
	if r.Steps > 0 {
		for i, name := range t.tasks {
			stats.Weights[name] = r.WeightSum[i] / float64(r.Steps)
		}
	}
	if valSet != nil {
		vm, vl, err := t.Evaluate(valSet)
		if err != nil {
			return stats, false, err
		}
		stats.Val, stats.ValLoss = vm, vl
	}
	stop := false
	if cfg.EarlyStop > 0 && valSet != nil {
		if r.Best == nil || stats.ValLoss < *r.Best {
			v := stats.ValLoss
			r.Best, r.Patience, r.BestEpoch = &v, 0, r.Epoch+1
			t.bestWeights = t.snapshot()
		} else if r.Patience++; r.Patience >= cfg.EarlyStop {
			r.Done = "early stopping"
			t.restore(t.bestWeights)
			stop = true
		}
		res.BestEpoch = r.BestEpoch
	}
	r.Epoch++
	t.startEpoch()
	return stats, stop, nil
}

func (t *Trainer) snapshot() map[string]*tensor.Tensor {
	s := map[string]*tensor.Tensor{}
	for _, p := range t.params {
		s[p] = t.model.Graph.Initializers[p]
	}
	return s
}

func (t *Trainer) restore(s map[string]*tensor.Tensor) {
	for k, v := range s {
		t.model.Graph.Initializers[k] = v
	}
}
