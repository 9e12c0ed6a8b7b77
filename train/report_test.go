package train

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// handModel is pred_i = x·(s·h_i) + b_i with a 2-vector trunk s = (1, 1)
// and heads h1 = (1, 0), h2 = (1, 1), b = 0. On the one row x = 1 with
// targets y = (0, 3) the predictions are (1, 2), the MSE losses (1, 1) and
// the trunk gradients g_i = 2(pred_i − y_i)·h_i: g1 = (2, 0), g2 = (−2, −2).
func handModel() *graph.Model {
	g := &graph.Graph{Name: "hand"}
	batch := graph.Dim{Param: "batch"}
	g.Inputs = []graph.ValueInfo{{Name: "x", DType: tensor.Float32, Kind: "tensor", HasShape: true, Shape: []graph.Dim{batch, {Value: 1}}}}
	g.AddInitializer("s", tensor.From([]int{1, 2}, []float32{1, 1}))
	node := func(op string, ins []string, out string) {
		g.Nodes = append(g.Nodes, &graph.Node{Name: out, OpType: op, Inputs: ins, Outputs: []string{out}, Attrs: graph.Attrs{}})
	}
	node("MatMul", []string{"x", "s"}, "h")
	for i, hw := range [][]float32{{1, 0}, {1, 1}} {
		name := taskName(i + 1)
		g.AddInitializer(name+".h", tensor.From([]int{2, 1}, hw))
		g.AddInitializer(name+".b", tensor.From([]int{1}, []float32{0}))
		node("MatMul", []string{"h", name + ".h"}, name+".mm")
		node("Add", []string{name + ".mm", name + ".b"}, name)
		g.Outputs = append(g.Outputs, graph.ValueInfo{Name: name, DType: tensor.Float32, Kind: "tensor", HasShape: true, Shape: []graph.Dim{batch, {Value: 1}}})
	}
	return &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": 17}}
}

func handData(y2 float32) *Dataset {
	d, _ := NewDataset(map[string]*tensor.Tensor{
		"x":     tensor.From([]int{1, 1}, []float32{1}),
		"task1": tensor.From([]int{1, 1}, []float32{0}),
		"task2": tensor.From([]int{1, 1}, []float32{y2}),
	})
	return d
}

// TestReportedWeightsAreApplied: the task weights in EpochStats are the
// ones the method applied, checked against hand-computed cases.
func TestReportedWeightsAreApplied(t *testing.T) {
	r2 := math.Sqrt2
	z := rand.New(rand.NewPCG(4, 0)) // rlw's first draw: seed 4, step 0
	z1, z2 := z.NormFloat64(), z.NormFloat64()
	e1, e2 := math.Exp(z1), math.Exp(z2)
	cases := []struct {
		weighting WeightingKind
		want      [2]float64
	}{
		// min ‖γg1 + (1−γ)g2‖²: γ = (g2·g2 − g1·g2)/‖g1 − g2‖² = (8+4)/20
		{"mgda", [2]float64{0.6, 0.4}},
		// equal projections on u1 = (1,0), u2 = −(1,1)/√2:
		// α2 = g1·(u1−u2) / ((g1−g2)·(u1−u2)) = (2+√2)/(4+3√2) = √2−1
		{"imtl", [2]float64{2 - r2, r2 - 1}},
		{"rlw", [2]float64{e1 / (e1 + e2), e2 / (e1 + e2)}},
		{"fixed", [2]float64{1, 1}},
		{"uncertainty", [2]float64{0.5, 0.5}}, // 1/(2e^0) before the first update
		{"dwa", [2]float64{1, 1}},
		{"gradnorm", [2]float64{1, 1}},
		{"pcgrad", [2]float64{1, 1}},
		{"cagrad", [2]float64{1, 1}},
	}
	for _, c := range cases {
		cfg := Config{Losses: tinyLosses(2), Weighting: WeightingConfig{Kind: c.weighting, Seed: 4},
			Optimizer: OptimizerConfig{Kind: SGD, LR: 0.01}, Freeze: "heads", BatchSize: 1, Epochs: 1, Seed: 4}
		res, err := Fit(context.Background(), handModel(), cfg, handData(3), nil, Callbacks{})
		if err != nil {
			t.Fatalf("%s: %v", c.weighting, err)
		}
		w := res.Epochs[0].Weights
		got := [2]float64{w["task1"], w["task2"]}
		if len(w) != 2 || math.Abs(got[0]-c.want[0]) > 1e-6 || math.Abs(got[1]-c.want[1]) > 1e-6 {
			t.Errorf("%s: reported %v, applied by hand %v", c.weighting, w, c.want)
		}
	}
}

// TestUncertaintyUsesTheRunsOptimiser: the log-variances take the chosen
// optimiser's step at the chosen rate. With losses (1, 9) their gradients
// are ½ − L/2 = (0, −4): Adam's first step moves s2 by lr·sign = +0.1 and
// leaves s1; SGD at 0.3 moves s2 by 1.2.
func TestUncertaintyUsesTheRunsOptimiser(t *testing.T) {
	for _, c := range []struct {
		opt    OptimizerConfig
		s1, s2 float32
	}{
		{OptimizerConfig{Kind: Adam, LR: 0.1}, 0, 0.1},
		{OptimizerConfig{Kind: SGD, LR: 0.3}, 0, 1.2},
	} {
		cfg := Config{Losses: tinyLosses(2), Weighting: WeightingConfig{Kind: Uncertainty}, Optimizer: c.opt,
			BatchSize: 1, Epochs: 1}
		tr, err := NewTrainer(handModel(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Fit(context.Background(), handData(5), nil, Callbacks{}); err != nil {
			t.Fatal(err)
		}
		s := tr.weighting.(*uncertainty).logVar
		if math.Abs(float64(s[0]-c.s1)) > 1e-6 || math.Abs(float64(s[1]-c.s2)) > 1e-6 {
			t.Errorf("%s lr %v: log-variances %v, want [%v %v]", c.opt.Kind, c.opt.LR, s, c.s1, c.s2)
		}
	}
}
