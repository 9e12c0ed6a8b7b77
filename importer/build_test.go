package importer

import (
	"encoding/binary"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/internal/onnxpb"
)

// Helpers that build ONNX protos in Go for the tests and fuzz seeds.

// ONNX element types used by the tests.
const (
	tFloat   = 1
	tUint8   = 2
	tInt8    = 3
	tInt32   = 6
	tInt64   = 7
	tBool    = 9
	tFloat16 = 10
	tDouble  = 11
)

// tp is a TensorProto with name, type and dims; set the data afterwards.
func tp(name string, dt int32, dims ...int64) *onnxpb.TensorProto {
	return &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(dt), Dims: dims}
}

func floats(name string, dims []int64, v ...float32) *onnxpb.TensorProto {
	t := tp(name, tFloat, dims...)
	t.FloatData = v
	return t
}

func int64s(name string, dims []int64, v ...int64) *onnxpb.TensorProto {
	t := tp(name, tInt64, dims...)
	t.Int64Data = v
	return t
}

func rawF32(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func rawF64(v ...float64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

func rawI32(v ...int32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return b
}

func rawI64(v ...int64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return b
}

// vi declares a tensor value; each dim is an int (fixed), a string
// (symbolic) or nil (unknown). noShape leaves the shape out.
func vi(name string, elem int32, dims ...any) *onnxpb.ValueInfoProto {
	sh := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			sh.Dim = append(sh.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}})
		case string:
			sh.Dim = append(sh.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}})
		default:
			sh.Dim = append(sh.Dim, &onnxpb.TensorShapeProto_Dimension{})
		}
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(elem), Shape: sh,
		}}},
	}
}

// node builds a NodeProto.
func node(op, name string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{OpType: proto.String(op), Input: in, Output: out, Attribute: attrs}
	if name != "" {
		n.Name = proto.String(name)
	}
	return n
}

func attrT(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
}

func attrG(name string, g *onnxpb.GraphProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: g}
}

func opset(domain string, v int64) *onnxpb.OperatorSetIdProto {
	return &onnxpb.OperatorSetIdProto{Domain: proto.String(domain), Version: proto.Int64(v)}
}

