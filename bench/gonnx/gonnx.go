package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"

	gonnx "github.com/advancedclimatesystems/gonnx"
	gonnxpb "github.com/advancedclimatesystems/gonnx/onnx"
	"google.golang.org/protobuf/proto"
	gtensor "gorgonia.org/tensor"

	"github.com/mtlrun/mtlrun/tensor"
)

// gonnxOpset is the only default-domain opset gonnx v1.1.0 resolves
// operators for (gonnx.ResolveOperatorGetter).
const gonnxOpset = 13

// gonnxAttempt is one way of handing a model to gonnx, from "as exported" to
// progressively more rewriting.
type gonnxAttempt struct {
	name        string
	relabel     bool // declare the default-domain opset as 13
	fixedShapes bool // replace symbolic input dims with the run's sizes
	widen       bool // widen recurrent inputs of size 1 to 2 (widenRecurrentInputs)
	lstm        bool // untieLSTMStates and renameLSTMOutputs
}

var gonnxAttempts = []gonnxAttempt{
	{name: "as exported"},
	{name: "opset relabelled to 13", relabel: true},
	{name: "opset relabelled to 13 + fixed input shapes", relabel: true, fixedShapes: true},
	{name: "opset relabelled to 13 + LSTM rewrites", relabel: true, lstm: true},
	{name: "opset relabelled to 13 + LSTM rewrites + recurrent input of size 1 widened to 2", relabel: true, lstm: true, widen: true},
}

// gonnxModel is a loaded gonnx model plus the inputs in its tensor type.
type gonnxModel struct {
	model  *gonnx.Model
	inputs gonnx.Tensors
	used   string   // the attempt that worked
	tried  []string // "attempt: reason" for the attempts that failed
}

// loadGonnx tries gonnxAttempts in order until one loads the model and runs
// it once on inputs without error or panic. On failure the error lists every
// attempt's reason.
func loadGonnx(path string, inputs map[string]*tensor.Tensor) (*gonnxModel, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	base, err := gonnx.ModelProtoFromBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("gonnx cannot parse the model: %w", err)
	}
	feeds, err := toGonnxTensors(inputs)
	if err != nil {
		return nil, err
	}
	var tried []string
	for _, a := range gonnxAttempts {
		mp := proto.Clone(base).(*gonnxpb.ModelProto)
		if a.relabel {
			if err := relabelOpset(mp); err != nil {
				tried = append(tried, a.name+": "+err.Error())
				continue
			}
		}
		if a.fixedShapes {
			fixInputShapes(mp, inputs)
		}
		if a.lstm {
			err := untieLSTMStates(mp)
			if err == nil {
				err = renameLSTMOutputs(mp)
			}
			if err != nil {
				tried = append(tried, a.name+": "+err.Error())
				continue
			}
		}
		if a.widen {
			if err := widenRecurrentInputs(mp); err != nil {
				tried = append(tried, a.name+": "+err.Error())
				continue
			}
		}
		m, err := gonnx.NewModel(mp)
		if err == nil {
			_, err = runGonnx(m, feeds)
		}
		if err != nil {
			tried = append(tried, a.name+": "+err.Error())
			continue
		}
		return &gonnxModel{model: m, inputs: feeds, used: a.name, tried: tried}, nil
	}
	return nil, fmt.Errorf("%s", strings.Join(tried, "; "))
}

// relabelOpset declares the default-domain opset as 13 so that gonnx picks
// its opset-13 operators. That is only sound when no node relies on what
// opsets 14-17 changed for the ops gonnx implements; the changes that could
// matter are refused here or are refused by gonnx itself:
//   - Shape-15 start/end: gonnx's Shape ignores attributes, so refuse them;
//   - LSTM/GRU/RNN-14 layout: gonnx rejects unknown attributes itself;
//   - Relu-14, Add/Sub/Mul/Div-14 only widened the type lists.
//
// The max-abs-diff column then shows whether the outputs agree.
func relabelOpset(mp *gonnxpb.ModelProto) error {
	for _, n := range mp.GetGraph().GetNode() {
		if n.GetOpType() == "Shape" && len(n.GetAttribute()) > 0 {
			return fmt.Errorf("node %q: Shape-15 start/end attributes have no opset-13 equivalent", n.GetName())
		}
	}
	found := false
	for _, o := range mp.GetOpsetImport() {
		if d := o.GetDomain(); d == "" || d == "ai.onnx" {
			if o.GetVersion() < gonnxOpset {
				return fmt.Errorf("default-domain opset %d is older than 13; relabelling it up is not safe", o.GetVersion())
			}
			o.Version = gonnxOpset
			found = true
		}
	}
	if !found {
		return fmt.Errorf("model imports no default-domain opset")
	}
	return nil
}

