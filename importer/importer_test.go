package importer

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/internal/onnxpb"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

func TestInitializers(t *testing.T) {
	withRaw := func(p *onnxpb.TensorProto, raw []byte) *onnxpb.TensorProto { p.RawData = raw; return p }
	cases := []struct {
		name string
		tp   *onnxpb.TensorProto
		want *tensor.Tensor
	}{
		{"float raw", withRaw(tp("w", tFloat, 2, 2), rawF32(1, -2, 3.5, 0)), tensor.From([]int{2, 2}, []float32{1, -2, 3.5, 0})},
		{"float typed", floats("w", []int64{3}, 1, 2, 3), tensor.From([]int{3}, []float32{1, 2, 3})},
		{"float scalar", floats("w", nil, 7), tensor.From([]int{}, []float32{7})},
		{"float empty", floats("w", []int64{0, 4}), tensor.From([]int{0, 4}, []float32{})},
		{"float empty raw", withRaw(tp("w", tFloat, 3, 0), []byte{}), tensor.From([]int{3, 0}, []float32{})},
		{"double raw", withRaw(tp("w", tDouble, 2), rawF64(1e300, -0.25)), tensor.From([]int{2}, []float64{1e300, -0.25})},
		{"double typed", func() *onnxpb.TensorProto { p := tp("w", tDouble, 2); p.DoubleData = []float64{1.5, 2.5}; return p }(), tensor.From([]int{2}, []float64{1.5, 2.5})},
		{"int32 raw", withRaw(tp("w", tInt32, 3), rawI32(-1, 0, 1<<30)), tensor.From([]int{3}, []int32{-1, 0, 1 << 30})},
		{"int32 typed", func() *onnxpb.TensorProto { p := tp("w", tInt32, 2); p.Int32Data = []int32{-7, 7}; return p }(), tensor.From([]int{2}, []int32{-7, 7})},
		{"int64 raw", withRaw(tp("w", tInt64, 2), rawI64(-1<<40, 9223372036854775807)), tensor.From([]int{2}, []int64{-1 << 40, 9223372036854775807})},
		{"int64 typed", int64s("w", []int64{1, 3}, 4, 5, -6), tensor.From([]int{1, 3}, []int64{4, 5, -6})},
		{"bool raw", withRaw(tp("w", tBool, 3), []byte{1, 0, 1}), tensor.From([]int{3}, []bool{true, false, true})},
		{"bool typed", func() *onnxpb.TensorProto { p := tp("w", tBool, 2); p.Int32Data = []int32{0, 1}; return p }(), tensor.From([]int{2}, []bool{false, true})},
		{"int8 typed", func() *onnxpb.TensorProto { p := tp("w", tInt8, 3); p.Int32Data = []int32{-128, 0, 127}; return p }(), tensor.From([]int{3}, []int8{-128, 0, 127})},
		{"uint8 typed", func() *onnxpb.TensorProto { p := tp("w", tUint8, 2); p.Int32Data = []int32{0, 255}; return p }(), tensor.From([]int{2}, []uint8{0, 255})},
		{"uint8 raw", withRaw(tp("w", tUint8, 2), []byte{3, 250}), tensor.From([]int{2}, []uint8{3, 250})},
		{"float16 typed", func() *onnxpb.TensorProto { p := tp("w", tFloat16, 2); p.Int32Data = []int32{0x3c00, 0xc000}; return p }(), tensor.From([]int{2}, []tensor.Float16Bits{0x3c00, 0xc000})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// directly
			got, err := tensorFromProto(c.tp, "")
			if err != nil {
				t.Fatal(err)
			}
			if !sameTensor(got, c.want) {
				t.Fatalf("tensorFromProto = %v %v, want %v %v", got, got.Data, c.want, c.want.Data)
			}
			// serialized on its own
			got, err = DecodeTensor(marshal(t, c.tp), "")
			if err != nil {
				t.Fatal(err)
			}
			if !sameTensor(got, c.want) {
				t.Fatalf("DecodeTensor = %v %v, want %v %v", got, got.Data, c.want, c.want.Data)
			}
			// as the initializer of a model whose output it is
			m := modelProto(8, 13, &onnxpb.GraphProto{
				Initializer: []*onnxpb.TensorProto{c.tp},
				Output:      []*onnxpb.ValueInfoProto{vi("w", c.tp.GetDataType())},
			})
			mod, err := Decode(marshal(t, m), "")
			if err != nil {
				t.Fatal(err)
			}
			if got := mod.Graph.Initializer("w"); !sameTensor(got, c.want) {
				t.Fatalf("initializer = %v, want %v", got, c.want)
			}
		})
	}
}

