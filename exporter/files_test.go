package exporter

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// Saved models are ordinary 0644 files, and a save that fails (here: the
// path is a folder) leaves no temporary file behind.
func TestSaveFiles(t *testing.T) {
	g := &graph.Graph{Name: "id"}
	g.Inputs = []graph.ValueInfo{{Name: "x", DType: tensor.Float32, Kind: "tensor", HasShape: true, Shape: []graph.Dim{{Value: 1}}}}
	g.Outputs = []graph.ValueInfo{{Name: "y", DType: tensor.Float32, Kind: "tensor", HasShape: true, Shape: []graph.Dim{{Value: 1}}}}
	g.Nodes = []*graph.Node{{Name: "n", OpType: "Identity", Inputs: []string{"x"}, Outputs: []string{"y"}}}
	m := &graph.Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": 17}}
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	if err := Save(m, path, Options{}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("saved model: %v %v", err, st.Mode())
	}
	sub := filepath.Join(dir, "folder")
	os.Mkdir(sub, 0o755)
	if err := Save(m, sub, Options{}); err == nil {
		t.Errorf("saving over a folder succeeded")
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
