package parity

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/exporter"
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

func TestLibraryPath(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "libonnxruntime.so.1")
	if err := os.WriteFile(lib, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, env string
		wantPath  string
		wantErr   string
	}{
		{"env names a file", lib, lib, ""},
		{"env names a missing file", filepath.Join(dir, "nope.so"), "", "ONNXRUNTIME_LIB=" + filepath.Join(dir, "nope.so")},
		{"env names a directory", dir, "", "is a directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(LibraryEnv, c.env)
			p, err := LibraryPath()
			if c.wantErr == "" {
				if err != nil || p != c.wantPath {
					t.Fatalf("LibraryPath() = %q, %v; want %q", p, err, c.wantPath)
				}
				return
			}
			if !errors.Is(err, ErrLibraryMissing) || !strings.Contains(err.Error(), c.wantErr) ||
				!strings.Contains(err.Error(), "bash scripts/install-onnxruntime.sh") {
				t.Fatalf("LibraryPath() error = %v; want ErrLibraryMissing mentioning %q and the install script", err, c.wantErr)
			}
		})
	}
	t.Run("cache folder above the working directory", func(t *testing.T) {
		t.Setenv(LibraryEnv, "")
		root := t.TempDir()
		cached := filepath.Join(root, filepath.FromSlash(CacheLibrary))
		if err := os.MkdirAll(filepath.Dir(cached), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cached, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		sub := filepath.Join(root, "a", "b")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Chdir(sub)
		if p, err := LibraryPath(); err != nil || p != cached {
			t.Fatalf("LibraryPath() = %q, %v; want %q", p, err, cached)
		}
	})
	t.Run("nothing anywhere", func(t *testing.T) {
		t.Setenv(LibraryEnv, "")
		t.Chdir(t.TempDir())
		exe, _ := os.Executable()
		if _, err := os.Stat(filepath.Join(filepath.Dir(exe), filepath.FromSlash(CacheLibrary))); err == nil {
			t.Skip("the test binary sits beside a cache folder")
		}
		_, err := LibraryPath()
		if !errors.Is(err, ErrLibraryMissing) || !strings.Contains(err.Error(), "scripts/install-onnxruntime.sh") {
			t.Fatalf("error = %v; want ErrLibraryMissing with install instructions", err)
		}
	})
}

func f32(shape []int, v ...float32) *tensor.Tensor { return tensor.From(shape, v) }

