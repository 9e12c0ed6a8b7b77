package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/parity"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/train/autodiff"
)

// matrixModels lists the sample models and the shared Keras/PyTorch
// exports by display name.
func matrixModels(t *testing.T) map[string]string {
	out := map[string]string{}
	paths, _ := filepath.Glob(filepath.Join(fixtures.RepoRoot(), "models", "*", "model.onnx"))
	for _, p := range paths {
		out["models/"+filepath.Base(filepath.Dir(p))] = p
	}
	keras := filepath.Join(fixtures.Shared(), "testdata", "keras")
	if _, err := os.Stat(keras); err != nil {
		if fixtures.Required() {
			t.Fatalf("shared models missing (MTLRUN_REQUIRE_FIXTURES=1): %s", fixtures.HowToGetShared)
		}
		t.Logf("shared Keras/PyTorch exports not checked: %s is missing (%s)", keras, fixtures.HowToGetShared)
		return out
	}
	paths, _ = filepath.Glob(filepath.Join(keras, "*", "model.onnx"))
	for _, p := range paths {
		out["keras/"+filepath.Base(filepath.Dir(p))] = p
	}
	return out
}

// TestTrainabilityMatrix: every model that runs also trains. Its training
// forward pass must agree with inference; then each trains
// for a few SGD steps on synthetic data with an mse loss on every float
// output and must reduce the loss, move its recurrent weights, leave every
// constant bit-identical, and export a model onnxruntime agrees with; a
// float64 central-difference check covers a few parameters of the whole
// model's gradient.
func TestTrainabilityMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("trains every sample and shared model (skipped with -short)")
	}
	ortErr := parity.Available()
	if ortErr != nil && fixtures.Required() {
		t.Fatalf("onnxruntime missing (MTLRUN_REQUIRE_FIXTURES=1): %v", firstLine(ortErr))
	}
	if ortErr != nil {
		t.Logf("onnxruntime parity of the trained models not checked: %v", firstLine(ortErr))
	}
	models := matrixModels(t)
	names := make([]string, 0, len(models))
	for n := range models {
		names = append(names, n)
	}
	sort.Strings(names)
	var table []string
	for _, name := range names {
		path := models[name]
		t.Run(name, func(t *testing.T) {
			res := trainabilityCase(t, path, ortErr == nil)
			table = append(table, fmt.Sprintf("| %s | %s |", name, res))
		})
	}
	t.Logf("trainability matrix:\n%s", strings.Join(table, "\n"))
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// trainabilityCase runs one model and returns its row of the matrix:
// producer and result.
func trainabilityCase(t *testing.T, path string, ort bool) string {
	m, err := importer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	producer := strings.TrimSpace(m.Producer + " " + m.ProducerVersion)
	inputs, err := parity.RandomInputs(m, 2, 6, 1)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := sess.Run(inputs)
	if err != nil {
		// not a model `mtlrun run` accepts on these inputs: nothing to train
		t.Logf("does not run: %v", err)
		return producer + " | does not run (" + firstLine(err) + ")"
	}
	// the training forward pass (own LSTM/GRU cells, Loop/Scan/If bodies
	// run as sub-programs) computes what inference computes
	var floatOuts []string
	for _, o := range m.Graph.Outputs {
		if y := outs[o.Name]; y != nil && y.DType == tensor.Float32 {
			floatOuts = append(floatOuts, o.Name)
		}
	}
	params0, _ := autodiff.Parameters(m)
	prog, err := autodiff.NewProgram(m, floatOuts, params0)
	if err != nil {
		t.Fatalf("train: %v", err)
	}
	tape, err := prog.Forward(inputs)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range floatOuts {
		a, b := tape.Value(o).Float32s(), outs[o].Float32s()
		for i := range b {
			if d := math.Abs(float64(a[i]) - float64(b[i])); d > 1e-5+1e-4*math.Abs(float64(b[i])) {
				t.Fatalf("output %s[%d]: training forward %g, inference %g", o, i, a[i], b[i])
			}
		}
	}
	rng := rand.New(rand.NewPCG(9, 9))
	arrays := map[string]*tensor.Tensor{}
	for k, v := range inputs {
		arrays[k] = v
	}
	losses := map[string]Loss{}
	for _, o := range m.Graph.Outputs {
		y := outs[o.Name]
		if y == nil || y.DType != tensor.Float32 {
			continue
		}
		target := make([]float32, y.Len())
		for i, v := range y.Float32s() {
			target[i] = v + float32(0.5*rng.NormFloat64())
		}
		arrays[o.Name] = tensor.From(y.Shape, target)
		losses[o.Name] = MSE
	}
	if len(losses) == 0 {
		t.Fatalf("no float output to train")
	}
	data, err := NewDataset(arrays)
	if err != nil {
		t.Fatal(err)
	}
	params, constants := autodiff.Parameters(m)
	before := map[string]*tensor.Tensor{}
	for name, v := range m.Graph.Initializers {
		before[name] = v.Clone()
	}
	// SGD with the gradient clipped to norm 0.1 takes steps of length 1e-3
	// at most: small enough to reduce the loss of every model here, some of
	// which (outputs in the hundreds) overshoot with Adam's first steps.
	tr, err := NewTrainer(m, Config{Losses: losses, Optimizer: OptimizerConfig{Kind: SGD, LR: 0.01}, ClipNorm: 0.1,
		BatchSize: data.Rows, Epochs: 5, NoShuffle: true})
	if err != nil {
		t.Fatalf("train: %v", err)
	}
	_, lossBefore, err := tr.Evaluate(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Fit(context.Background(), data, nil, Callbacks{}); err != nil {
		t.Fatalf("train: %v", err)
	}
	_, lossAfter, err := tr.Evaluate(data)
	if err != nil {
		t.Fatal(err)
	}
	if !(lossAfter < lossBefore) {
		t.Errorf("loss went from %.6g to %.6g", lossBefore, lossAfter)
	}
	for _, name := range constants {
		if !sameBits(m.Graph.Initializers[name], before[name]) {
			t.Errorf("constant %q changed", name)
		}
	}
	for name, v := range m.Graph.Initializers {
		if !v.DType.IsFloat() && !sameBits(v, before[name]) {
			t.Errorf("non-float initializer %q changed", name)
		}
	}
	recurrent := recurrentWeights(m, params)
	for _, name := range recurrent {
		if sameBits(m.Graph.Initializers[name], before[name]) {
			t.Errorf("recurrent weight %q did not change", name)
		}
	}
	result := fmt.Sprintf("loss %.4g → %.4g in 5 steps; %d parameters (%d recurrent), %d constants unchanged", lossBefore, lossAfter, len(params), len(recurrent), len(constants))
	if ort {
		out := filepath.Join(t.TempDir(), "trained.onnx")
		if err := exporter.Save(m, out, exporter.Options{}); err != nil {
			t.Fatal(err)
		}
		back, err := importer.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := parity.Check(out, back, inputs, 1e-4, 1e-5)
		var re *parity.RunError
		switch {
		case errors.As(err, &re):
			result += "; onnxruntime cannot run it (" + firstLine(err) + ")"
		case err != nil:
			t.Fatal(err)
		case !rep.Pass:
			t.Errorf("the exported trained model differs from onnxruntime:\n%s", rep.String())
		default:
			result += "; onnxruntime agrees"
		}
	}
	worst, n := wholeModelFD(t, path, inputs, recurrent)
	result += fmt.Sprintf("; float64 FD on %d entries: worst rel. error %.1e", n, worst)
	if t.Failed() {
		return producer + " | FAILED: " + result
	}
	return producer + " | trains: " + result
}

func sameBits(a, b *tensor.Tensor) bool {
	if a.DType != b.DType || !tensor.SameShape(a.Shape, b.Shape) {
		return false
	}
	x, err1 := tensor.EncodeRaw(a)
	y, err2 := tensor.EncodeRaw(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// recurrentWeights lists the parameters read by LSTM/GRU/RNN nodes or by
// Loop/Scan bodies (as inputs or from the outer scope).
func recurrentWeights(m *graph.Model, params []string) []string {
	isParam := map[string]bool{}
	for _, p := range params {
		isParam[p] = true
	}
	seen := map[string]bool{}
	var out []string
	add := func(name string) {
		if isParam[name] && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	// with a single time step from a zero state the recurrent kernel R has
	// no gradient (its input h₀ is 0)
	singleStep := false
	for _, v := range m.Graph.FeedInputs() {
		if len(v.Shape) == 3 && v.Shape[1].Known() && v.Shape[1].Value == 1 {
			singleStep = true
		}
	}
	for _, n := range m.Graph.Nodes {
		switch n.OpType {
		case "LSTM", "GRU", "RNN":
			for i, in := range n.Inputs[1:min(4, len(n.Inputs))] {
				if i == 1 && singleStep {
					continue
				}
				add(in)
			}
		case "Loop", "Scan":
			for _, in := range n.Inputs {
				add(in)
			}
			for _, sg := range n.Subgraphs() {
				for _, fv := range sg.Graph.FreeVariables() {
					add(fv)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// fdBudget is how many parameters, and entries of each, wholeModelFD
// checks on a model: every entry costs two float64 forward passes. Fixed
// per model so that a run checks the same entries whatever the machine.
func fdBudget(path string) (b struct{ params, entries int }) {
	switch filepath.Base(filepath.Dir(path)) {
	case "keras3_bidirectional_lstm":
		// 512 steps each way, ~3 s per float64 pass: the largest-gradient
		// entry of two parameters
		b.params, b.entries = 2, 1
	default:
		b.params, b.entries = 3, 2
	}
	return b
}

// wholeModelFD converts the model to float64 and compares the gradient of
// Σ wᵢ·yᵢ (random fixed weights over the float outputs) with central
// differences on two entries (the largest-gradient one and a random one)
// of up to three parameters, recurrent ones first (fewer on a slow model:
// fdBudget). It returns the worst
// relative error and the number of entries checked.
func wholeModelFD(t *testing.T, path string, inputs map[string]*tensor.Tensor, recurrent []string) (float64, int) {
	t.Helper()
	m, err := importer.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	toFloat64(m.Graph)
	in := map[string]*tensor.Tensor{}
	for k, v := range inputs {
		if v.DType == tensor.Float32 {
			f := v.Float32s()
			d := make([]float64, len(f))
			for i, x := range f {
				d[i] = float64(x)
			}
			in[k] = tensor.From(v.Shape, d)
		} else {
			in[k] = v
		}
	}
	params, _ := autodiff.Parameters(m)
	var outs []string
	for _, o := range m.Graph.Outputs {
		outs = append(outs, o.Name)
	}
	prog, err := autodiff.NewProgram(m, outs, params)
	if err != nil {
		t.Fatalf("float64 program: %v", err)
	}
	tape, err := prog.Forward(in)
	if err != nil {
		t.Fatalf("float64 forward: %v", err)
	}
	budget := fdBudget(path)
	rng := rand.New(rand.NewPCG(4, 2))
	weights := map[string]*tensor.Tensor{}
	for _, o := range outs {
		y := tape.Value(o)
		if y == nil || y.DType != tensor.Float64 {
			continue
		}
		w := make([]float64, y.Len())
		for i := range w {
			w[i] = rng.NormFloat64()
		}
		weights[o] = tensor.From(y.Shape, w)
	}
	grads, err := tape.Backward(weights)
	if err != nil {
		t.Fatalf("float64 backward: %v", err)
	}
	loss := func() float64 {
		tp, err := prog.Forward(in)
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for o, w := range weights {
			y := tp.Value(o).Float64s()
			for i, wv := range w.Float64s() {
				s += wv * y[i]
			}
		}
		return s
	}
	chosen := append([]string{}, recurrent...)
	for _, p := range []string{params[0], params[len(params)-1]} {
		if !contains(chosen, p) {
			chosen = append(chosen, p)
		}
	}
	if len(chosen) > budget.params {
		chosen = chosen[:budget.params]
	}
	worst, n := 0.0, 0
	for _, p := range chosen {
		x := m.Graph.Initializers[p].Float64s()
		g := grads[p].Float64s()
		big := 0
		scale := 0.0
		for i, v := range g {
			if math.Abs(v) > math.Abs(g[big]) {
				big = i
			}
			scale = math.Max(scale, math.Abs(v))
		}
		entries := []int{big, rng.IntN(len(x))}[:budget.entries]
		for _, i := range entries {
			orig := x[i]
			h := 1e-6 * math.Max(1, math.Abs(orig))
			x[i] = orig + h
			up := loss()
			x[i] = orig - h
			down := loss()
			x[i] = orig
			want := (up - down) / (2 * h)
			rel := math.Abs(g[i]-want) / math.Max(math.Abs(want), 1e-3*scale+1e-12)
			worst = math.Max(worst, rel)
			n++
			if rel > 1e-3 {
				t.Errorf("d loss/d %s[%d] = %.8g, float64 central differences say %.8g", p, i, g[i], want)
			}
		}
	}
	return worst, n
}

func contains(v []string, s string) bool {
	for _, x := range v {
		if x == s {
			return true
		}
	}
	return false
}

// toFloat64 rewrites a graph (and its subgraphs) to compute in float64:
// float32 initializers and constants become float64, Casts to float32 cast
// to float64.
func toFloat64(g *graph.Graph) {
	for name, v := range g.Initializers {
		g.Initializers[name] = widen(v)
	}
	for i := range g.Inputs {
		if g.Inputs[i].DType == tensor.Float32 {
			g.Inputs[i].DType = tensor.Float64
		}
	}
	for i := range g.Outputs {
		if g.Outputs[i].DType == tensor.Float32 {
			g.Outputs[i].DType = tensor.Float64
		}
	}
	for _, n := range g.Nodes {
		for k, a := range n.Attrs {
			switch {
			case k == "to" && n.OpType == "Cast" && a.Int == int64(tensor.Float32):
				a.Int = int64(tensor.Float64)
			case a.Type == graph.AttrTensor && a.Tensor != nil:
				a.Tensor = widen(a.Tensor)
			case k == "value_float" && n.OpType == "Constant":
				delete(n.Attrs, k)
				k, a = "value", graph.Attr{Type: graph.AttrTensor, Tensor: tensor.Scalar(float64(a.Float))}
			}
			n.Attrs[k] = a
		}
		for _, sg := range n.Subgraphs() {
			toFloat64(sg.Graph)
		}
	}
}

func widen(v *tensor.Tensor) *tensor.Tensor {
	if v.DType != tensor.Float32 {
		return v
	}
	f := v.Float32s()
	d := make([]float64, len(f))
	for i, x := range f {
		d[i] = float64(x)
	}
	return tensor.From(append([]int{}, v.Shape...), d)
}
