// Command gradnorm-toy runs every task-weighting method of mtlrun on the
// synthetic benchmark of Chen et al., "GradNorm" (ICML 2018, §4):
// T regression tasks f_i(x) = σ_i·tanh((B + ε_i)·x) that share a common
// structure B but differ in scale σ_i, learned by a shared 4-layer ReLU trunk
// with one linear head per task. The tasks' loss scales differ by up to
// σ² = 10⁴, which is what loss weighting is meant to handle.
//
// It prints, per method, each task's test loss normalised by its scale σ_i²
// (so tasks are comparable) after a fixed training budget.
//
//	go run ./examples/gradnorm-toy [-steps 300] [-sigmas 1,100]
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/mtlrun/mtlrun/graph"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/train"
)

const (
	inDim  = 250
	outDim = 100
	hidden = 100
)

func main() {
	steps := flag.Int("steps", 300, "optimisation steps per method")
	sigmaList := flag.String("sigmas", "1,100", "task scales σ_i (comma-separated)")
	seed := flag.Uint64("seed", 1, "seed")
	flag.Parse()
	var sigmas []float64
	for _, s := range strings.Split(*sigmaList, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bad -sigmas:", err)
			os.Exit(2)
		}
		sigmas = append(sigmas, v)
	}
	trainSet, testSet := makeData(sigmas, 2000, 500, *seed)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "method\t")
	for i, s := range sigmas {
		fmt.Fprintf(w, "task %d (σ=%g)\t", i, s)
	}
	fmt.Fprintln(w, "mean\t")
	// "fixed, 1/σ²" is a hand-tuned fixed weighting: what a practitioner
	// who knows the task scales would choose
	const handTuned = "fixed, 1/σ²"
	methods := []string{}
	for _, k := range train.Weightings {
		methods = append(methods, string(k))
	}
	for _, method := range append(methods, handTuned) {
		m := buildModel(len(sigmas), *seed)
		losses := map[string]train.Loss{}
		weights := map[string]float64{}
		for i, s := range sigmas {
			losses[task(i)] = train.MSE
			weights[task(i)] = 1 / (s * s)
		}
		kind := train.Fixed
		if method != handTuned {
			weights = nil
			kind = train.WeightingKind(method)
		}
		cfg := train.Config{
			Losses: losses, LossWeights: weights, Weighting: train.WeightingConfig{Kind: kind, Seed: *seed},
			Optimizer: train.OptimizerConfig{Kind: train.Adam, LR: 1e-3}, BatchSize: 100,
			Epochs: *steps * 100 / trainSet.Rows, Seed: *seed,
		}
		tr, err := train.NewTrainer(m, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, method, err)
			os.Exit(1)
		}
		if _, err := tr.Fit(context.Background(), trainSet, nil, train.Callbacks{}); err != nil {
			fmt.Fprintln(os.Stderr, method, err)
			os.Exit(1)
		}
		metrics, _, err := tr.Evaluate(testSet)
		if err != nil {
			fmt.Fprintln(os.Stderr, method, err)
			os.Exit(1)
		}
		fmt.Fprintf(w, "%s\t", method)
		mean := 0.0
		for i, s := range sigmas {
			v := metrics[task(i)].Loss / (s * s)
			mean += v / float64(len(sigmas))
			fmt.Fprintf(w, "%.4f\t", v)
		}
		fmt.Fprintf(w, "%.4f\t\n", mean)
	}
	w.Flush()
}

func task(i int) string { return fmt.Sprintf("task%d", i) }

