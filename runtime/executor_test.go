package runtime_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// allocRuns is how many runs an allocation check averages over: few, as
// in ops/rnn's arena_test.go, which says why.
const allocRuns = 5

// sampleModels are the repository's own models, each with a float32 or
// int64 input whose symbolic dims are batch and (for sequences) time.
var sampleModels = []string{
	"models/seed_lstm", "models/mlp4",
	"testdata/pytorch/gru3", "testdata/pytorch/bilstm2_meanpool",
	"testdata/pytorch/conv1d_gap", "testdata/pytorch/embed_lstm",
}

func loadSample(t testing.TB, rel string) *graph.Model {
	t.Helper()
	m, err := importer.Load(filepath.Join(fixtures.RepoRoot(), rel, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randomFeeds fills every feed input: the first symbolic dim is batch, the
// second time; int64 inputs get small indices (valid for embeddings).
func randomFeeds(m *graph.Model, rng *rand.Rand, batch, time int) map[string]*tensor.Tensor {
	feeds := map[string]*tensor.Tensor{}
	for _, v := range m.Graph.FeedInputs() {
		var shape []int
		sym := 0
		for _, d := range v.Shape {
			switch {
			case d.Known():
				shape = append(shape, int(d.Value))
			case sym == 0:
				shape, sym = append(shape, batch), 1
			default:
				shape = append(shape, time)
			}
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		if v.DType == tensor.Int64 {
			x := make([]int64, n)
			for i := range x {
				x[i] = rng.Int64N(4)
			}
			feeds[v.Name] = tensor.From(shape, x)
			continue
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		feeds[v.Name] = tensor.From(shape, x)
	}
	return feeds
}

func sameBits(t *testing.T, what string, got, want *tensor.Tensor) {
	t.Helper()
	if !tensor.SameShape(got.Shape, want.Shape) || got.DType != want.DType {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	g, w := got.Float32s(), want.Float32s()
	for i := range g {
		if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
			t.Fatalf("%s: element %d is %v, want %v", what, i, g[i], w[i])
		}
	}
}

// TestExecutorReuseMatchesFreshRuns: an executor reusing its buffers over
// runs at changing and repeating shapes gives bit for bit what a fresh,
// unfused session gives, and Session.Run results do not change when later
// runs reuse the buffers they came from.
func TestExecutorReuseMatchesFreshRuns(t *testing.T) {
	for _, rel := range sampleModels {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			m := loadSample(t, rel)
			s, err := runtime.NewSession(m, runtime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ex, err := s.NewExecutor()
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			var kept map[string]*tensor.Tensor
			var keptWant map[string]*tensor.Tensor
			for round, bt := range [][2]int{{3, 7}, {3, 7}, {1, 5}, {3, 7}, {17, 9}, {1, 5}} {
				feeds := randomFeeds(m, rng, bt[0], bt[1])
				fresh, err := runtime.NewSession(m, runtime.Options{NoFusion: true})
				if err != nil {
					t.Fatal(err)
				}
				want, err := fresh.Run(feeds)
				if err != nil {
					t.Fatal(err)
				}
				got, err := ex.Run(feeds)
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				for name, w := range want {
					sameBits(t, name, got[name], w)
				}
				owned, err := s.Run(feeds)
				if err != nil {
					t.Fatal(err)
				}
				if round == 0 {
					kept, keptWant = owned, want
				}
			}
			for name, w := range keptWant {
				sameBits(t, "kept Session.Run result "+name, kept[name], w)
			}
		})
	}
}

// TestSteadyStateRunAllocatesNothing is the memory plan's promise: once an
// executor has run at a shape, running again at that shape allocates
// nothing, for the sample multi-task models at batch 1 and 64.
func TestSteadyStateRunAllocatesNothing(t *testing.T) {
	for _, rel := range []string{"models/seed_lstm", "models/mlp4", "testdata/pytorch/gru3", "testdata/pytorch/conv1d_gap"} {
		for _, batch := range []int{1, 64} {
			for _, threads := range []int{1, 2} {
				m := loadSample(t, rel)
				s, err := runtime.NewSession(m, runtime.Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				ex, err := s.NewExecutor()
				if err != nil {
					t.Fatal(err)
				}
				feeds := randomFeeds(m, rand.New(rand.NewPCG(1, 1)), batch, 50)
				for range 2 {
					if _, err := ex.Run(feeds); err != nil {
						t.Fatal(err)
					}
				}
				n := testing.AllocsPerRun(allocRuns, func() {
					if _, err := ex.Run(feeds); err != nil {
						t.Fatal(err)
					}
				})
				limit := 0.0
				if threads > 1 {
					// fanning out to worker goroutines may allocate their
					// closures; bounded, and independent of the sizes
					limit = 8
				}
				if n > limit && !raceEnabled {
					t.Errorf("%s batch %d threads %d: %v allocations per steady-state run, want ≤ %v", rel, batch, threads, n, limit)
				}
			}
		}
	}
}
