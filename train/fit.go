package train

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	Losses      map[string]string  // task output → loss kind (outputs without one are not trained toward)
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
	// Checkpoint, when set, is a folder that receives a checkpoint after
	// every epoch (and when the context is cancelled).
	Checkpoint string
	// Resume, when set, continues from a checkpoint folder.
	Resume string
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
	Weights   map[string]float64     `json:"task_weights,omitempty"`
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
	epoch     int
	step      int
}

// NewTrainer validates the recipe against the model.
func NewTrainer(m *graph.Model, cfg Config) (*Trainer, error) {
	if len(cfg.Losses) == 0 {
		return nil, errors.New("train: no task has a loss (give --loss OUTPUT=KIND)")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 32
	}
	if cfg.Epochs <= 0 {
		cfg.Epochs = 1
	}
	t := &Trainer{model: m, cfg: cfg, trunk: map[string]bool{}}
	for name, kind := range cfg.Losses {
		if _, ok := m.Graph.Output(name); !ok {
			var outs []string
			for _, o := range m.Graph.Outputs {
				outs = append(outs, o.Name)
			}
			return nil, fmt.Errorf("train: --loss names %q, which is not an output (outputs: %s)", name, strings.Join(outs, ", "))
		}
		if !validLoss(kind) {
			return nil, fmt.Errorf("train: output %q: unknown loss %q (want one of %v)", name, kind, LossKinds)
		}
	}
	for name := range cfg.LossWeights {
		if _, ok := cfg.Losses[name]; !ok {
			return nil, fmt.Errorf("train: --loss-weights names %q, which has no loss", name)
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
	for _, p := range graph.FloatParams(m.Graph) {
		if !candidates[p] {
			continue
		}
		if freeze(p) {
			t.frozen = append(t.frozen, p)
		} else {
			t.params = append(t.params, p)
		}
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
	if wc.Kind == "" || wc.Kind == "fixed" {
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
	if cfg.SoftShare > 0 {
		t.pairs = MatchTowers(m.Graph)
		if len(t.pairs) == 0 {
			return nil, errors.New("train: --soft-share found no matching task towers (parameters of equal shape at equal positions along two tasks' paths)")
		}
	}
	return t, nil
}

func validLoss(kind string) bool {
	for _, k := range LossKinds {
		if k == kind {
			return true
		}
	}
	return false
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

// Step runs one optimisation step on a batch.
func (t *Trainer) Step(batch *Dataset) (StepResult, error) {
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
	res := StepResult{Tasks: make([]LossResult, len(t.tasks)), Preds: make([]*tensor.Tensor, len(t.tasks))}
	losses := make([]float64, len(t.tasks))
	for i, name := range t.tasks {
		target, ok := batch.Arrays[name]
		if !ok {
			return res, fmt.Errorf("train: the data has no target array for task %q", name)
		}
		r, err := TaskLoss(t.cfg.Losses[name], tape.Value(name), target)
		if err != nil {
			return res, fmt.Errorf("train: task %q: %w", name, err)
		}
		res.Tasks[i] = r
		res.Preds[i] = tape.Value(name)
		losses[i] = r.Loss
	}
	grads, weights, err := t.gradients(tape, res.Tasks, losses)
	if err != nil {
		return res, err
	}
	for i, l := range losses {
		res.Loss += weights[i] * l
	}
	if t.cfg.SoftShare > 0 {
		res.Loss += t.softShare(grads)
	}
	if t.cfg.ClipNorm > 0 {
		ClipGradNorm(grads, t.cfg.ClipNorm)
	}
	for _, p := range t.params {
		w := t.model.Graph.Initializers[p]
		updated := t.opt.Step(p, w.Float32s(), grads[p])
		t.model.Graph.Initializers[p] = tensor.From(w.Shape, updated)
	}
	t.opt.Tick()
	t.step++
	return res, nil
}

// gradients combines the tasks' gradients per the weighting method and
// returns them as float32 slices per parameter, with the loss weights used.
func (t *Trainer) gradients(tape *autodiff.Tape, tasks []LossResult, losses []float64) (map[string][]float32, []float64, error) {
	w := t.weighting
	weights := append([]float64(nil), w.Weights(losses)...)
	out := map[string][]float32{}
	perTask := w.TaskGrads() || w.Name() == "gradnorm"
	if !perTask {
		gout := map[string]*tensor.Tensor{}
		for i, name := range t.tasks {
			gout[name] = scaled(tasks[i].Grad, weights[i])
		}
		g, err := tape.Backward(gout)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range t.params {
			out[p] = g[p].Float32s()
		}
		w.Observe(losses, nil)
		return out, weights, nil
	}
	taskGrads := make([]map[string]*tensor.Tensor, len(t.tasks))
	for i, name := range t.tasks {
		g, err := tape.Backward(map[string]*tensor.Tensor{name: tasks[i].Grad})
		if err != nil {
			return nil, nil, err
		}
		taskGrads[i] = g
	}
	if w.Name() == "gradnorm" {
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
		w.Observe(losses, norms)
		return out, weights, nil
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
	w.Observe(losses, nil)
	return out, headW, nil
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
			r, err := TaskLoss(cfg.Losses[name], outs[name], b.Arrays[name])
			if err != nil {
				return nil, 0, fmt.Errorf("train: task %q: %w", name, err)
			}
			acc.add(i, r, outs[name], b.Arrays[name])
		}
	}
	return acc.result(cfg.LossWeights)
}

// metricAcc accumulates row-weighted task metrics over batches.
type metricAcc struct {
	tasks             []string
	kinds             []string
	loss, se, ae      []float64
	rows, right, seen []int
	elems             []int
}

func newMetricAcc(tasks []string, kinds map[string]string) *metricAcc {
	k := len(tasks)
	a := &metricAcc{tasks: tasks, loss: make([]float64, k), se: make([]float64, k), ae: make([]float64, k),
		rows: make([]int, k), right: make([]int, k), seen: make([]int, k), elems: make([]int, k)}
	for _, t := range tasks {
		a.kinds = append(a.kinds, kinds[t])
	}
	return a
}

func (a *metricAcc) add(i int, r LossResult, pred, target *tensor.Tensor) {
	a.loss[i] += r.Loss * float64(r.Rows)
	a.rows[i] += r.Rows
	a.right[i] += r.Right
	a.seen[i] += r.Judged
	if IsClassification(a.kinds[i]) || pred == nil {
		return
	}
	p := pred.Float32s()
	tv, _ := tensor.AsFloat64(target)
	for j := range p {
		if j < len(tv) && !math.IsNaN(tv[j]) {
			d := float64(p[j]) - tv[j]
			a.se[i] += d * d
			a.ae[i] += math.Abs(d)
			a.elems[i]++
		}
	}
}

func (a *metricAcc) result(weights map[string]float64) (map[string]TaskMetrics, float64, error) {
	out := map[string]TaskMetrics{}
	total := 0.0
	for i, name := range a.tasks {
		m := TaskMetrics{Kind: a.kinds[i], Rows: a.rows[i]}
		if a.rows[i] > 0 {
			m.Loss = a.loss[i] / float64(a.rows[i])
		}
		if IsClassification(a.kinds[i]) {
			if a.seen[i] > 0 {
				m.Accuracy = float64(a.right[i]) / float64(a.seen[i])
			}
		} else if a.elems[i] > 0 {
			m.MSE = a.se[i] / float64(a.elems[i])
			m.MAE = a.ae[i] / float64(a.elems[i])
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

// Fit runs the training loop of an already-built trainer.
func (t *Trainer) Fit(ctx context.Context, trainSet, valSet *Dataset, cb Callbacks) (*Result, error) {
	cfg := t.cfg
	res := &Result{Trainable: t.params, Frozen: t.frozen, Fingerprint: trainSet.Fingerprint(), BestEpoch: -1}
	if cfg.Resume != "" {
		if err := t.loadCheckpoint(cfg.Resume); err != nil {
			return nil, err
		}
	}
	base := cfg.Optimizer.LR
	best := math.Inf(1)
	var bestWeights map[string]*tensor.Tensor
	patience := 0
	for ; t.epoch < cfg.Epochs; t.epoch++ {
		t.opt.SetLR(cfg.Schedule.LR(base, t.epoch))
		start := time.Now()
		acc := newMetricAcc(t.tasks, cfg.Losses)
		batches := trainSet.Batches(cfg.BatchSize, !cfg.NoShuffle, cfg.Seed, t.epoch)
		running, seen := 0.0, 0
		epochLoss := make([]float64, len(t.tasks))
		interrupted := false
		for bi, rows := range batches {
			b := trainSet.Take(rows)
			r, err := t.Step(b)
			if err != nil {
				return res, fmt.Errorf("epoch %d batch %d: %w", t.epoch+1, bi+1, err)
			}
			for i, name := range t.tasks {
				acc.add(i, r.Tasks[i], r.Preds[i], b.Arrays[name])
				epochLoss[i] += r.Tasks[i].Loss * float64(len(rows))
			}
			running += r.Loss * float64(len(rows))
			seen += len(rows)
			if cb.OnBatch != nil {
				cb.OnBatch(Progress{Epoch: t.epoch + 1, Epochs: cfg.Epochs, Batch: bi + 1, Batches: len(batches),
					RunningLoss: running / float64(seen), SamplesPerSecond: float64(seen) / time.Since(start).Seconds()})
			}
			if ctx.Err() != nil {
				interrupted = true
				break
			}
		}
		for i := range epochLoss {
			epochLoss[i] /= float64(max(seen, 1))
		}
		t.weighting.EndEpoch(epochLoss)
		stats := EpochStats{Epoch: t.epoch + 1, LR: t.opt.LR(), TrainLoss: running / float64(max(seen, 1)),
			Seconds: time.Since(start).Seconds(), Weights: map[string]float64{}}
		stats.Samples = float64(seen) / math.Max(stats.Seconds, 1e-9)
		stats.Train, _, _ = acc.result(cfg.LossWeights)
		// the weights in force for the next epoch; rlw draws afresh every
		// step, so it reports none rather than consume a draw
		if t.weighting.Name() != "rlw" {
			w := t.weighting.Weights(epochLoss)
			for i, name := range t.tasks {
				stats.Weights[name] = w[i]
			}
		}
		if valSet != nil && valSet.Rows > 0 {
			vm, vl, err := t.Evaluate(valSet)
			if err != nil {
				return res, err
			}
			stats.Val, stats.ValLoss = vm, vl
		}
		res.Epochs = append(res.Epochs, stats)
		if cb.OnEpoch != nil {
			cb.OnEpoch(stats)
		}
		if interrupted {
			t.epoch++ // the partial epoch counts: resume starts with the next
			res.Stopped = "interrupted"
			if cfg.Checkpoint != "" {
				if err := t.saveCheckpoint(cfg.Checkpoint); err != nil {
					return res, err
				}
			}
			return res, ctx.Err()
		}
		if cfg.Checkpoint != "" {
			t.epoch++
			err := t.saveCheckpoint(cfg.Checkpoint)
			t.epoch--
			if err != nil {
				return res, err
			}
		}
		if cfg.EarlyStop > 0 && valSet != nil && valSet.Rows > 0 {
			if stats.ValLoss < best {
				best, patience, res.BestEpoch = stats.ValLoss, 0, t.epoch+1
				bestWeights = t.snapshot()
			} else if patience++; patience >= cfg.EarlyStop {
				res.Stopped = "early stopping"
				t.restore(bestWeights)
				t.epoch++
				break
			}
		}
	}
	return res, nil
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