// sameTensor compares dtype, shape and values (an empty slice equals nil).
func sameTensor(a, b *tensor.Tensor) bool {
	if a == nil || b == nil || a.DType != b.DType || !reflect.DeepEqual(a.Shape, b.Shape) {
		return false
	}
	if a.Len() == 0 && b.Len() == 0 {
		return reflect.TypeOf(a.Data) == reflect.TypeOf(b.Data)
	}
	return reflect.DeepEqual(a.Data, b.Data)
}

func TestDecodeMultiTaskModel(t *testing.T) {
	m, err := Decode(marshal(t, multiTaskModel()), "")
	if err != nil {
		t.Fatal(err)
	}
	if m.IRVersion != 8 || m.Opset() != 13 || m.Opsets["ai.onnx.ml"] != 2 {
		t.Errorf("versions: ir %d opsets %v", m.IRVersion, m.Opsets)
	}
	if m.Producer != "mtlrun-test" || m.ProducerVersion != "1.2.3" || m.Doc != "a multi-task test model" {
		t.Errorf("producer %q %q doc %q", m.Producer, m.ProducerVersion, m.Doc)
	}
	if v, ok := m.MetadataValue("tasks"); !ok || v != "out1,out2" {
		t.Errorf("metadata tasks = %q %v", v, ok)
	}
	if want := []graph.KeyValue{{Key: "author", Value: "tests"}, {Key: "tasks", Value: "out1,out2"}}; !reflect.DeepEqual(m.Metadata, want) {
		t.Errorf("metadata = %v", m.Metadata)
	}
	g := m.Graph
	in, ok := g.Input("x")
	if !ok || in.DType != tensor.Float32 || !in.HasShape || in.ShapeString() != "[batch 2]" || in.Shape[0].Param != "batch" || in.Shape[0].Known() {
		t.Errorf("input x = %+v", in)
	}
	if len(g.Outputs) != 2 || g.Outputs[0].Name != "out1" || g.Outputs[1].Name != "out2" {
		t.Errorf("outputs = %+v", g.Outputs)
	}
	if len(g.ValueInfo) != 1 || g.ValueInfo[0].Name != "h" || g.ValueInfo[0].ShapeString() != "[batch 2]" {
		t.Errorf("value_info = %+v", g.ValueInfo)
	}
	var names []string
	for _, n := range g.Nodes {
		names = append(names, n.Name)
	}
	if want := []string{"const_c", "trunk/matmul", "trunk/bias", "trunk/relu", "head1/add", "head2/sigmoid"}; !reflect.DeepEqual(names, want) {
		t.Errorf("node names = %v", names)
	}
	if c := g.Nodes[0].Attrs.Tensor("value"); c == nil || !reflect.DeepEqual(c.Data, []float32{0.5, -100}) {
		t.Errorf("Constant value = %v", c)
	}

	s, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.From([]int{3, 2}, []float32{1, 2, -1, 200, 0, 0})
	res, err := s.Run(map[string]*tensor.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	// h = relu(x + [0.5, -100])
	wantH := []float32{1.5, 0, 0, 100, 0.5, 0}
	out1 := res["out1"].Float32s()
	for i, h := range wantH {
		if want := h + []float32{10, 20}[i%2]; out1[i] != want {
			t.Errorf("out1[%d] = %v, want %v", i, out1[i], want)
		}
	}
	if got := res["out2"].Shape; !reflect.DeepEqual(got, []int{3, 2}) {
		t.Errorf("out2 shape %v", got)
	}
	// asking only for one task
	res, err = s.Run(map[string]*tensor.Tensor{"x": x}, "out2")
	if err != nil || len(res) != 1 || res["out2"] == nil {
		t.Fatalf("Run(out2) = %v, %v", res, err)
	}
}

func TestVersions(t *testing.T) {
	cases := []struct {
		name    string
		ir, op  int64
		extra   []*onnxpb.OperatorSetIdProto
		wantErr string
	}{
		{name: "ir3 opset7", ir: 3, op: 7},
		{name: "ir10 opset18", ir: 10, op: 18},
		{name: "ir7 opset13", ir: 7, op: 13},
		{name: "ir3 opset18", ir: 3, op: 18},
		{name: "ml domain", ir: 8, op: 13, extra: []*onnxpb.OperatorSetIdProto{opset("ai.onnx.ml", 3)}},
		{name: "ai.onnx spelled out", ir: 8, op: 13, extra: []*onnxpb.OperatorSetIdProto{opset("com.microsoft", 1)}},
		{name: "ir2", ir: 2, op: 7, wantErr: "IR version 2 is not supported"},
		{name: "ir13 opset27", ir: 13, op: 27},
		{name: "ir13 opset28", ir: 13, op: 28},
		{name: "ir14", ir: 14, op: 28, wantErr: "IR version 14 is not supported"},
		{name: "ir0", ir: 0, op: 7, wantErr: "IR version 0"},
		{name: "opset29", ir: 13, op: 29, wantErr: "opset 29 is not supported"},
		{name: "opset0", ir: 8, op: 0, wantErr: "opset 0 is not supported"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mp := addModel(c.ir, c.op)
			mp.OpsetImport = append(mp.OpsetImport, c.extra...)
			m, err := Decode(marshal(t, mp), "")
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Opset() != int(c.op) {
				t.Errorf("opset %d", m.Opset())
			}
			s, err := runtime.NewSession(m, runtime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Run(map[string]*tensor.Tensor{"x": tensor.From([]int{1, 3}, []float32{1, 1, 1})})
			if err != nil {
				t.Fatal(err)
			}
			if got := res["y"].Float32s(); !reflect.DeepEqual(got, []float32{2, 3, 4}) {
				t.Errorf("y = %v", got)
			}
		})
	}
	// the "ai.onnx" spelling of the default domain
	mp := addModel(8, 13)
	mp.OpsetImport = []*onnxpb.OperatorSetIdProto{opset("ai.onnx", 12)}
	m, err := Decode(marshal(t, mp), "")
	if err != nil || m.Opset() != 12 {
		t.Fatalf("ai.onnx domain: %v, opset %v", err, m)
	}
}

func TestNodeOrder(t *testing.T) {
	mp := multiTaskModel()
	nodes := mp.Graph.Node
	// reverse the file's node order
	for i, j := 0, len(nodes)-1; i < j; i, j = i+1, j-1 {
		nodes[i], nodes[j] = nodes[j], nodes[i]
	}
	m, err := Decode(marshal(t, mp), "")
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, n := range m.Graph.Nodes {
		pos[n.Name] = i
	}
	for _, dep := range [][2]string{{"const_c", "trunk/bias"}, {"trunk/matmul", "trunk/bias"}, {"trunk/bias", "trunk/relu"}, {"trunk/relu", "head1/add"}, {"trunk/relu", "head2/sigmoid"}} {
		if pos[dep[0]] >= pos[dep[1]] {
			t.Errorf("%s sorted after %s: %v", dep[0], dep[1], pos)
		}
	}
	s, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(map[string]*tensor.Tensor{"x": tensor.From([]int{1, 2}, []float32{1, 2})}); err != nil {
		t.Fatal(err)
	}
}

func TestCycleRefused(t *testing.T) {
	mp := modelProto(8, 13, &onnxpb.GraphProto{
		Input:  []*onnxpb.ValueInfoProto{vi("x", tFloat, 2)},
		Output: []*onnxpb.ValueInfoProto{vi("y", tFloat, 2)},
		Node: []*onnxpb.NodeProto{
			node("Add", "first", []string{"x", "b"}, []string{"a"}),
			node("Relu", "second", []string{"a"}, []string{"b"}),
			node("Identity", "out", []string{"b"}, []string{"y"}),
			node("Relu", "fine", []string{"x"}, []string{"z"}),
		},
	})
	_, err := Decode(marshal(t, mp), "")
	var ce *graph.CycleError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a CycleError", err)
	}
	for _, want := range []string{"cycle", `"first" (Add)`, `"second" (Relu)`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	for _, outside := range []string{`"fine"`, `"out"`} {
		if strings.Contains(err.Error(), outside) {
			t.Errorf("error %q names node %s, which is not on the cycle", err, outside)
		}
	}

	// a node reading its own output
	mp.Graph.Node = []*onnxpb.NodeProto{node("Add", "selfish", []string{"x", "y"}, []string{"y"})}
	if _, err := Decode(marshal(t, mp), ""); err == nil || !strings.Contains(err.Error(), `"selfish"`) {
		t.Fatalf("self loop: err = %v", err)
	}
}

// TestBadModels checks that malformed models give an error that names what
// is at fault.
func TestBadModels(t *testing.T) {
	mkModel := func(inits []*onnxpb.TensorProto, nodes ...*onnxpb.NodeProto) *onnxpb.ModelProto {
		return modelProto(8, 13, &onnxpb.GraphProto{
			Name:        proto.String("g"),
			Initializer: inits,
			Input:       []*onnxpb.ValueInfoProto{vi("x", tFloat, 2)},
			Output:      []*onnxpb.ValueInfoProto{vi("y", tFloat, 2)},
			Node:        nodes,
		})
	}
	add := node("Add", "adder", []string{"x", "w"}, []string{"y"})
	withRaw := func(p *onnxpb.TensorProto, raw []byte) *onnxpb.TensorProto { p.RawData = raw; return p }
	withI32 := func(p *onnxpb.TensorProto, v ...int32) *onnxpb.TensorProto { p.Int32Data = v; return p }
	cases := []struct {
		name string
		m    *onnxpb.ModelProto
		want []string
	}{
		{"raw too short", mkModel([]*onnxpb.TensorProto{withRaw(tp("w", tFloat, 2, 3), rawF32(1, 2, 3, 4, 5))}, add), []string{`"w"`, "needs 24 bytes", "has 20"}},
		{"raw too long", mkModel([]*onnxpb.TensorProto{withRaw(tp("w", tInt64, 1), rawI64(1, 2))}, add), []string{`"w"`, "needs 8 bytes", "has 16"}},
		{"float_data count", mkModel([]*onnxpb.TensorProto{floats("w", []int64{2, 3}, 1, 2, 3, 4, 5)}, add), []string{`"w"`, "float_data has 5 values", "needs 6"}},
		{"int64_data count", mkModel([]*onnxpb.TensorProto{int64s("w", []int64{4}, 1)}, add), []string{`"w"`, "int64_data has 1 values"}},
		{"int32_data count", mkModel([]*onnxpb.TensorProto{withI32(tp("w", tInt8, 3), 1, 2)}, add), []string{`"w"`, "int32_data has 2 values"}},
		{"wrong typed field", mkModel([]*onnxpb.TensorProto{func() *onnxpb.TensorProto { p := tp("w", tFloat, 2); p.Int64Data = []int64{1, 2}; return p }()}, add), []string{`"w"`, "float_data has 0 values"}},
		{"absurd dims", mkModel([]*onnxpb.TensorProto{withRaw(tp("w", tFloat, 1000000, 1000000), rawF32(1))}, add), []string{`"w"`, "too many elements"}},
		{"absurd dims typed", mkModel([]*onnxpb.TensorProto{floats("w", []int64{1 << 20, 1 << 20, 1 << 20}, 1)}, add), []string{`"w"`, "too many elements"}},
		{"huge single dim", mkModel([]*onnxpb.TensorProto{floats("w", []int64{1 << 40}, 1)}, add), []string{`"w"`, "bad dimension"}},
		{"negative dim", mkModel([]*onnxpb.TensorProto{floats("w", []int64{-2}, 1)}, add), []string{`"w"`, "bad dimension -2"}},
		{"unknown dtype", mkModel([]*onnxpb.TensorProto{tp("w", 99, 1)}, add), []string{`"w"`, "data type 99"}},
		{"missing initializer", mkModel(nil, add), []string{`"adder"`, "Add", `"w"`, "not defined"}},
		{"unnamed node reads undefined", mkModel(nil, node("Relu", "", []string{"ghost"}, []string{"y"})), []string{"→y", "Relu", `"ghost"`}},
		{"output not produced", mkModel(nil, node("Relu", "r", []string{"x"}, []string{"z"})), []string{`graph output "y"`}},
		{"two producers", mkModel(nil, node("Relu", "r1", []string{"x"}, []string{"y"}), node("Relu", "r2", []string{"x"}, []string{"y"})), []string{`"y"`, "r1", "r2"}},
		{"no op type", mkModel(nil, node("", "blank", []string{"x"}, []string{"y"})), []string{`"blank"`, "no op type"}},
		{"bad Constant", mkModel(nil, node("Constant", "k", nil, []string{"y"}, attrT("value", floats("", []int64{3}, 1)))), []string{`"k"`, "Constant", `"value"`, "float_data has 1 values"}},
		{"bad subgraph initializer", mkModel(nil,
			node("If", "branchy", []string{"x"}, []string{"y"},
				attrG("then_branch", &onnxpb.GraphProto{Name: proto.String("then"), Initializer: []*onnxpb.TensorProto{floats("t", []int64{5})}, Output: []*onnxpb.ValueInfoProto{vi("t", tFloat)}}),
				attrG("else_branch", &onnxpb.GraphProto{Name: proto.String("else"), Output: []*onnxpb.ValueInfoProto{vi("x", tFloat)}}))),
			[]string{`"branchy"`, "then_branch", `"t"`}},
		{"subgraph reads undefined", mkModel(nil,
			node("If", "branchy", []string{"x"}, []string{"y"},
				attrG("then_branch", &onnxpb.GraphProto{Name: proto.String("then"), Node: []*onnxpb.NodeProto{node("Relu", "inner", []string{"nowhere"}, []string{"t"})}, Output: []*onnxpb.ValueInfoProto{vi("t", tFloat)}}),
				attrG("else_branch", &onnxpb.GraphProto{Name: proto.String("else"), Output: []*onnxpb.ValueInfoProto{vi("x", tFloat)}}))),
			[]string{`"branchy"`, `"inner"`, `"nowhere"`}},
		{"no graph", &onnxpb.ModelProto{IrVersion: proto.Int64(8)}, []string{"no graph"}},
		{"unnamed initializer", mkModel([]*onnxpb.TensorProto{floats("", []int64{2}, 1, 2)}, add), []string{"initializer without a name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(marshal(t, c.m), "")
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCorruptProtobuf(t *testing.T) {
	good := marshal(t, multiTaskModel())
	// every prefix: an error or a model, never a panic; cutting inside the
	// graph must be an error
	for n := 0; n < len(good); n++ {
		_, _ = Decode(good[:n], "")
	}
	if _, err := Decode(good[:len(good)/2], ""); err == nil {
		t.Errorf("half a model decoded without error")
	}
	cases := map[string][]byte{
		"empty":         nil,
		"text":          []byte("this is not an onnx model at all\n"),
		"bad varint":    {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"bad length":    {0x3a, 0xff, 0xff, 0xff, 0x0f, 0x00},
		"bad wire type": {0x0f},
		"graph is junk": {0x08, 0x08, 0x3a, 0x03, 0xff, 0xff, 0xff},
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(data, "")
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), "not an ONNX model") && !strings.Contains(err.Error(), "no graph") {
				t.Errorf("unclear error %q", err)
			}
		})
	}
	// flipping single bytes must never panic
	for i := range good {
		b := append([]byte{}, good...)
		b[i] ^= 0xa5
		if m, err := Decode(b, ""); err == nil {
			if s, err := runtime.NewSession(m, runtime.Options{}); err == nil {
				_, _ = s.Run(map[string]*tensor.Tensor{"x": tensor.From([]int{1, 2}, []float32{1, 2})})
			}
		}
	}
}

func TestDecodeTensorErrors(t *testing.T) {
	cases := map[string]struct {
		data []byte
		want string
	}{
		"junk":      {[]byte{0xff, 0xff}, "not a TensorProto"},
		"no type":   {marshal(t, &onnxpb.TensorProto{Name: proto.String("t"), Dims: []int64{1}}), "unsupported data type 0"},
		"too big":   {marshal(t, &onnxpb.TensorProto{Name: proto.String("t"), DataType: proto.Int32(tFloat), Dims: []int64{1 << 30, 1 << 30}}), "too many elements"},
		"short raw": {marshal(t, &onnxpb.TensorProto{Name: proto.String("t"), DataType: proto.Int32(tDouble), Dims: []int64{2}, RawData: []byte{1, 2, 3}}), "needs 16 bytes"},
		"external without folder": {marshal(t, &onnxpb.TensorProto{Name: proto.String("t"), DataType: proto.Int32(tFloat), Dims: []int64{1},
			DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(), ExternalData: []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("w.bin")}}}), "not allowed"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeTensor(c.data, "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// TestUnsupportedOps checks that the session lists every unsupported op,
// including those inside subgraphs, with node name, domain and opset.
func TestUnsupportedOps(t *testing.T) {
	then := &onnxpb.GraphProto{Name: proto.String("then"),
		Node:   []*onnxpb.NodeProto{node("Teleport", "inner_teleport", []string{"x"}, []string{"t"})},
		Output: []*onnxpb.ValueInfoProto{vi("t", tFloat)}}
	els := &onnxpb.GraphProto{Name: proto.String("else"),
		Node:   []*onnxpb.NodeProto{node("Identity", "", []string{"x"}, []string{"e"})},
		Output: []*onnxpb.ValueInfoProto{vi("e", tFloat)}}
	custom := node("Frobnicate", "frob", []string{"x"}, []string{"f"})
	custom.Domain = proto.String("com.example")
	mp := modelProto(8, 13, &onnxpb.GraphProto{
		Input:  []*onnxpb.ValueInfoProto{vi("x", tFloat, 2), vi("c", tBool)},
		Output: []*onnxpb.ValueInfoProto{vi("y", tFloat, 2), vi("f", tFloat, 2), vi("i", tFloat, 2)},
		Node: []*onnxpb.NodeProto{
			node("Quantumize", "q1", []string{"x"}, []string{"y"}),
			custom,
			node("If", "cond", []string{"c"}, []string{"i"}, attrG("then_branch", then), attrG("else_branch", els)),
		},
	})
	mp.OpsetImport = append(mp.OpsetImport, opset("com.example", 3))
	m, err := Decode(marshal(t, mp), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = runtime.NewSession(m, runtime.Options{})
	var ue *runtime.UnsupportedError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want UnsupportedError", err)
	}
	if len(ue.Ops) != 3 {
		t.Errorf("%d unsupported ops listed, want 3: %v", len(ue.Ops), ue.Ops)
	}
	for _, want := range []string{
		`node "q1": Quantumize (domain ai.onnx, opset 13)`,
		`node "frob": Frobnicate (domain com.example, opset 3)`,
		`node "inner_teleport": Teleport (domain ai.onnx, opset 13)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestLoopAndIfModels(t *testing.T) {
	m, err := Decode(marshal(t, loopModel()), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(map[string]*tensor.Tensor{"x": tensor.From([]int{2}, []float32{1, 10})})
	if err != nil {
		t.Fatal(err)
	}
	if got := res["sum"].Float32s(); !reflect.DeepEqual(got, []float32{3, 30}) {
		t.Errorf("sum = %v", got)
	}
	if p := res["partials"]; !reflect.DeepEqual(p.Shape, []int{3, 2}) || !reflect.DeepEqual(p.Float32s(), []float32{1, 10, 2, 20, 3, 30}) {
		t.Errorf("partials = %v %v", p, p.Data)
	}

	m, err = Decode(marshal(t, ifModel()), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err = runtime.NewSession(m, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cond bool
		want []float32
	}{{true, []float32{3, 5}}, {false, []float32{2, 6}}} {
		res, err := s.Run(map[string]*tensor.Tensor{"c": tensor.Scalar(c.cond), "x": tensor.From([]int{2}, []float32{1, 3})})
		if err != nil {
			t.Fatal(err)
		}
		if got := res["y"].Float32s(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("cond %v: y = %v, want %v", c.cond, got, c.want)
		}
	}
}
