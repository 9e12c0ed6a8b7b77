package train

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/parity"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/train/autodiff"
)

// attentionTrunkModel is a small opset-23 two-task model of the kind recent
// exports give: an embedding, one self-attention block (Attention with two
// heads, residual, RMSNormalization), a pooled regression head and a
// per-position head upsampled twofold along the sequence with a linear
// Resize (a dense-prediction head).
func attentionTrunkModel(rng *rand.Rand) *graph.Model {
	const F, E = 3, 8
	r := func(scale float64, shape ...int) *tensor.Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return tensor.From(shape, v)
	}
	nd := func(op string, in, out []string, attrs graph.Attrs) *graph.Node {
		if attrs == nil {
			attrs = graph.Attrs{}
		}
		return &graph.Node{Name: out[0] + "/" + op, OpType: op, Inputs: in, Outputs: out, Attrs: attrs}
	}
	ai := func(v int64) graph.Attr { return graph.Attr{Type: graph.AttrInt, Int: v} }
	g := &graph.Graph{Name: "attention_trunk"}
	g.Inputs = []graph.ValueInfo{{Name: "x", DType: tensor.Float32, Kind: "tensor", HasShape: true,
		Shape: []graph.Dim{{Value: -1, Param: "batch"}, {Value: 6}, {Value: F}}}}
	g.Outputs = []graph.ValueInfo{{Name: "reg", DType: tensor.Float32, Kind: "tensor"}, {Name: "seq", DType: tensor.Float32, Kind: "tensor"}}
	g.AddInitializer("emb/W", r(0.5, F, E))
	g.AddInitializer("emb/b", r(0.1, E))
	g.AddInitializer("attn/Wq", r(0.3, E, E))
	g.AddInitializer("attn/Wk", r(0.3, E, E))
	g.AddInitializer("attn/Wv", r(0.3, E, E))
	g.AddInitializer("norm/scale", r(0.1, E))
	g.AddInitializer("reg/W", r(0.3, E, 1))
	g.AddInitializer("reg/b", r(0.1, 1))
	g.AddInitializer("seq/W", r(0.3, E, 1))
	g.AddInitializer("seq_axis", tensor.From([]int{1}, []int64{1}))
	g.AddInitializer("up_scales", tensor.From([]int{3}, []float32{1, 1, 2}))
	for i, v := range g.Initializers["norm/scale"].Float32s() {
		g.Initializers["norm/scale"].Float32s()[i] = 1 + v
	}
	g.Nodes = []*graph.Node{
		nd("MatMul", []string{"x", "emb/W"}, []string{"e0"}, nil),
		nd("Add", []string{"e0", "emb/b"}, []string{"emb"}, nil),
		nd("MatMul", []string{"emb", "attn/Wq"}, []string{"q"}, nil),
		nd("MatMul", []string{"emb", "attn/Wk"}, []string{"k"}, nil),
		nd("MatMul", []string{"emb", "attn/Wv"}, []string{"v"}, nil),
		nd("Attention", []string{"q", "k", "v"}, []string{"att"}, graph.Attrs{"q_num_heads": ai(2), "kv_num_heads": ai(2)}),
		nd("Add", []string{"emb", "att"}, []string{"res"}, nil),
		nd("RMSNormalization", []string{"res", "norm/scale"}, []string{"h"}, nil),
		nd("ReduceMean", []string{"h", "seq_axis"}, []string{"pooled"}, graph.Attrs{"keepdims": ai(0)}),
		nd("MatMul", []string{"pooled", "reg/W"}, []string{"r0"}, nil),
		nd("Add", []string{"r0", "reg/b"}, []string{"reg"}, nil),
		nd("MatMul", []string{"h", "seq/W"}, []string{"z"}, nil),
		nd("Transpose", []string{"z"}, []string{"zt"}, graph.Attrs{"perm": {Type: graph.AttrInts, Ints: []int64{0, 2, 1}}}),
		nd("Resize", []string{"zt", "", "up_scales"}, []string{"up"}, graph.Attrs{"mode": {Type: graph.AttrString, String: "linear"}}),
		nd("Squeeze", []string{"up", "seq_axis"}, []string{"seq"}, nil),
	}
	return &graph.Model{Graph: g, IRVersion: 10, Opsets: map[string]int64{"": 23}}
}

