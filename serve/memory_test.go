package serve

import (
	"path/filepath"
	goruntime "runtime"
	rtm "runtime/metrics"
	"testing"
	"time"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// modelInputs makes inputs for every feed of m: fixed dims as declared,
// the first free dim batch, the others steps; integer inputs hold 1 (valid
// ids and lengths).
func modelInputs(m *graph.Model, batch, steps int) (map[string]*tensor.Tensor, bool) {
	in := map[string]*tensor.Tensor{}
	for _, v := range m.Graph.FeedInputs() {
		var shape []int
		for i, d := range v.Shape {
			switch {
			case d.Known():
				shape = append(shape, int(d.Value))
			case i == 0:
				shape = append(shape, batch)
			default:
				shape = append(shape, steps)
			}
		}
		x, err := tensor.New(v.DType, shape)
		if err != nil {
			return nil, false
		}
		switch d := x.Data.(type) {
		case []int64:
			for i := range d {
				d[i] = 1
			}
		case []int32:
			for i := range d {
				d[i] = 1
			}
		}
		in[v.Name] = x
	}
	return in, true
}

func hasLoop(g *graph.Graph) bool {
	for _, n := range g.Nodes {
		if n.OpType == "Loop" || n.OpType == "Scan" {
			return true
		}
	}
	return false
}

// TestMemoryEstimateModels checks the estimate against every model at hand,
// at batch 16 and 200 steps, on a session warmed at batch 1 and 3 steps (so
// what is measured is the run's own working set, not one-time packing):
// the estimate must be at least what the run allocates (Go allocator's
// TotalAlloc) — for Loop/Scan models, whose bodies allocate garbage every
// iteration, at least the highest live heap sampled during the run.
func TestMemoryEstimateModels(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode")
	}
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random: kernels' pooled buffers allocate, so allocation counts mean nothing")
	}
	root := fixtures.RepoRoot()
	var files []string
	for _, g := range []string{"testdata/*/*/model.onnx", "models/*/model.onnx"} {
		m, _ := filepath.Glob(filepath.Join(root, g))
		files = append(files, m...)
	}
	keras := filepath.Join(fixtures.Shared(), "testdata", "keras")
	if m, _ := filepath.Glob(filepath.Join(keras, "*", "model.onnx")); len(m) > 0 {
		files = append(files, m...)
	} else {
		t.Logf("no Keras models at %s: only the repository's models are checked", keras)
	}
	checked := 0
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		m, err := importer.Load(f)
		if err != nil {
			continue
		}
		mm, err := newMemoryModel(m)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		small, ok := modelInputs(m, 1, 3)
		in, _ := modelInputs(m, 16, 200)
		sess, err := runtime.NewSession(m, runtime.Options{})
		if !ok || err != nil {
			continue
		}
		if _, err := sess.Run(small); err != nil {
			continue // inputs this generic maker cannot satisfy
		}
		goruntime.GC()
		sample := []rtm.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		rtm.Read(sample)
		base := sample[0].Value.Uint64()
		peak := base
		stop, sampled := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				select {
				case <-stop:
					return
				default:
				}
				rtm.Read(sample)
				peak = max(peak, sample[0].Value.Uint64())
				time.Sleep(50 * time.Microsecond)
			}
		}()
		var before, after goruntime.MemStats
		goruntime.ReadMemStats(&before)
		_, err = sess.Run(in)
		goruntime.ReadMemStats(&after)
		close(stop)
		<-sampled
		if err != nil {
			continue
		}
		est := mm.estimate(in)
		alloc := after.TotalAlloc - before.TotalAlloc
		want, what := alloc, "allocated"
		if hasLoop(m.Graph) {
			want, what = peak-base, "held at the peak"
		}
		checked++
		t.Logf("%-62s %s %10s, estimate %10s (%.1fx)", rel, what, humanBytes(want), humanBytes(est), float64(est)/float64(want))
		if est < want {
			t.Errorf("%s: estimate %s, below the %s the run %s", rel, humanBytes(est), humanBytes(want), what)
		}
	}
	if checked < 10 {
		t.Errorf("only %d models checked", checked)
	}
}