func TestCompare(t *testing.T) {
	crit := Criteria{RTol: 1e-4, ATol: 1e-5}
	cases := []struct {
		name       string
		got, want  *tensor.Tensor
		kind       Kind
		pass       bool
		outOfTol   int
		reason     string
		maxAbs     float64
		decisions  int
		agreements int
	}{
		{name: "identical", got: f32([]int{2}, 1, 2), want: f32([]int{2}, 1, 2), pass: true},
		{name: "within atol", got: f32([]int{2}, 0, 1), want: f32([]int{2}, 5e-6, 1), pass: true, maxAbs: 5e-6},
		{name: "within rtol", got: f32([]int{1}, 1000.0625), want: f32([]int{1}, 1000), pass: true, maxAbs: 0.0625},
		{name: "outside", got: f32([]int{3}, 1, 2.001, 3), want: f32([]int{3}, 1, 2, 3), outOfTol: 1, maxAbs: 0.001},
		{name: "shape", got: f32([]int{2, 1}, 1, 2), want: f32([]int{2}, 1, 2), reason: "shape"},
		{name: "dtype", got: tensor.From([]int{1}, []float64{1}), want: f32([]int{1}, 1), reason: "dtype"},
		{name: "missing", got: nil, want: f32([]int{1}, 1), reason: "mtlrun produced no value"},
		{name: "NaN both", got: f32([]int{1}, float32(math.NaN())), want: f32([]int{1}, float32(math.NaN())), pass: true},
		{name: "NaN one", got: f32([]int{1}, float32(math.NaN())), want: f32([]int{1}, 0), outOfTol: 1, reason: "NaN"},
		{name: "Inf equal", got: f32([]int{1}, float32(math.Inf(1))), want: f32([]int{1}, float32(math.Inf(1))), pass: true},
		{name: "int exact", got: tensor.From([]int{2}, []int64{1, 3}), want: tensor.From([]int{2}, []int64{1, 2}), outOfTol: 1, maxAbs: 1},
		{name: "bool", got: tensor.From([]int{2}, []bool{true, false}), want: tensor.From([]int{2}, []bool{true, false}), pass: true},
		{name: "argmax agrees", got: f32([]int{2, 3}, 0.1, 0.7, 0.2, 0.5, 0.4, 0.1), want: f32([]int{2, 3}, 0.1, 0.7, 0.2, 0.5, 0.4, 0.1),
			kind: KindSoftmax, pass: true, decisions: 2, agreements: 2},
		{name: "argmax differs", got: f32([]int{2, 3}, 0.1, 0.7, 0.2, 0.4, 0.5, 0.1), want: f32([]int{2, 3}, 0.1, 0.7, 0.2, 0.5, 0.4, 0.1),
			kind: KindLogSoftmax, outOfTol: 2, maxAbs: 0.1, decisions: 2, agreements: 1},
		{name: "threshold", got: f32([]int{3, 1}, 0.49, 0.9, 0.1), want: f32([]int{3, 1}, 0.51, 0.9, 0.1),
			kind: KindSigmoid, outOfTol: 1, maxAbs: 0.02, decisions: 3, agreements: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr := crit
			cr.Kinds = map[string]Kind{"y": c.kind}
			got := map[string]*tensor.Tensor{}
			if c.got != nil {
				got["y"] = c.got
			}
			r := Compare(got, map[string]*tensor.Tensor{"y": c.want}, cr)
			if len(r.Outputs) != 1 {
				t.Fatalf("%d outputs", len(r.Outputs))
			}
			o := r.Outputs[0]
			if o.Pass != c.pass || r.Pass != c.pass {
				t.Errorf("pass = %v (report %v), want %v: %+v", o.Pass, r.Pass, c.pass, o)
			}
			if o.OutOfTolerance != c.outOfTol {
				t.Errorf("out of tolerance = %d, want %d", o.OutOfTolerance, c.outOfTol)
			}
			if !strings.Contains(o.Reason, c.reason) || (c.reason == "") != (o.Reason == "") {
				t.Errorf("reason = %q, want %q", o.Reason, c.reason)
			}
			if math.Abs(o.MaxAbsErr-c.maxAbs) > 1e-6*math.Max(1, c.maxAbs) {
				t.Errorf("max abs err = %g, want %g", o.MaxAbsErr, c.maxAbs)
			}
			if o.Decisions != c.decisions || o.Agree != c.agreements {
				t.Errorf("decisions %d/%d, want %d/%d", o.Agree, o.Decisions, c.agreements, c.decisions)
			}
			if _, err := r.JSON(); err != nil {
				t.Errorf("JSON: %v", err)
			}
			text := r.String()
			if !strings.Contains(text, "max abs err") || !strings.Contains(text, "y ") {
				t.Errorf("text table:\n%s", text)
			}
		})
	}
}

func TestReportRendering(t *testing.T) {
	got := map[string]*tensor.Tensor{"probs": f32([]int{1, 2}, 0.3, 0.7), "score": f32([]int{1}, 2)}
	want := map[string]*tensor.Tensor{"probs": f32([]int{1, 2}, 0.3, 0.7), "score": f32([]int{1}, 1)}
	r := Compare(got, want, Criteria{RTol: 1e-4, ATol: 1e-5, Kinds: map[string]Kind{"probs": KindSoftmax}, Order: []string{"score", "probs"}})
	text := r.String()
	for _, s := range []string{"score", "FAIL", "argmax 1/1", "worst element 0: mtlrun 2, onnxruntime 1", "1 of 2"} {
		if !strings.Contains(text, s) {
			t.Errorf("text lacks %q:\n%s", s, text)
		}
	}
	if strings.Index(text, "score") > strings.Index(text, "probs") {
		t.Errorf("outputs not in the given order:\n%s", text)
	}
	data, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil || back.Pass || len(back.Outputs) != 2 || back.Outputs[0].MaxAbsErr != 1 {
		t.Fatalf("JSON round trip: %v %+v\n%s", err, back, data)
	}
}

