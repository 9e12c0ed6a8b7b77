package shapeinfer

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	_ "github.com/mtlrun/mtlrun/ops/all"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/testset"
)

// modelDirs lists the model folders the shape rules are checked on.
func modelDirs(t testing.TB) []string {
	root := fixtures.RepoRoot()
	var dirs []string
	for _, pat := range []string{
		filepath.Join(root, "models", "*"),
		filepath.Join(root, "testdata", "pytorch", "*"),
		filepath.Join(root, "testdata", "rnn", "*"),
		filepath.Join(fixtures.Shared(), "testdata", "keras", "*"),
	} {
		ds, _ := filepath.Glob(pat)
		for _, d := range ds {
			if _, err := os.Stat(filepath.Join(d, "model.onnx")); err == nil {
				dirs = append(dirs, d)
			}
		}
	}
	if len(dirs) == 0 {
		t.Fatal("no model folders found")
	}
	return dirs
}

// stats counts what the checks saw.
type stats struct {
	values, unranked, dims, numeric, symbolic, fresh, exprs, unknown int
}

func (s *stats) add(o stats) {
	s.values += o.values
	s.unranked += o.unranked
	s.dims += o.dims
	s.numeric += o.numeric
	s.symbolic += o.symbolic
	s.fresh += o.fresh
	s.exprs += o.exprs
	s.unknown += o.unknown
}