// TestFineTuneAttentionResizeRMSNorm: a model whose trunk runs through
// Attention and RMSNormalization and whose dense head runs through Resize
// fine-tunes end to end (the loss drops, every weight moves), its float64
// gradient matches central differences on the attention, norm, embedding
// and head weights, and onnxruntime agrees with the trained model.
func TestFineTuneAttentionResizeRMSNorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	m := attentionTrunkModel(rng)
	params, _ := autodiff.Parameters(m)
	if len(params) != 9 {
		t.Fatalf("parameters %v, want the 9 weights", params)
	}
	// targets: the mean of the first feature, and the second feature of
	// every step repeated twice
	const n, S = 96, 6
	x, reg, seq := make([]float32, n*S*3), make([]float32, n), make([]float32, n*2*S)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for b := 0; b < n; b++ {
		for s := 0; s < S; s++ {
			reg[b] += x[(b*S+s)*3] / S
			seq[b*2*S+2*s] = x[(b*S+s)*3+1]
			seq[b*2*S+2*s+1] = x[(b*S+s)*3+1]
		}
	}
	inputs := map[string]*tensor.Tensor{"x": tensor.From([]int{n, S, 3}, x)}
	data, err := NewDataset(map[string]*tensor.Tensor{"x": inputs["x"], "reg": tensor.From([]int{n, 1}, reg), "seq": tensor.From([]int{n, 2 * S}, seq)})
	if err != nil {
		t.Fatal(err)
	}

	// float64 gradient of the untrained model against central differences
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := exporter.Save(m, path, exporter.Options{}); err != nil {
		t.Fatal(err)
	}
	few := map[string]*tensor.Tensor{"x": tensor.From([]int{4, S, 3}, x[:4*S*3])}
	worst, checked := 0.0, 0
	for _, ps := range [][]string{{"attn/Wq", "attn/Wk", "attn/Wv"}, {"norm/scale", "emb/W", "seq/W"}} {
		w, c := wholeModelFD(t, path, few, ps)
		worst, checked = max(worst, w), checked+c
	}
	t.Logf("float64 FD: %d entries, worst relative error %.2g", checked, worst)

	before := map[string][]float32{}
	for _, p := range params {
		before[p] = append([]float32(nil), m.Graph.Initializers[p].Float32s()...)
	}
	cfg := Config{
		Losses:    map[string]Loss{"reg": MSE, "seq": MSE},
		Optimizer: OptimizerConfig{Kind: Adam, LR: 0.01},
		BatchSize: 16, Epochs: 12, Seed: 3,
	}
	res, err := Fit(context.Background(), m, cfg, data, nil, Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	first, last := res.Epochs[0].TrainLoss, res.Epochs[len(res.Epochs)-1].TrainLoss
	t.Logf("train loss %.4f -> %.4f over %d epochs", first, last, len(res.Epochs))
	if !(last < 0.3*first) { // observed 1.66 -> 0.19
		t.Errorf("loss went from %.4f to %.4f; want it below 0.3x", first, last)
	}
	for _, p := range params {
		if slicesEqual(before[p], m.Graph.Initializers[p].Float32s()) {
			t.Errorf("%s did not change", p)
		}
	}

	checkTrainedWithORT(t, m, dir, few)
}

// checkTrainedWithORT exports the trained model and checks that
// onnxruntime agrees with mtlrun on the inputs (rtol 1e-4, atol 1e-5); it
// skips with a line when onnxruntime is absent.
func checkTrainedWithORT(t *testing.T, m *graph.Model, dir string, inputs map[string]*tensor.Tensor) {
	t.Helper()
	if err := parity.Available(); err != nil {
		if fixtures.Required() {
			t.Fatalf("onnxruntime missing (MTLRUN_REQUIRE_FIXTURES=1): %v", firstLine(err))
		}
		t.Logf("onnxruntime parity not checked: %v", firstLine(err))
		return
	}
	out := filepath.Join(dir, "trained.onnx")
	if err := exporter.Save(m, out, exporter.Options{}); err != nil {
		t.Fatal(err)
	}
	back, err := importer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := parity.Check(out, back, inputs, 1e-4, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass {
		t.Errorf("the trained model differs from onnxruntime:\n%s", rep.String())
	} else {
		t.Logf("onnxruntime agrees with the trained model (rtol 1e-4, atol 1e-5)")
	}
}

// convDecoderModel is a small encoder-decoder two-task model of the kind
// Keras and PyTorch export for dense prediction: Conv, Relu, MaxPool, a
// nearest Resize as tf2onnx writes UpSampling2D (asymmetric coordinates,
// floor), a ConvTranspose decoder with GroupNormalization for a per-pixel
// head, and a pooled regression head.
func convDecoderModel(rng *rand.Rand) *graph.Model {
	r := func(scale float64, shape ...int) *tensor.Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * scale)
		}
		return tensor.From(shape, v)
	}
	ints := func(v ...int64) graph.Attr { return graph.Attr{Type: graph.AttrInts, Ints: v} }
	str := func(s string) graph.Attr { return graph.Attr{Type: graph.AttrString, String: s} }
	nd := func(op string, in, out []string, attrs graph.Attrs) *graph.Node {
		if attrs == nil {
			attrs = graph.Attrs{}
		}
		return &graph.Node{Name: out[0] + "/" + op, OpType: op, Inputs: in, Outputs: out, Attrs: attrs}
	}
	g := &graph.Graph{Name: "conv_decoder"}
	g.Inputs = []graph.ValueInfo{{Name: "x", DType: tensor.Float32, Kind: "tensor", HasShape: true,
		Shape: []graph.Dim{{Value: -1, Param: "batch"}, {Value: 1}, {Value: 6}, {Value: 6}}}}
	g.Outputs = []graph.ValueInfo{{Name: "seg", DType: tensor.Float32, Kind: "tensor"}, {Name: "level", DType: tensor.Float32, Kind: "tensor"}}
	g.AddInitializer("enc/W", r(0.5, 4, 1, 3, 3))
	g.AddInitializer("enc/b", r(0.1, 4))
	g.AddInitializer("dec/W", r(0.3, 4, 2, 3, 3))
	g.AddInitializer("dec/b", r(0.1, 2))
	g.AddInitializer("gn/scale", tensor.From([]int{1}, []float32{1}))
	g.AddInitializer("gn/bias", tensor.From([]int{1}, []float32{0}))
	g.AddInitializer("level/W", r(0.3, 4, 1))
	g.AddInitializer("level/b", r(0.1, 1))
	g.AddInitializer("up/scales", tensor.From([]int{4}, []float32{1, 1, 2, 2}))
	g.Nodes = []*graph.Node{
		nd("Conv", []string{"x", "enc/W", "enc/b"}, []string{"c"}, graph.Attrs{"pads": ints(1, 1, 1, 1)}),
		nd("Relu", []string{"c"}, []string{"cr"}, nil),
		nd("MaxPool", []string{"cr"}, []string{"p"}, graph.Attrs{"kernel_shape": ints(2, 2), "strides": ints(2, 2)}),
		nd("Resize", []string{"p", "", "up/scales"}, []string{"up"}, graph.Attrs{"mode": str("nearest"),
			"coordinate_transformation_mode": str("asymmetric"), "nearest_mode": str("floor")}),
		nd("ConvTranspose", []string{"up", "dec/W", "dec/b"}, []string{"d"}, graph.Attrs{"pads": ints(1, 1, 1, 1)}),
		nd("GroupNormalization", []string{"d", "gn/scale", "gn/bias"}, []string{"seg"}, graph.Attrs{"num_groups": {Type: graph.AttrInt, Int: 1}}),
		nd("GlobalAveragePool", []string{"p"}, []string{"gp"}, nil),
		nd("Flatten", []string{"gp"}, []string{"f"}, nil),
		nd("Gemm", []string{"f", "level/W", "level/b"}, []string{"level"}, nil),
	}
	return &graph.Model{Graph: g, IRVersion: 9, Opsets: map[string]int64{"": 18}}
}

