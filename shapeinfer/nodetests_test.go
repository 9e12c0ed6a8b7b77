package shapeinfer

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/testset"
)

// TestNodeConformance infers the output types of every in-scope ONNX node
// test and checks them against the reference outputs: dtype, rank and every
// numeric dim (no run needed), and that no rule reports a problem or fails.
func TestNodeConformance(t *testing.T) {
	list := filepath.Join(fixtures.RepoRoot(), "conformance", "node-inscope.txt")
	fixtures.Require(t, list, fixtures.HowToGetShared)
	fixtures.Require(t, fixtures.NodeTests, fixtures.HowToGetNodeTests)
	f, err := os.Open(list)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name != "" && !strings.HasPrefix(name, "#") {
			names = append(names, name)
		}
	}
	if os.Getenv("SHAPEINFER_ALL_NODE_TESTS") == "1" {
		dirs, _ := filepath.Glob(filepath.Join(fixtures.NodeTests, "test_*"))
		names = names[:0]
		for _, d := range dirs {
			names = append(names, filepath.Base(d))
		}
	}
	var cases, outputs, ranked, dims, numeric int
	for _, name := range names {
		dir := filepath.Join(fixtures.NodeTests, name)
		m, err := importer.Load(filepath.Join(dir, "model.onnx"))
		if err != nil {
			continue // the importer's own tests cover load failures
		}
		cases++
		// forget the declared output types: the rules alone must find them
		for i := range m.Graph.Outputs {
			m.Graph.Outputs[i].HasShape, m.Graph.Outputs[i].Shape, m.Graph.Outputs[i].DType = false, nil, 0
		}
		m.Graph.ValueInfo = nil
		infos, problems, err := Infer(m)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, p := range problems {
			t.Errorf("%s: %s", name, p)
		}
		wants, err := testset.ReadIndexed(filepath.Join(dir, "test_data_set_0"), "output")
		if err != nil {
			continue
		}
		for i, want := range wants {
			if i >= len(m.Graph.Outputs) {
				break
			}
			outputs++
			o := m.Graph.Outputs[i].Name
			vi := infos[o]
			if vi.DType == tensor.Undefined {
				t.Logf("%s: output %q: no type inferred (no rule for the op)", name, o)
				continue
			}
			if vi.DType == tensor.BFloat16 && want.DType == tensor.Uint16 {
				want.DType = vi.DType // the test data stores bfloat16 as uint16
			}
			if vi.DType != want.DType {
				t.Errorf("%s: output %q: inferred dtype %v, reference %v", name, o, vi.DType, want.DType)
			}
			if !vi.HasShape {
				t.Logf("%s: output %q: rank not inferred (reference %v)", name, o, want.Shape)
				continue
			}
			ranked++
			if len(vi.Shape) != len(want.Shape) {
				t.Errorf("%s: output %q: inferred %s, reference %v", name, o, vi.ShapeString(), want.Shape)
				continue
			}
			for j, d := range vi.Shape {
				dims++
				if d.Known() {
					numeric++
					if d.Value != int64(want.Shape[j]) {
						t.Errorf("%s: output %q: inferred %s, reference %v", name, o, vi.ShapeString(), want.Shape)
						break
					}
				}
			}
		}
	}
	t.Logf("%d node tests, %d outputs: %d ranked, %d dims of which %d numeric", cases, outputs, ranked, dims, numeric)
}
