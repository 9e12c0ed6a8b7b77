package train

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// tinyModel is x (n, in) → MatMul trunk.w (in, hidden) → act → one
// MatMul head{i}.w (hidden, 1) + head{i}.b per task ("task1", ...): small
// enough that a whole training run takes milliseconds.
func tinyModel(tasks, in, hidden int, act string, seed uint64) *graph.Model {
	rng := rand.New(rand.NewPCG(seed, 11))
	g := &graph.Graph{Name: "tiny"}
	batch := graph.Dim{Param: "batch"}
	g.Inputs = []graph.ValueInfo{{Name: "x", DType: tensor.Float32, Kind: "tensor", HasShape: true, Shape: []graph.Dim{batch, {Value: int64(in)}}}}
	param := func(name string, shape ...int) {
		n := 1
		for _, s := range shape {
			n *= s
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.5)
		}
		g.AddInitializer(name, tensor.From(shape, v))
	}
	node := func(op string, ins []string, out string) {
		g.Nodes = append(g.Nodes, &graph.Node{Name: out, OpType: op, Inputs: ins, Outputs: []string{out}, Attrs: graph.Attrs{}})
	}
	param("trunk.w", in, hidden)
	node("MatMul", []string{"x", "trunk.w"}, "h0")
	h := "h0"
	if act != "" {
		node(act, []string{"h0"}, "h")
		h = "h"
	}
	for i := 1; i <= tasks; i++ {
		name := taskName(i)
		param("head"+name[4:]+".w", hidden, 1)
		param("head"+name[4:]+".b", 1)
		node("MatMul", []string{h, "head" + name[4:] + ".w"}, name+".mm")
		node("Add", []string{name + ".mm", "head" + name[4:] + ".b"}, name)
		g.Outputs = append(g.Outputs, graph.ValueInfo{Name: name, DType: tensor.Float32, Kind: "tensor", HasShape: true, Shape: []graph.Dim{batch, {Value: 1}}})
	}
	return &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": 17}, Producer: "test"}
}

func taskName(i int) string { return "task" + string(rune('0'+i)) }

// tinyData draws rows for tinyModel: targets are fixed functions of x.
func tinyData(rows, in, tasks int, seed uint64) *Dataset {
	rng := rand.New(rand.NewPCG(seed, 5))
	x := make([]float32, rows*in)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	arrays := map[string]*tensor.Tensor{"x": tensor.From([]int{rows, in}, x)}
	for t := 1; t <= tasks; t++ {
		y := make([]float32, rows)
		for r := range y {
			var s float64
			for j := 0; j < in; j++ {
				s += float64(x[r*in+j]) * float64((j+t)%3-1)
			}
			y[r] = float32(float64(t) * math.Tanh(s))
		}
		arrays[taskName(t)] = tensor.From([]int{rows, 1}, y)
	}
	d, err := NewDataset(arrays)
	if err != nil {
		panic(err)
	}
	return d
}

func tinyLosses(tasks int) map[string]Loss {
	l := map[string]Loss{}
	for t := 1; t <= tasks; t++ {
		l[taskName(t)] = MSE
	}
	return l
}