// fixInputShapes writes the concrete sizes of this run's inputs into the
// graph's input declarations, replacing symbolic dims (batch, time).
func fixInputShapes(mp *gonnxpb.ModelProto, inputs map[string]*tensor.Tensor) {
	for _, vi := range mp.GetGraph().GetInput() {
		t, ok := inputs[vi.GetName()]
		if !ok {
			continue
		}
		dims := vi.GetType().GetTensorType().GetShape().GetDim()
		if len(dims) != len(t.Shape) {
			continue
		}
		for i, d := range dims {
			d.Value = &gonnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(t.Shape[i])}
		}
	}
}

// toGonnxTensors copies mtlrun float32 tensors into gorgonia dense tensors
// (copies, so that nothing gonnx does can alter mtlrun's inputs).
func toGonnxTensors(inputs map[string]*tensor.Tensor) (gonnx.Tensors, error) {
	out := gonnx.Tensors{}
	for name, t := range inputs {
		d, ok := t.Data.([]float32)
		if !ok {
			return nil, fmt.Errorf("input %q is %v; the harness only feeds float32 inputs to gonnx", name, t.DType)
		}
		shape := append([]int(nil), t.Shape...)
		out[name] = gtensor.New(gtensor.WithShape(shape...), gtensor.WithBacking(append([]float32(nil), d...)))
	}
	return out, nil
}

// runGonnx runs m once, turning a panic inside gonnx or gorgonia into an
// error.
func runGonnx(m *gonnx.Model, feeds gonnx.Tensors) (out gonnx.Tensors, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return m.Run(feeds)
}

// gonnxFloats returns the elements of a gonnx output in row-major order.
func gonnxFloats(t gtensor.Tensor) ([]float64, []int, error) {
	if t == nil {
		return nil, nil, fmt.Errorf("missing")
	}
	if v, ok := t.(gtensor.View); ok && v.IsMaterializable() {
		t = v.Materialize()
	}
	shape := append([]int(nil), t.Shape()...)
	switch d := t.Data().(type) {
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out, shape, nil
	case []float64:
		return append([]float64(nil), d...), shape, nil
	case float32:
		return []float64{float64(d)}, shape, nil
	case float64:
		return []float64{d}, shape, nil
	default:
		return nil, shape, fmt.Errorf("output dtype %v not compared", t.Dtype())
	}
}

// gonnxOutputs converts gonnx outputs for comparison: each value is either
// the elements as []float64 or a string saying why there are none.
func gonnxOutputs(out gonnx.Tensors) map[string]any {
	c := map[string]any{}
	for name, t := range out {
		v, _, err := gonnxFloats(t)
		if err != nil {
			c[name] = err.Error()
			continue
		}
		c[name] = v
	}
	return c
}

// widenRecurrentInputs works around gonnx's LSTM/GRU/RNN slicing one time
// step with gorgonia's Slice, which drops every axis of size 1: with
// input_size 1 the step X[t] loses its feature axis and the input Gemm fails
// ("MatMul requires both operands to be matrices", "Cannot reshape (64, 64)
// into [64]"). For every such node it feeds Concat(X, X) along the feature
// axis instead of X and appends a zero column to W, so that
// [W 0]·[x x] = W·x: the same function with input_size 2. gonnx then does a
// little more work than the original model needs (one Concat per run and a
// second input column per gate), which only slows gonnx down.
func widenRecurrentInputs(mp *gonnxpb.ModelProto) error {
	g := mp.GetGraph()
	inits := map[string]*gonnxpb.TensorProto{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = t
	}
	var nodes []*gonnxpb.NodeProto
	changed := 0
	for _, n := range g.GetNode() {
		switch n.GetOpType() {
		case "LSTM", "GRU", "RNN":
		default:
			nodes = append(nodes, n)
			continue
		}
		if len(n.GetInput()) < 2 {
			return fmt.Errorf("node %q has no W input", n.GetName())
		}
		w, ok := inits[n.GetInput()[1]]
		if !ok || len(w.GetDims()) != 3 || w.GetDims()[2] != 1 {
			nodes = append(nodes, n)
			continue
		}
		vals, err := floatData(w)
		if err != nil {
			return fmt.Errorf("node %q W: %w", n.GetName(), err)
		}
		wide := make([]float32, 2*len(vals))
		for i, v := range vals {
			wide[2*i] = v
		}
		nw := &gonnxpb.TensorProto{
			Name:      w.GetName() + "__widened",
			DataType:  int32(gonnxpb.TensorProto_FLOAT),
			Dims:      []int64{w.GetDims()[0], w.GetDims()[1], 2},
			FloatData: wide,
		}
		g.Initializer = append(g.Initializer, nw)
		x := n.GetInput()[0]
		xx := x + "__widened"
		nodes = append(nodes, &gonnxpb.NodeProto{
			Name:   n.GetName() + "__widen",
			OpType: "Concat",
			Input:  []string{x, x},
			Output: []string{xx},
			Attribute: []*gonnxpb.AttributeProto{{
				Name: "axis", Type: gonnxpb.AttributeProto_INT, I: 2,
			}},
		})
		n.Input[0], n.Input[1] = xx, nw.Name
		nodes = append(nodes, n)
		changed++
	}
	if changed == 0 {
		return fmt.Errorf("no LSTM/GRU/RNN node with input_size 1")
	}
	g.Node = nodes
	return nil
}