// testModel: token ids through Cast into an embedding Gather, lengths, a
// float sequence [N, T, 3] and features [batch, ?]; outputs from Softmax
// (through Identity), Sigmoid (through Reshape), LogSoftmax and Add.
func testModel() *graph.Model {
	g := &graph.Graph{Name: "t"}
	dims := func(ds ...any) []graph.Dim {
		var out []graph.Dim
		for _, d := range ds {
			switch d := d.(type) {
			case int:
				out = append(out, graph.Dim{Value: int64(d)})
			case string:
				out = append(out, graph.Dim{Value: -1, Param: d})
			}
		}
		return out
	}
	in := func(name string, dt tensor.DType, d []graph.Dim) {
		g.Inputs = append(g.Inputs, graph.ValueInfo{Name: name, DType: dt, Shape: d, HasShape: true, Kind: "tensor"})
	}
	in("tokens", tensor.Int64, dims("batch", "time"))
	in("lengths", tensor.Int64, dims("batch"))
	in("x", tensor.Float32, dims("N", "T", 3))
	in("features", tensor.Float32, dims("batch", ""))
	emb := make([]float32, 50*4)
	g.AddInitializer("emb", tensor.From([]int{50, 4}, emb))
	g.AddInitializer("shape", tensor.From([]int{2}, []int64{-1, 1}))
	node := func(op string, ins, outs []string, attrs graph.Attrs) {
		g.Nodes = append(g.Nodes, &graph.Node{OpType: op, Inputs: ins, Outputs: outs, Attrs: attrs})
	}
	node("Cast", []string{"tokens"}, []string{"tok32"}, graph.Attrs{"to": {Type: graph.AttrInt, Int: int64(tensor.Int32)}})
	node("Gather", []string{"emb", "tok32"}, []string{"embedded"}, nil)
	node("Softmax", []string{"features"}, []string{"sm"}, nil)
	node("Identity", []string{"sm"}, []string{"probs"}, nil)
	node("Sigmoid", []string{"features"}, []string{"sg"}, nil)
	node("Reshape", []string{"sg", "shape"}, []string{"flag"}, nil)
	node("LogSoftmax", []string{"features"}, []string{"logp"}, nil)
	node("Add", []string{"features", "features"}, []string{"twice"}, nil)
	for _, o := range []string{"probs", "flag", "logp", "twice", "embedded"} {
		g.Outputs = append(g.Outputs, graph.ValueInfo{Name: o, DType: tensor.Float32, Kind: "tensor"})
	}
	return &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": 17}}
}

