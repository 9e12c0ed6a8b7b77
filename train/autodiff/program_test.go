package autodiff

import (
	"reflect"
	"sort"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

func TestProgramParamsAndSupported(t *testing.T) {
	g := &graph.Graph{
		Inputs:  []graph.ValueInfo{{Name: "x", DType: tensor.Float32, Kind: "tensor"}},
		Nodes:   []*graph.Node{{Name: "mm", OpType: "MatMul", Inputs: []string{"x", "w"}, Outputs: []string{"y"}, Attrs: graph.Attrs{}}},
		Outputs: []graph.ValueInfo{{Name: "y", DType: tensor.Float32, Kind: "tensor"}},
	}
	g.AddInitializer("w", tensor.From([]int{2, 1}, []float32{1, 2}))
	m := &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": 17}}
	p, err := NewProgram(m, []string{"y"}, []string{"w"})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Params(); !reflect.DeepEqual(got, []string{"w"}) {
		t.Errorf("Params() = %v, want [w]", got)
	}
	sup := Supported()
	if !sort.StringsAreSorted(sup) {
		t.Errorf("Supported() is not sorted")
	}
	for _, op := range []string{"MatMul", "Gemm", "LSTM", "GRU", "Relu"} {
		i := sort.SearchStrings(sup, op)
		if i == len(sup) || sup[i] != op || !HasRule(op) {
			t.Errorf("%s has no backward rule listed", op)
		}
	}
	if HasRule("NoSuchOp") {
		t.Errorf("HasRule(NoSuchOp) = true")
	}
}