// floatData returns a float32 initializer's values, from float_data or
// little-endian raw_data.
func floatData(t *gonnxpb.TensorProto) ([]float32, error) {
	if t.GetDataType() != int32(gonnxpb.TensorProto_FLOAT) {
		return nil, fmt.Errorf("data type %d is not float32", t.GetDataType())
	}
	if d := t.GetFloatData(); len(d) > 0 {
		return append([]float32(nil), d...), nil
	}
	raw := t.GetRawData()
	if len(raw)%4 != 0 {
		return nil, fmt.Errorf("raw_data of %d bytes", len(raw))
	}
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out, nil
}

// untieLSTMStates works around gonnx's LSTM reshaping its initial_h and
// initial_c inputs in place (dropping the num_directions axis): when both are
// the same tensor, as in PyTorch exports where one ConstantOfShape makes the
// zero h0 and c0, the second reshape fails ("Cannot reshape (64, 64) into
// [64]", or at batch 1 the hidden state collapses to a vector). For every LSTM
// whose initial_h and initial_c name the same value it duplicates the node
// producing that value, so initial_c gets a tensor of its own with the same
// contents.
func untieLSTMStates(mp *gonnxpb.ModelProto) error {
	g := mp.GetGraph()
	producer := map[string]*gonnxpb.NodeProto{}
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			producer[o] = n
		}
	}
	var nodes []*gonnxpb.NodeProto
	changed := 0
	for _, n := range g.GetNode() {
		in := n.GetInput()
		if n.GetOpType() != "LSTM" || len(in) < 7 || in[5] == "" || in[5] != in[6] {
			nodes = append(nodes, n)
			continue
		}
		p, ok := producer[in[6]]
		if !ok || len(p.GetOutput()) != 1 {
			return fmt.Errorf("node %q: initial_c %q is not the only output of a node", n.GetName(), in[6])
		}
		dup := proto.Clone(p).(*gonnxpb.NodeProto)
		dup.Name = p.GetName() + "__initial_c"
		dup.Output = []string{in[6] + "__initial_c"}
		n.Input[6] = dup.Output[0]
		nodes = append(nodes, dup, n)
		changed++
	}
	if changed == 0 {
		return fmt.Errorf("no LSTM whose initial_h and initial_c are one value")
	}
	g.Node = nodes
	return nil
}

// renameLSTMOutputs works around gonnx's LSTM returning its outputs by
// looking up the node's output names in a map keyed "Y", "Y_h", "Y_c": with
// any other names (PyTorch writes "/lstm/LSTM_output_0" and so on) every
// output is nil and the next node panics. It renames the outputs of the
// model's one LSTM to Y, Y_h, Y_c (unused positions stay empty) and rewrites
// their consumers and graph outputs to match.
func renameLSTMOutputs(mp *gonnxpb.ModelProto) error {
	g := mp.GetGraph()
	var lstm *gonnxpb.NodeProto
	for _, n := range g.GetNode() {
		if n.GetOpType() == "LSTM" {
			if lstm != nil {
				return fmt.Errorf("more than one LSTM: their outputs cannot all be named Y, Y_h, Y_c")
			}
			lstm = n
		}
	}
	if lstm == nil {
		return fmt.Errorf("no LSTM")
	}
	fixed := []string{"Y", "Y_h", "Y_c"}
	taken := map[string]bool{}
	for _, v := range g.GetInput() {
		taken[v.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		taken[t.GetName()] = true
	}
	for _, n := range g.GetNode() {
		if n != lstm {
			for _, o := range n.GetOutput() {
				taken[o] = true
			}
		}
	}
	rename := map[string]string{}
	for i, o := range lstm.GetOutput() {
		if o == "" || i >= len(fixed) || o == fixed[i] {
			continue
		}
		if taken[fixed[i]] {
			return fmt.Errorf("value name %q is already used", fixed[i])
		}
		rename[o] = fixed[i]
		lstm.Output[i] = fixed[i]
	}
	for _, n := range g.GetNode() {
		for i, in := range n.GetInput() {
			if r, ok := rename[in]; ok {
				n.Input[i] = r
			}
		}
	}
	for _, v := range g.GetOutput() {
		if r, ok := rename[v.GetName()]; ok {
			v.Name = r
		}
	}
	return nil
}
