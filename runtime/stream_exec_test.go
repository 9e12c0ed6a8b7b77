package runtime

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestStreamBindsRecurrentKernels: after a step, the recurrent and head
// kernels of both stream executors run bound to their weights (their per-run checks
// and weight-cache lookup done once), forks included, and the view steps
// are made without their kernels.
func TestStreamBindsRecurrentKernels(t *testing.T) {
	m, err := importer.Load(filepath.Join(fixtures.RepoRoot(), "models/seed_lstm/model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	fork, err := st.Fork()
	if err != nil {
		t.Fatal(err)
	}
	x := map[string]*tensor.Tensor{"input": tensor.From([]int{1, 1, 1}, []float32{0.5})}
	for _, s := range []*Stream{st, fork} {
		for i := 0; i < 2; i++ {
			if _, err := s.Step(x); err != nil {
				t.Fatal(err)
			}
		}
	}
	kinds := func(x *streamExec) string {
		out := ""
		for i, st := range x.e.steps {
			if n := x.e.c.g.Nodes[st.node]; n.OpType == "LSTM" || n.OpType == "DenseGroup" {
				out += fmt.Sprintf("%T ", x.kern[i])
			}
		}
		return out
	}
	for _, x := range []*streamExec{st.first, st.next, fork.first, fork.next} {
		if k := kinds(x); k != "*rnn.bound[float32] *nn.boundGroup " {
			t.Errorf("LSTM and head kernels of a stream executor: %q, want the bound forms", k)
		}
	}
	// the Transpose of a one-step chunk and Gather(Y_h, 0) are views: the
	// next-step executor makes them without their kernels
	views := ""
	for i, v := range st.next.views {
		if v != nil && v.ok {
			views += st.next.e.c.g.Nodes[st.next.e.steps[i].node].OpType + " "
		}
	}
	if views != "Transpose Gather " {
		t.Errorf("steps taken as views: %q, want Transpose and Gather", views)
	}
}