// TestFineTuneConvDecoder: the encoder-decoder trains end to end through
// the nearest Resize, ConvTranspose and GroupNormalization (loss drops,
// every weight moves), its float64 gradient matches central differences,
// and onnxruntime agrees with the trained model.
func TestFineTuneConvDecoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 7))
	m := convDecoderModel(rng)
	params, _ := autodiff.Parameters(m)
	if len(params) != 8 {
		t.Fatalf("parameters %v, want the 8 weights", params)
	}
	// targets: a per-pixel map (the input and its negation, two channels)
	// and the mean of the input
	const n = 64
	x, seg, level := make([]float32, n*36), make([]float32, n*2*36), make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for b := 0; b < n; b++ {
		for i := 0; i < 36; i++ {
			v := x[b*36+i]
			seg[b*72+i], seg[b*72+36+i] = v, -v
			level[b] += v / 36
		}
	}
	inputs := map[string]*tensor.Tensor{"x": tensor.From([]int{n, 1, 6, 6}, x)}
	data, err := NewDataset(map[string]*tensor.Tensor{"x": inputs["x"], "seg": tensor.From([]int{n, 2, 6, 6}, seg), "level": tensor.From([]int{n, 1}, level)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := exporter.Save(m, path, exporter.Options{}); err != nil {
		t.Fatal(err)
	}
	few := map[string]*tensor.Tensor{"x": tensor.From([]int{3, 1, 6, 6}, x[:3*36])}
	worst, checked := 0.0, 0
	for _, ps := range [][]string{{"enc/W", "dec/W", "gn/scale"}, {"enc/b", "dec/b", "level/W"}} {
		w, c := wholeModelFD(t, path, few, ps)
		worst, checked = max(worst, w), checked+c
	}
	t.Logf("float64 FD: %d entries, worst relative error %.2g", checked, worst)

	before := map[string][]float32{}
	for _, p := range params {
		before[p] = append([]float32(nil), m.Graph.Initializers[p].Float32s()...)
	}
	cfg := Config{
		Losses:    map[string]Loss{"seg": MSE, "level": MSE},
		Optimizer: OptimizerConfig{Kind: Adam, LR: 0.02},
		BatchSize: 16, Epochs: 10, Seed: 3,
	}
	res, err := Fit(context.Background(), m, cfg, data, nil, Callbacks{})
	if err != nil {
		t.Fatal(err)
	}
	first, last := res.Epochs[0].TrainLoss, res.Epochs[len(res.Epochs)-1].TrainLoss
	t.Logf("train loss %.4f -> %.4f over %d epochs", first, last, len(res.Epochs))
	if !(last < 0.6*first) { // observed 1.88 -> 0.80
		t.Errorf("loss went from %.4f to %.4f; want it below 0.6x", first, last)
	}
	for _, p := range params {
		if slicesEqual(before[p], m.Graph.Initializers[p].Float32s()) {
			t.Errorf("%s did not change", p)
		}
	}
	checkTrainedWithORT(t, m, dir, few)
}
