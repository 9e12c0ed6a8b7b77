package importer

import (
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/internal/onnxpb"
)

// TestSparse: sparse initializers (linear indices and coordinates) and a
// Constant's sparse_value load as the dense tensors they describe.
func TestSparse(t *testing.T) {
	sparse := func(name string, dims []int64, idx *onnxpb.TensorProto, v ...float32) *onnxpb.SparseTensorProto {
		return &onnxpb.SparseTensorProto{Values: floats(name, []int64{int64(len(v))}, v...), Indices: idx, Dims: dims}
	}
	g := &onnxpb.GraphProto{
		Name: proto.String("sparse"),
		SparseInitializer: []*onnxpb.SparseTensorProto{
			sparse("lin", []int64{2, 3}, int64s("", []int64{2}, 1, 5), 7, 8),
			sparse("coo", []int64{2, 3}, int64s("", []int64{2, 2}, 0, 2, 1, 0), 4, 5),
		},
		Output: []*onnxpb.ValueInfoProto{vi("y", tFloat, 2, 3), vi("c", tFloat, 3)},
		Node: []*onnxpb.NodeProto{
			node("Add", "add", []string{"lin", "coo"}, []string{"y"}),
			node("Constant", "const", nil, []string{"c"}, &onnxpb.AttributeProto{Name: proto.String("sparse_value"), Type: onnxpb.AttributeProto_SPARSE_TENSOR.Enum(),
				SparseTensor: sparse("sv", []int64{3}, int64s("", []int64{1}, 2), 9)}),
		},
	}
	m, err := Decode(marshal(t, modelProto(8, 13, g)), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Graph.Initializers["lin"].Float32s(); !reflect.DeepEqual(got, []float32{0, 7, 0, 0, 0, 8}) {
		t.Errorf("lin = %v", got)
	}
	if got := m.Graph.Initializers["coo"].Float32s(); !reflect.DeepEqual(got, []float32{0, 0, 4, 5, 0, 0}) {
		t.Errorf("coo = %v", got)
	}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "Constant" {
			if v := n.Attrs.Tensor("value"); v == nil || !reflect.DeepEqual(v.Float32s(), []float32{0, 0, 9}) {
				t.Errorf("Constant sparse_value became %v", v)
			}
		}
	}
	// an index outside the tensor is an error naming the initializer
	g.SparseInitializer[0].Indices = int64s("", []int64{2}, 1, 6)
	if _, err := Decode(marshal(t, modelProto(8, 13, g)), ""); err == nil || !strings.Contains(err.Error(), `"lin"`) {
		t.Errorf("out-of-range sparse index: %v", err)
	}
}