// TestModels infers every model's shapes, runs the model on its test sets
// and checks every inferred dim against the actual one: numbers must be
// equal, symbolic names must bind consistently, and symbolic expressions
// (batch*time, time+2) must evaluate to the actual dims.
func TestModels(t *testing.T) {
	var total, totalBare stats
	models, ran := 0, 0
	for _, dir := range modelDirs(t) {
		name := filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
		models++
		t.Run(name, func(t *testing.T) {
			m, err := importer.Load(filepath.Join(dir, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			infos, problems, err := Infer(m)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("inferred %d values in %v", len(infos), time.Since(start))
			for _, p := range problems {
				t.Logf("problem: %s", p)
			}
			in := run(m, max(m.Opset(), 1))
			// the same model with every declared intermediate and output
			// type forgotten: the rules alone must get the shapes right
			m2, err := importer.Load(filepath.Join(dir, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			stripDeclared(m2.Graph)
			bare := run(m2, max(m2.Opset(), 1))
			// every root value gets a type
			for _, n := range m.Graph.Nodes {
				for _, o := range n.Outputs {
					if _, ok := infos[o]; o != "" && !ok {
						t.Errorf("no inferred type for %q (output of %s)", o, n.OpType)
					}
				}
			}
			sets, _ := filepath.Glob(filepath.Join(dir, "test_data_set_*"))
			if len(sets) == 0 {
				t.Skip("no test_data_set_* folders: inferred, not checked")
			}
			sess, err := runtime.NewSession(m, runtime.Options{})
			if err != nil { // an unsupported op is a failure, not a skip
				t.Fatal(err)
			}
			var names []string
			for _, n := range m.Graph.Nodes {
				for _, o := range n.Outputs {
					if o != "" {
						names = append(names, o)
					}
				}
			}
			var st, bst stats
			for _, set := range sets {
				ins, err := testset.ReadIndexed(set, "input")
				if err != nil {
					t.Fatal(err)
				}
				feeds := m.Graph.FeedInputs()
				inputs := map[string]*tensor.Tensor{}
				for i, x := range ins {
					if i < len(feeds) {
						inputs[feeds[i].Name] = x
					}
				}
				got, err := sess.Run(inputs, names...)
				if err != nil { // a kernel failing (a *runtime.NodeError) fails the test
					t.Fatal(err)
				}
				for k, v := range inputs {
					got[k] = v
				}
				st.add(checkSet(t, filepath.Base(set), in, got))
				bst.add(checkSet(t, filepath.Base(set)+" (rules only)", bare, got))
			}
			total.add(st)
			totalBare.add(bst)
			ran++
			t.Logf("%d values checked over %d sets: %d dims (%d numeric, %d symbolic names of which %d fresh, %d expressions, %d unknown), %d unranked values; %d problems",
				st.values, len(sets), st.dims, st.numeric, st.symbolic, st.fresh, st.exprs, st.unknown, st.unranked, len(problems))
		})
	}
	t.Logf("TOTAL rules only (declared types stripped): %d values, %d dims (%d numeric, %d symbolic names of which %d fresh, %d expressions, %d unknown), %d unranked",
		totalBare.values, totalBare.dims, totalBare.numeric, totalBare.symbolic, totalBare.fresh, totalBare.exprs, totalBare.unknown, totalBare.unranked)
	t.Logf("TOTAL %d models, %d run and checked: %d values, %d dims (%d numeric, %d symbolic names of which %d fresh, %d expressions, %d unknown), %d unranked",
		models, ran, total.values, total.dims, total.numeric, total.symbolic, total.fresh, total.exprs, total.unknown, total.unranked)
}

// isAtom reports whether e is a single symbol (so it can be bound).
func isAtom(e Expr) (string, bool) {
	if len(e.terms) == 1 && e.terms[0].coef == 1 && e.terms[0].mono != "" && !strings.Contains(e.terms[0].mono, monoSep) {
		return e.terms[0].mono, true
	}
	return "", false
}

func checkSet(t *testing.T, set string, in *inferer, got map[string]*tensor.Tensor) stats {
	t.Helper()
	var st stats
	names := make([]string, 0, len(got))
	for k := range got {
		names = append(names, k)
	}
	sort.Strings(names)
	env := map[string]int64{}
	bound := map[string]string{}
	// pass 1: numbers, ranks, dtypes; bind single symbols
	for _, name := range names {
		x := got[name]
		v := in.vals[name]
		if v == nil {
			t.Errorf("%s: %q has no inferred type", set, name)
			continue
		}
		st.values++
		if v.dtype != tensor.Undefined && v.dtype != x.DType {
			t.Errorf("%s: %q: inferred dtype %v, actual %v", set, name, v.dtype, x.DType)
		}
		if !v.ranked {
			st.unranked++
			continue
		}
		if v.rank() != len(x.Shape) {
			t.Errorf("%s: %q: inferred %s, actual %v (rank)", set, name, shapeString(v.shape), x.Shape)
			continue
		}
		for i, d := range v.shape {
			st.dims++
			actual := int64(x.Shape[i])
			if c, ok := d.IsConst(); ok {
				st.numeric++
				if c != actual {
					t.Errorf("%s: %q: inferred %s, actual %v (dim %d)", set, name, shapeString(v.shape), x.Shape, i)
				}
				continue
			}
			if d.IsUnknown() {
				st.unknown++
				continue
			}
			if s, ok := isAtom(d); ok {
				st.symbolic++
				if in.fresh[s] {
					st.fresh++
				}
				if prev, ok := env[s]; ok && prev != actual {
					t.Errorf("%s: symbol %s is %d in %q but %d in %q %v (dim %d)", set, s, prev, bound[s], actual, name, x.Shape, i)
				}
				env[s], bound[s] = actual, name
				continue
			}
			st.exprs++
		}
	}
	// pass 2: expressions evaluate to the actual dims
	for _, name := range names {
		x, v := got[name], in.vals[name]
		if v == nil || !v.ranked || v.rank() != len(x.Shape) {
			continue
		}
		for i, d := range v.shape {
			if _, ok := isAtom(d); ok || d.IsUnknown() {
				continue
			}
			if _, ok := d.IsConst(); ok {
				continue
			}
			e, ok := d.Eval(env)
			if !ok {
				continue // an atom seen only inside expressions
			}
			if e != int64(x.Shape[i]) {
				t.Errorf("%s: %q: inferred %s evaluates to %d with %v, actual %v (dim %d)", set, name, shapeString(v.shape), e, env, x.Shape, i)
			}
		}
	}
	return st
}

// TestSeedOutputs checks that the seed model's task outputs come out as
// [batch, 1] with the input's symbolic batch name.
func TestSeedOutputs(t *testing.T) {
	m, err := importer.Load(filepath.Join(fixtures.RepoRoot(), "models", "seed_lstm", "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	infos, problems, err := Infer(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Errorf("problems: %v", problems)
	}
	feeds := m.Graph.FeedInputs()
	if len(feeds) == 0 || !feeds[0].HasShape || feeds[0].Shape[0].Param == "" {
		t.Fatalf("seed input has no symbolic batch: %+v", feeds)
	}
	batch := feeds[0].Shape[0].Param
	for _, o := range m.Graph.Outputs {
		vi := infos[o.Name]
		want := "[" + batch + " 1]"
		if vi.ShapeString() != want || vi.DType != tensor.Float32 {
			t.Errorf("output %q: %v%s, want float32%s", o.Name, vi.DType, vi.ShapeString(), want)
		}
		if vi.Shape[0].Param != batch || vi.Shape[1] != (graph.Dim{Value: 1}) {
			t.Errorf("output %q: dims %+v", o.Name, vi.Shape)
		}
	}
}

// BenchmarkInfer times Infer over every model folder (load excluded).
func BenchmarkInfer(b *testing.B) {
	var ms []*graph.Model
	for _, dir := range modelDirs(b) {
		m, err := importer.Load(filepath.Join(dir, "model.onnx"))
		if err != nil {
			b.Fatal(err)
		}
		ms = append(ms, m)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, m := range ms {
			if _, _, err := Infer(m); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(ms)), "µs/model")
}

// stripDeclared forgets the declared types of outputs and intermediates (in
// subgraphs too), keeping graph inputs.
func stripDeclared(g *graph.Graph) {
	for i := range g.Outputs {
		g.Outputs[i].HasShape, g.Outputs[i].Shape, g.Outputs[i].DType = false, nil, tensor.Undefined
	}
	g.ValueInfo = nil
	for _, n := range g.Nodes {
		for _, sg := range n.Subgraphs() {
			stripDeclared(sg.Graph)
		}
	}
}