// makeData draws B ~ N(0, 10), ε_i ~ N(0, 3.5) elementwise, x ~ N(0, 1),
// and targets σ_i·tanh((B + ε_i)x), as in the paper's setup.
func makeData(sigmas []float64, nTrain, nTest int, seed uint64) (*train.Dataset, *train.Dataset) {
	rng := rand.New(rand.NewPCG(seed, 99))
	B := make([]float64, outDim*inDim)
	for i := range B {
		B[i] = rng.NormFloat64() * math.Sqrt(10)
	}
	eps := make([][]float64, len(sigmas))
	for t := range eps {
		eps[t] = make([]float64, outDim*inDim)
		for i := range eps[t] {
			eps[t][i] = rng.NormFloat64() * math.Sqrt(3.5)
		}
	}
	gen := func(n int) *train.Dataset {
		x := make([]float32, n*inDim)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		arrays := map[string]*tensor.Tensor{"x": tensor.From([]int{n, inDim}, x)}
		for t, s := range sigmas {
			y := make([]float32, n*outDim)
			for r := 0; r < n; r++ {
				for o := 0; o < outDim; o++ {
					var acc float64
					for k := 0; k < inDim; k++ {
						acc += (B[o*inDim+k] + eps[t][o*inDim+k]) * float64(x[r*inDim+k])
					}
					// the paper's inputs are scaled so tanh is not saturated
					y[r*outDim+o] = float32(s * math.Tanh(acc/math.Sqrt(inDim*13.5)))
				}
			}
			arrays[task(t)] = tensor.From([]int{n, outDim}, y)
		}
		d, err := train.NewDataset(arrays)
		if err != nil {
			panic(err)
		}
		return d
	}
	return gen(nTrain), gen(nTest)
}

// buildModel makes x → 4×(Dense(100)+ReLU) → one Dense(100) head per task.
func buildModel(tasks int, seed uint64) *graph.Model {
	rng := rand.New(rand.NewPCG(seed, 7))
	g := &graph.Graph{Name: "gradnorm_toy"}
	batch := graph.Dim{Param: "batch"}
	g.Inputs = []graph.ValueInfo{{Name: "x", DType: tensor.Float32, Kind: "tensor", HasShape: true, Shape: []graph.Dim{batch, {Value: inDim}}}}
	dense := func(name, in string, fanIn, fanOut int, relu bool) string {
		lim := math.Sqrt(6 / float64(fanIn+fanOut))
		w := make([]float32, fanIn*fanOut)
		for i := range w {
			w[i] = float32((rng.Float64()*2 - 1) * lim)
		}
		g.AddInitializer(name+"/kernel", tensor.From([]int{fanIn, fanOut}, w))
		b, _ := tensor.New(tensor.Float32, []int{fanOut})
		g.AddInitializer(name+"/bias", b)
		g.Nodes = append(g.Nodes,
			&graph.Node{Name: name + "/MatMul", OpType: "MatMul", Inputs: []string{in, name + "/kernel"}, Outputs: []string{name + "/mm"}, Attrs: graph.Attrs{}},
			&graph.Node{Name: name + "/Add", OpType: "Add", Inputs: []string{name + "/mm", name + "/bias"}, Outputs: []string{name + "/out"}, Attrs: graph.Attrs{}})
		if !relu {
			return name + "/out"
		}
		g.Nodes = append(g.Nodes, &graph.Node{Name: name + "/Relu", OpType: "Relu", Inputs: []string{name + "/out"}, Outputs: []string{name + "/relu"}, Attrs: graph.Attrs{}})
		return name + "/relu"
	}
	h := dense("trunk0", "x", inDim, hidden, true)
	for l := 1; l < 4; l++ {
		h = dense(fmt.Sprintf("trunk%d", l), h, hidden, hidden, true)
	}
	for t := 0; t < tasks; t++ {
		out := dense("head_"+task(t), h, hidden, outDim, false)
		g.Nodes = append(g.Nodes, &graph.Node{Name: task(t) + "/Identity", OpType: "Identity", Inputs: []string{out}, Outputs: []string{task(t)}, Attrs: graph.Attrs{}})
		g.Outputs = append(g.Outputs, graph.ValueInfo{Name: task(t), DType: tensor.Float32, Kind: "tensor", HasShape: true, Shape: []graph.Dim{batch, {Value: outDim}}})
	}
	return &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": 17}, Producer: "gradnorm-toy"}
}
