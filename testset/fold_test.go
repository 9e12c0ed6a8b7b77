package testset

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestFoldConstantsKeepsOutputs: constant folding changes no output bit on
// any model with test data.
func TestFoldConstantsKeepsOutputs(t *testing.T) {
	var dirs []string
	for _, pat := range []string{"models/*", "testdata/pytorch/*", "testdata/rnn/*"} {
		d, _ := filepath.Glob(filepath.Join(fixtures.RepoRoot(), pat))
		dirs = append(dirs, d...)
	}
	if d, err := filepath.Glob(filepath.Join(fixtures.Shared(), "testdata", "keras", "*")); err == nil {
		dirs = append(dirs, d...)
	}
	totalFolded := 0
	for _, dir := range dirs {
		sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
		if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err != nil || len(sets) == 0 {
			continue
		}
		m, err := importer.Load(filepath.Join(dir, "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		fm, n, err := runtime.FoldConstants(m)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		totalFolded += n
		a, err := runtime.NewSession(m, runtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := runtime.NewSession(fm, runtime.Options{})
		if err != nil {
			t.Fatalf("%s: folded model: %v", dir, err)
		}
		for _, set := range sets {
			ins, err := ReadIndexed(set, "input")
			if err != nil {
				t.Fatal(err)
			}
			feeds := m.Graph.FeedInputs()
			x := map[string]*tensor.Tensor{}
			for i, v := range ins {
				x[feeds[i].Name] = v
			}
			ra, err := a.Run(x)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := b.Run(x)
			if err != nil {
				t.Fatalf("%s: folded model: %v", set, err)
			}
			for k, v := range ra {
				if !reflect.DeepEqual(v.Data, rb[k].Data) {
					t.Errorf("%s: output %q changed after folding", set, k)
				}
			}
		}
	}
	t.Logf("%d nodes folded across the models", totalFolded)
}
