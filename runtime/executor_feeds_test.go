package runtime_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestExecutorInitializersAndOverrides checks what the executor's per-run
// fast paths must keep: an initializer replaced in the graph between runs
// (under a key string of its own, as training's updates bring) is used by
// the next run, an initializer also declared as a graph input is
// overridden only by the run that feeds it, and an unknown input is still
// refused next to such an override.
func TestExecutorInitializersAndOverrides(t *testing.T) {
	m := model(&graph.Graph{
		Name:         "override",
		Inputs:       []graph.ValueInfo{vi("a", tensor.Float32, "batch", 3), vi("bias", tensor.Float32, 3)},
		Initializers: map[string]*tensor.Tensor{"bias": f32([]int{3}, 1, 2, 3)},
		Nodes:        []*graph.Node{nd("Add", "add_bias", []string{"a", "bias"}, []string{"sum"})},
		Outputs:      []graph.ValueInfo{vi("sum", tensor.Float32, "batch", 3)},
	}, 13)
	s, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := s.NewExecutor()
	if err != nil {
		t.Fatal(err)
	}
	a := f32([]int{1, 3}, 10, 20, 30)
	type in = map[string]*tensor.Tensor
	steps := []struct {
		name    string
		replace *tensor.Tensor // put into the executed graph's initializers first
		inputs  in
		want    []float32
		err     string
	}{
		{"initializer", nil, in{"a": a}, []float32{11, 22, 33}, ""},
		{"replaced initializer", f32([]int{3}, 4, 5, 6), in{"a": a}, []float32{14, 25, 36}, ""},
		{"fed override", nil, in{"a": a, "bias": f32([]int{3}, 7, 8, 9)}, []float32{17, 28, 39}, ""},
		{"override not kept", nil, in{"a": a}, []float32{14, 25, 36}, ""},
		{"unknown input next to an override", nil, in{"a": a, "bias": f32([]int{3}, 7, 8, 9), "zz": a}, nil, "no such input"},
		{"missing feed", nil, in{"bias": f32([]int{3}, 7, 8, 9)}, nil, "missing"},
		{"replaced again", f32([]int{3}, -1, -2, -3), in{"a": a}, []float32{9, 18, 27}, ""},
	}
	for _, st := range steps {
		if st.replace != nil {
			s.ExecutedGraph().Initializers[strings.Clone("bias")] = st.replace
		}
		res, err := ex.Run(st.inputs)
		if st.err != "" {
			if err == nil || !strings.Contains(err.Error(), st.err) {
				t.Errorf("%s: error %v, want one containing %q", st.name, err, st.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := res["sum"].Float32s(); !reflect.DeepEqual(got, st.want) {
			t.Errorf("%s: sum = %v, want %v", st.name, got, st.want)
		}
	}
}
