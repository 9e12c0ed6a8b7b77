// Command qdq writes a QDQ int8 version of a float ONNX model, the form
// onnxruntime's and TensorRT's quantization tools produce: every weight of
// a Gemm, MatMul, Conv or LSTM becomes an int8 initializer with a
// per-tensor symmetric scale behind a DequantizeLinear, and the activation
// each of those ops reads goes through a QuantizeLinear/DequantizeLinear
// pair (int8, zero point 0). Activation ranges come from the model's
// test_data_set inputs for graph inputs and from the op's output bound for
// LSTM hidden states (|h| < 1); other activations are calibrated by running
// the float model on the test sets.
//
//	go run ./scripts/qdq models/seed_lstm /tmp/seed_lstm_qdq
//
// The output folder gets model.onnx and copies of the test sets (whose
// expected outputs are the float model's: compare with a tolerance).
package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: qdq MODEL_DIR OUT_DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "qdq:", err)
		os.Exit(1)
	}
}

// weightInputs are the weight slots quantized per op type.
var weightInputs = map[string][]int{"Gemm": {1}, "MatMul": {1}, "Conv": {1}, "LSTM": {1, 2}}

func run(dir, out string) error {
	m, err := importer.Load(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return err
	}
	g := m.Graph
	sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
	ranges, err := calibrate(m, sets)
	if err != nil {
		return err
	}
	var nodes []*graph.Node
	quantized := map[string]string{} // activation -> its dequantized copy
	nq, nw := 0, 0
	for _, n := range g.Nodes {
		slots, ok := weightInputs[n.OpType]
		if !ok || n.Domain != "" {
			nodes = append(nodes, n)
			continue
		}
		for _, i := range slots {
			name := n.Inputs[i]
			w := g.Initializers[name]
			if w == nil || w.DType != tensor.Float32 {
				continue
			}
			q, scale := quantize(w.Float32s(), w.Shape)
			delete(g.Initializers, name)
			g.AddInitializer(name+"_quantized", q)
			g.AddInitializer(name+"_scale", tensor.Scalar(scale))
			nodes = append(nodes, &graph.Node{Name: name + "_DequantizeLinear", OpType: "DequantizeLinear",
				Inputs: []string{name + "_quantized", name + "_scale"}, Outputs: []string{name}, Attrs: graph.Attrs{}})
			nw++
		}
		// the activation input 0
		x := n.Inputs[0]
		if g.Initializers[x] == nil {
			dq, done := quantized[x]
			if !done {
				bound, ok := ranges[x]
				if !ok || bound == 0 {
					return fmt.Errorf("no range for activation %q of node %q", x, n.Label())
				}
				scale := float32(bound / 127)
				dq = x + "_dq"
				g.AddInitializer(x+"_scale", tensor.Scalar(scale))
				g.AddInitializer(x+"_zero_point", tensor.Scalar(int8(0)))
				nodes = append(nodes,
					&graph.Node{Name: x + "_QuantizeLinear", OpType: "QuantizeLinear", Inputs: []string{x, x + "_scale", x + "_zero_point"}, Outputs: []string{x + "_q"}, Attrs: graph.Attrs{}},
					&graph.Node{Name: x + "_DequantizeLinear", OpType: "DequantizeLinear", Inputs: []string{x + "_q", x + "_scale", x + "_zero_point"}, Outputs: []string{dq}, Attrs: graph.Attrs{}})
				quantized[x] = dq
				nq++
			}
			n.Inputs = append([]string{dq}, n.Inputs[1:]...)
		}
		nodes = append(nodes, n)
	}
	g.Nodes = nodes
	if err := g.Sort(); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := exporter.Save(m, filepath.Join(out, "model.onnx"), exporter.Options{}); err != nil {
		return err
	}
	for _, s := range sets {
		dst := filepath.Join(out, filepath.Base(s))
		os.MkdirAll(dst, 0o755)
		files, _ := filepath.Glob(filepath.Join(s, "*.pb"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644); err != nil {
				return err
			}
		}
	}
	fmt.Printf("qdq: %s: %d weights int8, %d activations through Q/DQ\n", filepath.Join(out, "model.onnx"), nw, nq)
	return nil
}

// quantize is per-tensor symmetric int8: scale = max|w|/127.
func quantize(w []float32, shape []int) (*tensor.Tensor, float32) {
	var mx float64
	for _, v := range w {
		mx = math.Max(mx, math.Abs(float64(v)))
	}
	scale := float32(mx / 127)
	if scale == 0 {
		scale = 1
	}
	q := make([]int8, len(w))
	for i, v := range w {
		q[i] = int8(math.Max(-127, math.Min(127, math.RoundToEven(float64(v/scale)))))
	}
	return tensor.From(shape, q), scale
}

// calibrate finds max |x| of every activation a quantized op reads: graph
// inputs from the test sets, LSTM hidden states from their bound 1, other
// values by running the model with them as extra outputs.
func calibrate(m *graph.Model, sets []string) (map[string]float64, error) {
	g := m.Graph
	want := map[string]bool{}
	r := map[string]float64{}
	prod := g.Producers()
	for _, n := range g.Nodes {
		if _, ok := weightInputs[n.OpType]; !ok {
			continue
		}
		x := n.Inputs[0]
		if g.Initializers[x] != nil {
			continue
		}
		// through Gather/Squeeze/Reshape back to an LSTM's hidden state
		v := x
		for range 4 {
			p := prod[v]
			if p == nil {
				break
			}
			if p.OpType == "LSTM" || p.OpType == "GRU" || p.OpType == "RNN" {
				if v != p.Outputs[min(2, len(p.Outputs)-1)] || p.OpType != "LSTM" {
					r[x] = 1 // hidden states are tanh-bounded
				}
				break
			}
			if p.OpType != "Gather" && p.OpType != "Squeeze" && p.OpType != "Reshape" && p.OpType != "Transpose" {
				break
			}
			v = p.Inputs[0]
		}
		if _, ok := r[x]; !ok {
			want[x] = true
		}
	}
	if len(want) == 0 {
		return r, nil
	}
	// values computed from the graph inputs
	cm := *m
	cg := *g
	for name := range want {
		cg.Outputs = append(cg.Outputs, graph.ValueInfo{Name: name, Kind: "tensor"})
	}
	cm.Graph = &cg
	sess, err := runtime.NewSession(&cm, runtime.Options{})
	if err != nil {
		return nil, err
	}
	for _, s := range sets {
		in := map[string]*tensor.Tensor{}
		for i, v := range g.FeedInputs() {
			t, err := importer.ReadTensorFile(filepath.Join(s, fmt.Sprintf("input_%d.pb", i)))
			if err != nil {
				return nil, err
			}
			in[v.Name] = t
		}
		outs, err := sess.Run(in)
		if err != nil {
			return nil, err
		}
		for name := range want {
			if t, ok := outs[name]; ok {
				f, _ := tensor.AsFloat64(t)
				for _, v := range f {
					r[name] = math.Max(r[name], math.Abs(v))
				}
			} else if t, ok := in[name]; ok {
				f, _ := tensor.AsFloat64(t)
				for _, v := range f {
					r[name] = math.Max(r[name], math.Abs(v))
				}
			}
		}
	}
	return r, nil
}