// TestConfigValidate: each setting that cannot work is refused, naming the
// flag and how to fix it; a good recipe passes.
func TestConfigValidate(t *testing.T) {
	ok := Config{Losses: map[string]Loss{"a": MSE, "b": SparseCCE}, Optimizer: OptimizerConfig{Kind: Adam, LR: 1e-3}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a good recipe: %v", err)
	}
	cases := []struct {
		name  string
		edit  func(*Config)
		field string
		want  string
	}{
		{"no loss", func(c *Config) { c.Losses = nil }, "--loss", "give --loss OUTPUT=KIND"},
		{"unknown loss", func(c *Config) { c.Losses["a"] = LossKind("hinge") }, "--loss", `unknown loss "hinge"`},
		{"unknown weighting", func(c *Config) { c.Weighting.Kind = "magic" }, "--weighting", "fixed rlw uncertainty"},
		{"weight without loss", func(c *Config) { c.LossWeights = map[string]float64{"z": 1} }, "--loss-weights", `"z", which has no loss`},
		{"negative weight", func(c *Config) { c.LossWeights = map[string]float64{"a": -1} }, "--loss-weights", "≥ 0"},
		{"NaN weight", func(c *Config) { c.LossWeights = map[string]float64{"a": math.NaN()} }, "--loss-weights", "finite"},
		{"weights under uncertainty", func(c *Config) {
			c.LossWeights = map[string]float64{"a": 2}
			c.Weighting.Kind = "uncertainty"
		}, "--loss-weights", "uncertainty sets the weights itself"},
		{"weights under pcgrad", func(c *Config) {
			c.LossWeights = map[string]float64{"a": 2}
			c.Weighting.Kind = "pcgrad"
		}, "--loss-weights", "pcgrad sets the weights itself"},
		{"unknown optimizer", func(c *Config) { c.Optimizer.Kind = "lion" }, "--optimizer", "sgd, adam or adamw"},
		{"zero lr", func(c *Config) { c.Optimizer.LR = 0 }, "--lr", "positive"},
		{"Inf lr", func(c *Config) { c.Optimizer.LR = math.Inf(1) }, "--lr", "positive"},
		{"momentum with adam", func(c *Config) { c.Optimizer.Momentum = 0.9 }, "--momentum", "sgd only"},
		{"momentum 1", func(c *Config) { c.Optimizer.Kind, c.Optimizer.Momentum = "sgd", 1 }, "--momentum", "< 1"},
		{"negative weight decay", func(c *Config) { c.Optimizer.WeightDecay = -1 }, "--weight-decay", "≥ 0"},
		{"beta2 of 1", func(c *Config) { c.Optimizer.Beta2 = 1 }, "beta2", "< 1"},
		{"schedule exp2", func(c *Config) { c.Schedule.Kind = "exp2" }, "--schedule", "none, step, cosine, exp"},
		{"negative gamma", func(c *Config) { c.Schedule = Schedule{Kind: "step", Gamma: -1} }, "--gamma", "> 0"},
		{"negative batch", func(c *Config) { c.BatchSize = -4 }, "--batch", "at least 1"},
		{"negative epochs", func(c *Config) { c.Epochs = -1 }, "--epochs", "at least 1"},
		{"negative clip", func(c *Config) { c.ClipNorm = -1 }, "--clip-norm", "0 for no clipping"},
		{"NaN clip", func(c *Config) { c.ClipNorm = math.NaN() }, "--clip-norm", "finite"},
		{"negative soft share", func(c *Config) { c.SoftShare = -0.1 }, "--soft-share", "0 for no soft sharing"},
		{"negative patience", func(c *Config) { c.EarlyStop = -2 }, "--early-stop", "at least 1"},
		{"bad regexp", func(c *Config) { c.Freeze = "head(" }, "--freeze", "regular expression"},
		{"unknown on-nan", func(c *Config) { c.OnNaN = "ignore" }, "--on-nan", "stop or skip-batch"},
		{"checkpoint-every alone", func(c *Config) { c.CheckpointEvery = 5 }, "--checkpoint-every", "needs --checkpoint"},
		{"negative dwa temperature", func(c *Config) { c.Weighting.Temp = -2 }, "weighting temperature", "≥ 0"},
	}
	for _, c := range cases {
		cfg := ok
		cfg.Losses = map[string]Loss{"a": MSE, "b": SparseCCE}
		c.edit(&cfg)
		err := cfg.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%s: got %v, want a *ConfigError", c.name, err)
			continue
		}
		if ce.Field != c.field || !strings.Contains(ce.Msg, c.want) {
			t.Errorf("%s: got %q (field %s), want field %s and %q", c.name, err, ce.Field, c.field, c.want)
		}
	}
}

// TestFreezeMatchingNothingListsParameters: NewTrainer refuses a --freeze
// expression that matches no parameter and lists the names.
func TestFreezeMatchingNothingListsParameters(t *testing.T) {
	m := tinyModel(2, 3, 4, "Tanh", 1)
	_, err := NewTrainer(m, Config{Losses: tinyLosses(2), Optimizer: OptimizerConfig{LR: 0.1}, Freeze: "^encoder"})
	if err == nil || !strings.Contains(err.Error(), `"^encoder" matches no parameter`) || !strings.Contains(err.Error(), "trunk.w, head1.w") {
		t.Fatalf("got %v", err)
	}
	if _, err := NewTrainer(m, Config{Losses: tinyLosses(2), Optimizer: OptimizerConfig{LR: 0.1}, Freeze: "^head1"}); err != nil {
		t.Fatalf("a matching expression: %v", err)
	}
}