// modelProto wraps a graph in a ModelProto of the given IR version and
// default-domain opset.
func modelProto(ir, op int64, g *onnxpb.GraphProto) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{
		IrVersion:    proto.Int64(ir),
		ProducerName: proto.String("mtlrun-test"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{opset("", op)},
		Graph:        g,
	}
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addModel is the smallest useful graph: y = x + b with a float initializer.
func addModel(ir, op int64) *onnxpb.ModelProto {
	return modelProto(ir, op, &onnxpb.GraphProto{
		Name:        proto.String("add"),
		Initializer: []*onnxpb.TensorProto{floats("b", []int64{3}, 1, 2, 3)},
		Input:       []*onnxpb.ValueInfoProto{vi("x", tFloat, "batch", 3)},
		Output:      []*onnxpb.ValueInfoProto{vi("y", tFloat, "batch", 3)},
		Node:        []*onnxpb.NodeProto{node("Add", "add0", []string{"x", "b"}, []string{"y"})},
	})
}

// multiTaskModel is a small two-output model exercising Constant nodes,
// value_info, symbolic dims, node names and metadata:
//
//	h = Relu(x·W + c)   (trunk; c from a Constant node)
//	out1 = h + b1       out2 = Sigmoid(h)
func multiTaskModel() *onnxpb.ModelProto {
	m := modelProto(8, 13, &onnxpb.GraphProto{
		Name: proto.String("mtl"),
		Initializer: []*onnxpb.TensorProto{
			{Name: proto.String("W"), DataType: proto.Int32(tFloat), Dims: []int64{2, 2}, RawData: rawF32(1, 0, 0, 1)},
			floats("b1", []int64{2}, 10, 20),
		},
		Input: []*onnxpb.ValueInfoProto{vi("x", tFloat, "batch", 2)},
		Output: []*onnxpb.ValueInfoProto{
			vi("out1", tFloat, "batch", 2),
			vi("out2", tFloat, "batch", 2),
		},
		ValueInfo: []*onnxpb.ValueInfoProto{vi("h", tFloat, "batch", 2)},
		Node: []*onnxpb.NodeProto{
			node("Constant", "const_c", nil, []string{"c"}, attrT("value", floats("", []int64{2}, 0.5, -100))),
			node("MatMul", "trunk/matmul", []string{"x", "W"}, []string{"xw"}),
			node("Add", "trunk/bias", []string{"xw", "c"}, []string{"pre"}),
			node("Relu", "trunk/relu", []string{"pre"}, []string{"h"}),
			node("Add", "head1/add", []string{"h", "b1"}, []string{"out1"}),
			node("Sigmoid", "head2/sigmoid", []string{"h"}, []string{"out2"}),
		},
	})
	m.OpsetImport = append(m.OpsetImport, opset("ai.onnx.ml", 2))
	m.MetadataProps = []*onnxpb.StringStringEntryProto{
		{Key: proto.String("author"), Value: proto.String("tests")},
		{Key: proto.String("tasks"), Value: proto.String("out1,out2")},
	}
	m.ProducerVersion = proto.String("1.2.3")
	m.DocString = proto.String("a multi-task test model")
	return m
}

// seedModels are the in-Go models given to the fuzzers.
func seedModels() []*onnxpb.ModelProto {
	ms := []*onnxpb.ModelProto{addModel(3, 7), addModel(10, 18), multiTaskModel(), loopModel(), ifModel()}
	return ms
}

// loopModel sums x over a Loop of M iterations with a scan output.
func loopModel() *onnxpb.ModelProto {
	body := &onnxpb.GraphProto{
		Name: proto.String("body"),
		Input: []*onnxpb.ValueInfoProto{
			vi("i", tInt64), vi("cond_in", tBool), vi("acc_in", tFloat, 2),
		},
		Output: []*onnxpb.ValueInfoProto{
			vi("cond_out", tBool), vi("acc_out", tFloat, 2), vi("scan_out", tFloat, 2),
		},
		Node: []*onnxpb.NodeProto{
			node("Identity", "", []string{"cond_in"}, []string{"cond_out"}),
			node("Add", "body/add", []string{"acc_in", "x"}, []string{"acc_out"}),
			node("Identity", "", []string{"acc_out"}, []string{"scan_out"}),
		},
	}
	return modelProto(7, 13, &onnxpb.GraphProto{
		Name: proto.String("loop"),
		Initializer: []*onnxpb.TensorProto{
			int64s("M", nil, 3),
			{Name: proto.String("cond"), DataType: proto.Int32(tBool), Int32Data: []int32{1}},
			floats("zero", []int64{2}, 0, 0),
		},
		Input:  []*onnxpb.ValueInfoProto{vi("x", tFloat, 2)},
		Output: []*onnxpb.ValueInfoProto{vi("sum", tFloat, 2), vi("partials", tFloat, nil, 2)},
		Node: []*onnxpb.NodeProto{
			node("Loop", "loop", []string{"M", "cond", "zero"}, []string{"sum", "partials"}, attrG("body", body)),
		},
	})
}

// ifModel picks x+1 or x*2 by a boolean input.
func ifModel() *onnxpb.ModelProto {
	branch := func(name, op string) *onnxpb.GraphProto {
		return &onnxpb.GraphProto{
			Name:   proto.String(name),
			Output: []*onnxpb.ValueInfoProto{vi(name+"_y", tFloat, "n")},
			Node:   []*onnxpb.NodeProto{node(op, name+"/op", []string{"x", "k"}, []string{name + "_y"})},
		}
	}
	return modelProto(8, 11, &onnxpb.GraphProto{
		Name:        proto.String("if"),
		Initializer: []*onnxpb.TensorProto{floats("k", nil, 2)},
		Input:       []*onnxpb.ValueInfoProto{vi("c", tBool), vi("x", tFloat, "n")},
		Output:      []*onnxpb.ValueInfoProto{vi("y", tFloat, "n")},
		Node: []*onnxpb.NodeProto{
			node("If", "if", []string{"c"}, []string{"y"}, attrG("then_branch", branch("then", "Add")), attrG("else_branch", branch("else", "Mul"))),
		},
	})
}
