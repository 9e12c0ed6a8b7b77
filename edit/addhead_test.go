package edit

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/train"
)

var seedPath = filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm", "model.onnx")

func probe(n, T int) map[string]*tensor.Tensor {
	return map[string]*tensor.Tensor{"input": tensor.From([]int{n, T, 1}, make([]float32, n*T))}
}

// synthetic draws sequences whose class (0, 1, 2) is the band the last
// value falls in: a task the frozen LSTM trunk's state carries.
func synthetic(n, T int, seed uint64) (*tensor.Tensor, *tensor.Tensor) {
	rng := rand.New(rand.NewPCG(seed, 3))
	x := make([]float32, n*T)
	y := make([]int64, n)
	for i := 0; i < n; i++ {
		for t := 0; t < T; t++ {
			x[i*T+t] = float32(rng.NormFloat64())
		}
		last := x[i*T+T-1]
		switch {
		case last < -0.43:
			y[i] = 0
		case last > 0.43:
			y[i] = 2
		default:
			y[i] = 1
		}
	}
	return tensor.From([]int{n, T, 1}, x), tensor.From([]int{n}, y)
}

func TestAddHeadTrainExport(t *testing.T) {
	m, err := importer.Load(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	before, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	xTest, yTest := synthetic(400, 12, 2)
	oldOut, err := before.Run(map[string]*tensor.Tensor{"input": xTest})
	if err != nil {
		t.Fatal(err)
	}
	if err := AddHead(m, HeadSpec{Name: "band", From: "trunk", Units: 3, Activation: "softmax", Seed: 1}, probe(2, 5)); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Graph.Output("band"); !ok {
		t.Fatal("no new output")
	}
	split := graph.TaskSplit(m.Graph)
	if len(split.Heads["band"]) != 2 {
		t.Fatalf("new head parameters %v", split.Heads["band"])
	}
	xTrain, yTrain := synthetic(1200, 12, 1)
	d, err := train.NewDataset(map[string]*tensor.Tensor{"input": xTrain, "band": yTrain})
	if err != nil {
		t.Fatal(err)
	}
	cfg := train.Config{Losses: map[string]train.Loss{"band": train.SparseCCE}, Freeze: "trunk",
		Optimizer: train.OptimizerConfig{Kind: train.Adam, LR: 0.05}, BatchSize: 64, Epochs: 15, Seed: 1}
	tr, err := train.NewTrainer(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Trainable(); len(got) != 2 {
		t.Fatalf("trainable %v, want only the new head's kernel and bias", got)
	}
	if _, err := tr.Fit(context.Background(), d, nil, train.Callbacks{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "with_head.onnx")
	if err := exporter.Save(m, out, exporter.Options{}); err != nil {
		t.Fatal(err)
	}
	back, err := importer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := runtime.NewSession(back, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := sess.Run(map[string]*tensor.Tensor{"input": xTest})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"output1", "output2"} {
		if !reflect.DeepEqual(res[name].Data, oldOut[name].Data) {
			t.Errorf("old output %q changed", name)
		}
	}
	probs := res["band"].Float32s()
	right := 0
	for i, label := range yTest.Int64s() {
		best := 0
		for c := 1; c < 3; c++ {
			if probs[i*3+c] > probs[i*3+best] {
				best = c
			}
		}
		if int64(best) == label {
			right++
		}
	}
	acc := float64(right) / float64(len(yTest.Int64s()))
	t.Logf("new 3-class head after training with the trunk frozen: held-out accuracy %.3f (chance 0.333)", acc)
	if acc < 0.6 {
		t.Errorf("held-out accuracy %.3f is not clearly better than chance", acc)
	}
}

func TestAddHeadBadRequests(t *testing.T) {
	cases := []struct {
		spec HeadSpec
		want string
	}{
		{HeadSpec{Name: "x", From: "no_such_tensor", Units: 2}, "unknown tensor"},
		{HeadSpec{Name: "output1", Units: 2}, "already has an output"},
		{HeadSpec{Name: "x", Units: 0}, "--units"},
		{HeadSpec{Name: "x", Units: 2, Activation: "swish"}, "unknown activation"},
		{HeadSpec{Name: "", Units: 2}, "--name"},
	}
	for _, c := range cases {
		m, err := importer.Load(seedPath)
		if err != nil {
			t.Fatal(err)
		}
		err = AddHead(m, c.spec, probe(2, 5))
		if err == nil || !errors.Is(err, ErrBadHead) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an ErrBadHead mentioning %q", c.spec, err, c.want)
		}
	}
	// a head on an integer tensor: the Shape output feeding the initial state
	m, _ := importer.Load(seedPath)
	var intTensor string
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Shape" {
			intTensor = n.Outputs[0]
		}
	}
	err := AddHead(m, HeadSpec{Name: "x", From: intTensor, Units: 2}, probe(2, 5))
	if err == nil || !strings.Contains(err.Error(), "float32") {
		t.Errorf("head on integer tensor %q: %v", intTensor, err)
	}
}