// TestCheckData: shapes against the model's inputs, finiteness, row
// counts and unrelated arrays, before any step.
func TestCheckData(t *testing.T) {
	m := tinyModel(2, 3, 4, "Tanh", 1)
	tr, err := NewTrainer(m, Config{Losses: map[string]Loss{"task1": MSE, "task2": SparseCCELogits}, Optimizer: OptimizerConfig{LR: 0.1}})
	if err != nil {
		t.Fatal(err)
	}
	base := func() map[string]*tensor.Tensor {
		return map[string]*tensor.Tensor{
			"x":     tensor.From([]int{4, 3}, make([]float32, 12)),
			"task1": tensor.From([]int{4, 1}, []float32{1, float32(math.NaN()), 3, 4}),
			"task2": tensor.From([]int{4}, []float32{0, 0, float32(math.NaN()), -1}),
		}
	}
	d, _ := NewDataset(base())
	d.Source = "d.npz"
	if _, notes, err := tr.CheckData(d, "training"); err != nil || len(notes) != 0 {
		t.Fatalf("good data (NaN target, negative class id = missing label): %v %v", err, notes)
	}
	cases := []struct {
		name string
		edit func(map[string]*tensor.Tensor)
		want string
	}{
		{"feature width", func(a map[string]*tensor.Tensor) { a["x"] = tensor.From([]int{4, 5}, make([]float32, 20)) }, `shape [4 5] does not fit model input "x", declared [batch 3]: axis 1 is 5, want 3`},
		{"rank", func(a map[string]*tensor.Tensor) { a["x"] = tensor.From([]int{4, 3, 1}, make([]float32, 12)) }, "rank 3, want rank 2"},
		{"dtype", func(a map[string]*tensor.Tensor) { a["x"] = tensor.From([]int{4, 3}, make([]int64, 12)) }, "model input \"x\" is float32, the data array is int64"},
		{"Inf input", func(a map[string]*tensor.Tensor) { a["x"].Float32s()[7] = float32(math.Inf(-1)) }, `array "x" at d.npz row 2: input value -Inf`},
		{"missing input", func(a map[string]*tensor.Tensor) { delete(a, "x") }, `no array for model input "x"`},
		{"missing target", func(a map[string]*tensor.Tensor) { delete(a, "task1") }, `no target array for task "task1"`},
		{"target width", func(a map[string]*tensor.Tensor) { a["task1"] = tensor.From([]int{4, 2}, make([]float32, 8)) }, "axis 1 is 2, want 1"},
		{"fractional class", func(a map[string]*tensor.Tensor) { a["task2"].Float32s()[1] = 0.25 }, `"task2" at d.npz row 1: label 0.25 is not a class id`},
		{"class out of range", func(a map[string]*tensor.Tensor) { a["task2"].Float32s()[3] = 1 }, "label 1 is out of range: the model predicts 1 classes"},
		{"zero rows", func(a map[string]*tensor.Tensor) {
			a["x"] = tensor.From([]int{0, 3}, []float32{})
			a["task1"] = tensor.From([]int{0, 1}, []float32{})
			a["task2"] = tensor.From([]int{0}, []float32{})
		}, "the training data has no rows"},
	}
	for _, c := range cases {
		a := base()
		c.edit(a)
		d, err := NewDataset(a)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		d.Source = "d.npz"
		_, _, err = tr.CheckData(d, "training")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	// an unrelated array, even of another row count, is left out with a note
	a := base()
	a["ids"] = tensor.From([]int{7}, make([]int64, 7))
	loose := &Dataset{Arrays: a, Rows: -1, Source: "d.npz", mismatch: errors.New("rows differ")}
	sel, notes, err := tr.CheckData(loose, "training")
	if err != nil || sel.Rows != 4 || len(notes) != 1 || !strings.Contains(notes[0], `"ids"`) {
		t.Errorf("unrelated array: %v rows %v notes %v", err, sel, notes)
	}
}

// TestNonFiniteStopsOrSkips: a batch whose loss overflows stops the run
// with an error naming step and task, the weights as they were before that
// step; with OnNaN skip-batch the batch is skipped and training goes on.
func TestNonFiniteStopsOrSkips(t *testing.T) {
	d := tinyData(16, 3, 2, 1)
	x := d.Arrays["x"].Float32s()
	for j := 0; j < 3; j++ {
		x[13*3+j] = 3e38 // finite, but x·W overflows
	}
	cfg := Config{Losses: tinyLosses(2), Optimizer: OptimizerConfig{Kind: SGD, LR: 0.05}, BatchSize: 4, Epochs: 1, NoShuffle: true}
	m := tinyModel(2, 3, 4, "", 1)
	var before map[string]*tensor.Tensor
	steps := 0
	_, err := Fit(context.Background(), m, cfg, d, nil, Callbacks{OnBatch: func(p Progress) {
		steps++
		before = map[string]*tensor.Tensor{}
		for k, v := range m.Graph.Initializers {
			before[k] = v
		}
	}})
	var nf *NonFiniteError
	if !errors.As(err, &nf) {
		t.Fatalf("got %v, want a *NonFiniteError", err)
	}
	t.Logf("%v", err)
	if nf.Step != 4 || nf.Task != "task1" || nf.What == "" || !strings.Contains(err.Error(), "epoch 1 batch 4") {
		t.Errorf("step %d task %q what %q: %v", nf.Step, nf.Task, nf.What, err)
	}
	for k, v := range before {
		if m.Graph.Initializers[k] != v {
			t.Errorf("parameter %q changed by the failed step", k)
		}
	}
	cfg.OnNaN = OnNaNSkipBatch
	m = tinyModel(2, 3, 4, "", 1)
	res, err := Fit(context.Background(), m, cfg, d, nil, Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Epochs[0].Skipped != 1 {
		t.Errorf("skipped %d batches, want 1", res.Epochs[0].Skipped)
	}
	for k, v := range m.Graph.Initializers {
		for _, f := range v.Float32s() {
			if bad(float64(f)) {
				t.Fatalf("parameter %q holds %v after skip-batch", k, f)
			}
		}
	}
	// a Trainer driven step by step says which batch it skipped
	tr, err := NewTrainer(tinyModel(2, 3, 4, "", 1), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rows []int
		skip bool
	}{{[]int{12, 13, 14, 15}, true}, {[]int{0, 1, 2, 3}, false}} {
		if _, err := tr.Step(d.Take(c.rows)); err != nil || tr.Skipped() != c.skip {
			t.Errorf("rows %v: Skipped() = %v, err %v; want %v", c.rows, tr.Skipped(), err, c.skip)
		}
	}
}

// TestRejectedUpdateKeepsMoments: an update that is not finite (finite
// gradients, an absurd learning rate) is rejected with the optimiser's
// moments bitwise as before the step and the weights untouched, on the
// first step (no moments yet) and on a later one; the next good step then
// runs from those moments.
func TestRejectedUpdateKeepsMoments(t *testing.T) {
	d := tinyData(8, 3, 2, 1)
	cfg := Config{Losses: tinyLosses(2), Optimizer: OptimizerConfig{Kind: Adam, LR: 0.01}, BatchSize: 4, NoShuffle: true}
	snapshot := func(tr *Trainer) (m, v map[string][]float32) {
		s := tr.opt.State()
		m, v = map[string][]float32{}, map[string][]float32{}
		for k, x := range s.Slots1 {
			m[k] = append([]float32(nil), x...)
		}
		for k, x := range s.Slots2 {
			v[k] = append([]float32(nil), x...)
		}
		return m, v
	}
	same := func(a, b map[string][]float32) bool {
		if len(a) != len(b) {
			return false
		}
		for k, x := range a {
			y, ok := b[k]
			if !ok || len(x) != len(y) {
				return false
			}
			for i := range x {
				if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
					return false
				}
			}
		}
		return true
	}
	for _, good := range []int{0, 2} {
		tr, err := NewTrainer(tinyModel(2, 3, 4, "", 1), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < good; i++ {
			if _, err := tr.Step(d.Take([]int{0, 1, 2, 3})); err != nil {
				t.Fatal(err)
			}
		}
		m0, v0 := snapshot(tr)
		w0 := map[string]*tensor.Tensor{}
		for k, w := range tr.model.Graph.Initializers {
			w0[k] = w
		}
		tr.opt.SetLR(1e300) // float32(lr) overflows: every update is ±Inf or NaN
		_, err = tr.Step(d.Take([]int{4, 5, 6, 7}))
		var nf *NonFiniteError
		if !errors.As(err, &nf) || !strings.Contains(nf.What, "the update of") {
			t.Fatalf("after %d good steps: got %v, want a rejected update", good, err)
		}
		if m1, v1 := snapshot(tr); !same(m0, m1) || !same(v0, v1) {
			t.Errorf("after %d good steps: the rejected update changed the moments (%d, %d buffers; before %d, %d)", good, len(m1), len(v1), len(m0), len(v0))
		}
		for k, w := range w0 {
			if tr.model.Graph.Initializers[k] != w {
				t.Errorf("after %d good steps: parameter %q changed by the rejected update", good, k)
			}
		}
		tr.opt.SetLR(0.01)
		if _, err := tr.Step(d.Take([]int{4, 5, 6, 7})); err != nil {
			t.Fatalf("after %d good steps: the next step: %v", good, err)
		}
	}
}

// TestEarlyStopNeedsValidation: the library refuses it too.
func TestEarlyStopNeedsValidation(t *testing.T) {
	cfg := Config{Losses: tinyLosses(2), Optimizer: OptimizerConfig{LR: 0.1}, EarlyStop: 2}
	_, err := Fit(context.Background(), tinyModel(2, 3, 4, "Tanh", 1), cfg, tinyData(8, 3, 2, 1), nil, Callbacks{})
	if err == nil || !strings.Contains(err.Error(), "--val FILE or --val-split") {
		t.Fatalf("got %v", err)
	}
}