func TestRandomInputs(t *testing.T) {
	m := testModel()
	x, err := RandomInputs(m, 3, 5, 7)
	if err != nil {
		t.Fatal(err)
	}
	wantShapes := map[string][]int{"tokens": {3, 5}, "lengths": {3}, "x": {3, 5, 3}, "features": {3, OtherDim}}
	for name, s := range wantShapes {
		if !tensor.SameShape(x[name].Shape, s) {
			t.Errorf("%s shape %v, want %v", name, x[name].Shape, s)
		}
	}
	maxTok := int64(0)
	for _, v := range x["tokens"].Int64s() {
		if v < 0 || v >= 50 {
			t.Fatalf("token id %d outside the 50-row table", v)
		}
		maxTok = max(maxTok, v)
	}
	if maxTok < 10 {
		t.Errorf("token ids all below 10 (max %d): not drawn over the table", maxTok)
	}
	for _, v := range x["lengths"].Int64s() {
		if v != 5 {
			t.Errorf("length %d, want the full time 5", v)
		}
	}
	y, _ := RandomInputs(m, 3, 5, 7)
	if x["x"].Float32s()[4] != y["x"].Float32s()[4] {
		t.Error("the same seed gave different inputs")
	}
	if !HasTimeAxis(m) {
		t.Error("HasTimeAxis = false")
	}
	if _, err := RandomInputs(m, 0, 5, 1); err == nil {
		t.Error("batch 0 accepted")
	}

	// a recurrence's sequence_lens gets the sequence axis of its X
	g := &graph.Graph{
		Inputs: []graph.ValueInfo{
			{Name: "X", DType: tensor.Float32, Shape: []graph.Dim{{Value: 6}, {Value: 2}, {Value: 3}}, HasShape: true},
			{Name: "seq_lens", DType: tensor.Int32, Shape: []graph.Dim{{Value: 2}}, HasShape: true},
		},
		Nodes: []*graph.Node{{OpType: "GRU", Inputs: []string{"X", "W", "R", "B", "seq_lens"}, Outputs: []string{"Y"}}},
	}
	x, err = RandomInputs(&graph.Model{Graph: g}, 1, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if l := tensor.Data[int32](x["seq_lens"]); l[0] != 6 || l[1] != 6 {
		t.Errorf("seq_lens = %v, want [6 6]", l)
	}
	if HasTimeAxis(&graph.Model{Graph: g}) {
		t.Error("a fixed-shape model has no time axis")
	}

	// an integer divisor avoids 0 (onnxruntime dies of SIGFPE on it); indices
	// into another input stay inside the indexed axis, also through a Cast
	g = &graph.Graph{
		Inputs: []graph.ValueInfo{
			{Name: "a", DType: tensor.Int64, Shape: []graph.Dim{{Value: 400}}, HasShape: true},
			{Name: "b", DType: tensor.Int64, Shape: []graph.Dim{{Value: 400}}, HasShape: true},
			{Name: "data", DType: tensor.Float32, Shape: []graph.Dim{{Value: 2}, {Value: 3}}, HasShape: true},
			{Name: "idx", DType: tensor.Int32, Shape: []graph.Dim{{Value: 400}}, HasShape: true},
		},
		Nodes: []*graph.Node{
			{OpType: "Div", Inputs: []string{"a", "b"}, Outputs: []string{"q"}},
			{OpType: "Cast", Inputs: []string{"idx"}, Outputs: []string{"idx64"}, Attrs: graph.Attrs{"to": {Type: graph.AttrInt, Int: int64(tensor.Int64)}}},
			{OpType: "Gather", Inputs: []string{"data", "idx64"}, Outputs: []string{"g"}, Attrs: graph.Attrs{"axis": {Type: graph.AttrInt, Int: 1}}},
		},
	}
	x, err = RandomInputs(&graph.Model{Graph: g}, 1, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range x["b"].Int64s() {
		if v == 0 {
			t.Fatal("a random divisor is 0")
		}
	}
	zeros := 0
	for _, v := range x["a"].Int64s() {
		if v == 0 {
			zeros++
		}
	}
	if zeros == 0 {
		t.Error("the dividend never drew 0: the divisor rule leaked to other inputs")
	}
	for _, v := range tensor.Data[int32](x["idx"]) {
		if v < 0 || v >= 3 {
			t.Fatalf("index %d outside axis 1 of data [2 3]", v)
		}
	}
}

func TestClassifierKind(t *testing.T) {
	m := testModel()
	for out, want := range map[string]Kind{"probs": KindSoftmax, "flag": KindSigmoid, "logp": KindLogSoftmax, "twice": KindNone, "embedded": KindNone, "features": KindNone} {
		if got := ClassifierKind(m, out); got != want {
			t.Errorf("ClassifierKind(%s) = %v, want %v", out, got, want)
		}
	}
}

// TestORTValues passes every dtype through onnxruntime (Identity) at two
// batch sizes, and takes a scalar and an empty tensor back.
func TestORTValues(t *testing.T) {
	requireORT(t)
	g := &graph.Graph{Name: "identity"}
	batches := map[int]map[string]*tensor.Tensor{}
	add := func(name string, dt tensor.DType, mk func(n int) *tensor.Tensor) {
		g.Inputs = append(g.Inputs, graph.ValueInfo{Name: name, DType: dt, Shape: []graph.Dim{{Value: -1, Param: "batch"}, {Value: 2}}, HasShape: true, Kind: "tensor"})
		g.Outputs = append(g.Outputs, graph.ValueInfo{Name: name + "_out", DType: dt, Shape: []graph.Dim{{Value: -1, Param: "batch"}, {Value: 2}}, HasShape: true, Kind: "tensor"})
		g.Nodes = append(g.Nodes, &graph.Node{OpType: "Identity", Inputs: []string{name}, Outputs: []string{name + "_out"}})
		for _, b := range []int{1, 3} {
			if batches[b] == nil {
				batches[b] = map[string]*tensor.Tensor{}
			}
			batches[b][name] = mk(2 * b)
		}
	}
	add("f32", tensor.Float32, func(n int) *tensor.Tensor { return tensor.From([]int{n / 2, 2}, seq[float32](n, 0.5)) })
	add("f64", tensor.Float64, func(n int) *tensor.Tensor { return tensor.From([]int{n / 2, 2}, seq[float64](n, 0.25)) })
	add("i64", tensor.Int64, func(n int) *tensor.Tensor { return tensor.From([]int{n / 2, 2}, seq[int64](n, 3)) })
	add("i32", tensor.Int32, func(n int) *tensor.Tensor { return tensor.From([]int{n / 2, 2}, seq[int32](n, -3)) })
	add("i8", tensor.Int8, func(n int) *tensor.Tensor { return tensor.From([]int{n / 2, 2}, seq[int8](n, -1)) })
	add("u8", tensor.Uint8, func(n int) *tensor.Tensor { return tensor.From([]int{n / 2, 2}, seq[uint8](n, 7)) })
	add("u16", tensor.Uint16, func(n int) *tensor.Tensor { return tensor.From([]int{n / 2, 2}, seq[uint16](n, 9)) })
	add("b", tensor.Bool, func(n int) *tensor.Tensor {
		v := make([]bool, n)
		for i := range v {
			v[i] = i%3 == 0
		}
		return tensor.From([]int{n / 2, 2}, v)
	})
	add("f16", tensor.Float16, func(n int) *tensor.Tensor {
		v := make([]tensor.Float16Bits, n)
		for i := range v {
			v[i] = tensor.Float32ToFloat16(float32(i) - 1.5)
		}
		return tensor.From([]int{n / 2, 2}, v)
	})
	// a scalar output: the sum of every f32 element
	g.Nodes = append(g.Nodes, &graph.Node{OpType: "ReduceSum", Inputs: []string{"f32"}, Outputs: []string{"total"}, Attrs: graph.Attrs{"keepdims": {Type: graph.AttrInt, Int: 0}}})
	g.Outputs = append(g.Outputs, graph.ValueInfo{Name: "total", DType: tensor.Float32, Shape: []graph.Dim{}, HasShape: true, Kind: "tensor"})
	m := &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": 17}}
	path := filepath.Join(t.TempDir(), "identity.onnx")
	if err := exporter.Save(m, path, exporter.Options{}); err != nil {
		t.Fatal(err)
	}
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	c, err := NewChecker(path, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, b := range []int{1, 3, 1} {
		inputs := batches[b]
		shapes := map[string][]int{"f16_out": inputs["f16"].Shape}
		out, err := o.RunWithShapes(inputs, nil, shapes)
		if err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		for name, in := range inputs {
			got := out[name+"_out"]
			if got == nil || got.DType != in.DType || !tensor.SameShape(got.Shape, in.Shape) {
				t.Fatalf("batch %d %s: got %v, want %v", b, name, got, in)
			}
			r := Compare(map[string]*tensor.Tensor{"v": got}, map[string]*tensor.Tensor{"v": in}, Criteria{})
			if !r.Pass {
				t.Errorf("batch %d %s: values changed:\n%s", b, name, r)
			}
		}
		total := out["total"]
		var want float32
		for _, v := range inputs["f32"].Float32s() {
			want += v
		}
		if total == nil || len(total.Shape) != 0 || total.Float32s()[0] != want {
			t.Errorf("batch %d: total = %v, want scalar %v", b, total, want)
		}
		// the same model through the Checker: mtlrun agrees
		rep, err := c.Check(inputs, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Pass {
			t.Errorf("batch %d: mtlrun and onnxruntime differ on Identity:\n%s", b, rep)
		}
	}
	// without the shape, a float16 output comes back through its float32
	// copy in the rewritten graph, exactly
	if out, err := o.Run(batches[1], []string{"f16_out"}); err != nil {
		t.Errorf("float16 output without a shape: %v", err)
	} else if r := Compare(map[string]*tensor.Tensor{"v": out["f16_out"]}, map[string]*tensor.Tensor{"v": batches[1]["f16"]}, Criteria{}); out["f16_out"].DType != tensor.Float16 || !r.Pass {
		t.Errorf("float16 output without a shape: got %v\n%s", out["f16_out"], r)
	}
	// only some outputs
	out, err := o.Run(batches[1], []string{"i64_out"})
	if err != nil || len(out) != 1 || out["i64_out"] == nil {
		t.Fatalf("one output: %v, %v", out, err)
	}
	// a missing input is an error, not a crash
	delete(batches[1], "f32")
	if _, err := o.Run(batches[1], nil); err == nil {
		t.Error("missing input accepted")
	}
}

func seq[T float32 | float64 | int64 | int32 | int8 | uint8 | uint16](n int, start T) []T {
	v := make([]T, n)
	for i := range v {
		v[i] = start + T(i)
	}
	return v
}

// TestNoInputs: a model without inputs (its output computed from an
// initializer) runs in onnxruntime through the dummy input parity adds, and
// the checker agrees with mtlrun.
func TestNoInputs(t *testing.T) {
	requireORT(t)
	g := &graph.Graph{Initializers: map[string]*tensor.Tensor{"w": tensor.From([]int{3}, []float32{1, -2, 3})}}
	g.Nodes = append(g.Nodes, &graph.Node{OpType: "Neg", Inputs: []string{"w"}, Outputs: []string{"y"}})
	g.Outputs = append(g.Outputs, graph.ValueInfo{Name: "y", DType: tensor.Float32, Shape: []graph.Dim{{Value: 3}}, HasShape: true, Kind: "tensor"})
	m := &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": 17}}
	path := filepath.Join(t.TempDir(), "noinputs.onnx")
	if err := exporter.Save(m, path, exporter.Options{}); err != nil {
		t.Fatal(err)
	}
	c, err := NewChecker(path, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if names := c.ort.InputNames(); len(names) != 0 {
		t.Errorf("onnxruntime inputs %v, want none", names)
	}
	rep, err := c.Check(map[string]*tensor.Tensor{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass {
		t.Errorf("no-input model differs:\n%s", rep)
	}
}

// TestWorkerCrash: onnxruntime dies of SIGFPE on an integer division by
// zero; in the worker child that is an error naming the crash, and the next
// check starts a new child and passes.
func TestWorkerCrash(t *testing.T) {
	requireORT(t)
	g := &graph.Graph{
		Inputs: []graph.ValueInfo{
			{Name: "a", DType: tensor.Int32, Shape: []graph.Dim{{Value: 2}}, HasShape: true, Kind: "tensor"},
			{Name: "b", DType: tensor.Int32, Shape: []graph.Dim{{Value: 2}}, HasShape: true, Kind: "tensor"},
		},
		Nodes:   []*graph.Node{{OpType: "Div", Inputs: []string{"a", "b"}, Outputs: []string{"q"}}},
		Outputs: []graph.ValueInfo{{Name: "q", DType: tensor.Int32, Shape: []graph.Dim{{Value: 2}}, HasShape: true, Kind: "tensor"}},
	}
	path := filepath.Join(t.TempDir(), "div.onnx")
	if err := exporter.Save(&graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": 17}}, path, exporter.Options{}); err != nil {
		t.Fatal(err)
	}
	o, err := Open(path, Options{Isolate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	a := tensor.From([]int{2}, []int32{7, 9})
	_, err = o.Run(map[string]*tensor.Tensor{"a": a, "b": tensor.From([]int{2}, []int32{1, 0})}, nil)
	if !errors.Is(err, ErrWorkerDied) {
		t.Fatalf("division by zero in onnxruntime: err = %v, want ErrWorkerDied", err)
	}
	t.Logf("reported as: %v", err)
	out, err := o.Run(map[string]*tensor.Tensor{"a": a, "b": tensor.From([]int{2}, []int32{2, 3})}, nil)
	if err != nil {
		t.Fatalf("after the crash: %v", err)
	}
	if q := tensor.Data[int32](out["q"]); q[0] != 3 || q[1] != 3 {
		t.Errorf("q = %v, want [3 3]", q)
	}
}
