package autodiff

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/tensor"
)

// gradCase is one node to check: its float inputs become float64
// parameters, the loss is Σ wᵢ·yᵢ over every float output with fixed random
// weights, and the analytic gradient is compared with central differences.
type gradCase struct {
	name    string
	op      string
	opset   int
	attrs   graph.Attrs
	inputs  []*tensor.Tensor // nil for omitted optional inputs
	outputs int
	// constant marks inputs that are not differentiated (indices, shapes, ...)
	constant map[int]bool
}

func randT(rng *rand.Rand, positive bool, shape ...int) *tensor.Tensor {
	v := make([]float64, prod(shape))
	for i := range v {
		if positive {
			v[i] = 0.5 + rng.Float64()
		} else {
			v[i] = rng.NormFloat64()
		}
	}
	return tensor.From(shape, v)
}

func i64(shape []int, v ...int64) *tensor.Tensor { return tensor.From(shape, v) }

func attrInt(v int64) graph.Attr     { return graph.Attr{Type: graph.AttrInt, Int: v} }
func attrInts(v ...int64) graph.Attr { return graph.Attr{Type: graph.AttrInts, Ints: v} }
func attrFloat(v float32) graph.Attr { return graph.Attr{Type: graph.AttrFloat, Float: v} }

// build makes a one-node model whose float inputs are initializers.
func (gc gradCase) build() (*graph.Model, []string, []string) {
	g := &graph.Graph{Name: gc.name}
	n := &graph.Node{Name: gc.name, OpType: gc.op, Attrs: gc.attrs}
	if n.Attrs == nil {
		n.Attrs = graph.Attrs{}
	}
	var params []string
	for i, t := range gc.inputs {
		if t == nil {
			n.Inputs = append(n.Inputs, "")
			continue
		}
		name := fmt.Sprintf("in%d", i)
		n.Inputs = append(n.Inputs, name)
		g.AddInitializer(name, t)
		if t.DType.IsFloat() && !gc.constant[i] {
			params = append(params, name)
		}
	}
	outs := gc.outputs
	if outs == 0 {
		outs = 1
	}
	var outNames []string
	for i := 0; i < outs; i++ {
		o := fmt.Sprintf("out%d", i)
		n.Outputs = append(n.Outputs, o)
		outNames = append(outNames, o)
		g.Outputs = append(g.Outputs, graph.ValueInfo{Name: o, DType: tensor.Float64, Kind: "tensor"})
	}
	g.Nodes = []*graph.Node{n}
	opset := gc.opset
	if opset == 0 {
		opset = 17
	}
	return &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": int64(opset)}}, outNames, params
}

func checkGradients(t *testing.T, gc gradCase) {
	t.Helper()
	m, outs, params := gc.build()
	prog, err := NewProgram(m, outs, params)
	if err != nil {
		t.Fatal(err)
	}
	tape, err := prog.Forward(nil)
	if err != nil {
		t.Fatal(err)
	}
	// a custom forward (LSTM, GRU) must agree with the inference kernel
	k, err := ops.New(&ops.Config{Name: gc.name, OpType: gc.op, Opset: m.Opset(), Attrs: m.Graph.Nodes[0].Attrs,
		NumInputs: len(gc.inputs), NumOutputs: len(outs)})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := k.Run(gc.inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if i >= len(ref) || ref[i] == nil || !ref[i].DType.IsFloat() {
			continue
		}
		a, b := tape.Value(o).Float64s(), ref[i].Float64s()
		for j := range b {
			if math.Abs(a[j]-b[j]) > 1e-9+1e-7*math.Abs(b[j]) {
				t.Fatalf("%s: output %d element %d: tape %g, kernel %g", gc.name, i, j, a[j], b[j])
			}
		}
	}
	fdCheck(t, gc.name, m, prog, tape, outs, params)
}

// fdCheck compares the program's gradient of Σ wᵢ·yᵢ (fixed random
// weights over every float64 output) with float64 central differences on
// every parameter.
func fdCheck(t *testing.T, name string, m *graph.Model, prog *Program, tape *Tape, outs, params []string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	weights := map[string]*tensor.Tensor{}
	for _, o := range outs {
		y := tape.Value(o)
		if y.DType != tensor.Float64 {
			continue
		}
		weights[o] = randT(rng, false, y.Shape...)
	}
	grads, err := tape.Backward(weights)
	if err != nil {
		t.Fatal(err)
	}
	loss := func() float64 {
		tp, err := prog.Forward(nil)
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
	for _, p := range params {
		x := m.Graph.Initializers[p].Float64s()
		orig := append([]float64(nil), x...)
		want := make([]float64, len(x))
		fd.Gradient(want, func(v []float64) float64 {
			copy(x, v)
			return loss()
		}, orig, &fd.Settings{Formula: fd.Central, Step: 1e-6})
		copy(x, orig)
		got := grads[p].Float64s()
		nonzero := false
		for _, v := range want {
			nonzero = nonzero || v != 0
		}
		if !nonzero && len(want) > 0 {
			t.Logf("%s: gradient of %s is identically zero", name, p)
		}
		for i := range want {
			if d := math.Abs(got[i] - want[i]); d > 1e-5+1e-4*math.Abs(want[i]) {
				t.Errorf("%s: d loss/d %s[%d] = %.8g, finite differences say %.8g", name, p, i, got[i], want[i])
				break
			}
		}
	}
}
