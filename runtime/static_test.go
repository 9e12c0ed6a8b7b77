package runtime_test

import (
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestStaticValuesCachedPerShape: repeated runs (which reuse the cached
// shape-only subgraph values) give exactly what a fresh session gives, for
// alternating shapes, output subsets and concurrent callers.
func TestStaticValuesCachedPerShape(t *testing.T) {
	for _, rel := range []string{"models/seed_lstm", "testdata/pytorch/bilstm2_meanpool", "testdata/pytorch/embed_lstm"} {
		path := filepath.Join(fixtures.RepoRoot(), rel, "model.onnx")
		m, err := importer.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		warm, err := runtime.NewSession(m, runtime.Options{})
		if err != nil {
			t.Fatal(err)
		}
		in := m.Graph.FeedInputs()[0]
		rng := rand.New(rand.NewPCG(1, 2))
		mk := func(b, T int) map[string]*tensor.Tensor {
			shape := []int{b, T}
			if in.DType == tensor.Float32 {
				shape = append(shape, int(in.Shape[2].Value))
				x := make([]float32, b*T*shape[2])
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				return map[string]*tensor.Tensor{in.Name: tensor.From(shape, x)}
			}
			x := make([]int64, b*T)
			for i := range x {
				x[i] = rng.Int64N(50)
			}
			return map[string]*tensor.Tensor{in.Name: tensor.From(shape, x)}
		}
		out0 := m.Graph.Outputs[0].Name
		var wg sync.WaitGroup
		for round := 0; round < 3; round++ {
			for _, sh := range [][2]int{{1, 4}, {3, 9}, {1, 4}, {2, 9}} {
				x := mk(sh[0], sh[1])
				fresh, _ := runtime.NewSession(m, runtime.Options{})
				want, err := fresh.Run(x)
				if err != nil {
					t.Fatal(err)
				}
				wantOne, _ := fresh.Run(x, out0)
				for w := 0; w < 3; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						got, err := warm.Run(x)
						if err != nil {
							t.Error(err)
							return
						}
						for k, v := range want {
							if !reflect.DeepEqual(v.Data, got[k].Data) {
								t.Errorf("%s %v: output %q differs on a warm session", rel, sh, k)
							}
						}
						one, err := warm.Run(x, out0)
						if err != nil || !reflect.DeepEqual(one[out0].Data, wantOne[out0].Data) {
							t.Errorf("%s %v: single-output run differs: %v", rel, sh, err)
						}
					}()
				}
				wg.Wait()
			}
		}
	}
}
