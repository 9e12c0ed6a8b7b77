package runtime_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/importer"
	"github.com/mtlrun/mtlrun/internal/fixtures"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// streamModels are the streamable models of the repository and of
// ../shared, with how many steps the prefix test walks (the reference
// re-runs every prefix, so its cost grows with steps²).
var streamModels = []struct {
	path   string
	shared bool
	steps  int
}{
	{"models/seed_lstm", false, 200},
	{"testdata/pytorch/gru3", false, 200},
	{"testdata/pytorch/embed_lstm", false, 200},
	{"testdata/train/d_gru_three_tasks", false, 60},
	{"keras/tf2onnx_lstm_classifier", true, 80},
	{"keras/tf2onnx_lstm_two_heads", true, 80},
	{"keras/keras3_lstm_opset17", true, 60},
	{"keras/tfkeras2_lstm_batchnorm", true, 80},
	{"keras/pytorch_dynamo_lstm_2layer", true, 30},
	{"keras/keras3_lstm_autoencoder_repeatvector", true, 40},
	{"keras/keras2onnx_conv1d_lstm_gate", true, 30},
}

func loadStreamModel(t testing.TB, path string, shared bool) *graph.Model {
	t.Helper()
	file := filepath.Join(fixtures.RepoRoot(), path, "model.onnx")
	if shared {
		file = filepath.Join(fixtures.Shared(), "testdata", path, "model.onnx")
		fixtures.Require(t, file, fixtures.HowToGetShared)
	}
	m, err := importer.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// streamInputs draws a [batch, steps, ...] (time at axis) array per fed input.
func streamInputs(m *graph.Model, axis, batch, steps int, rng *rand.Rand) map[string]*tensor.Tensor {
	in := map[string]*tensor.Tensor{}
	for _, v := range m.Graph.FeedInputs() {
		shape := make([]int, len(v.Shape))
		for i, d := range v.Shape {
			switch {
			case i == axis:
				shape[i] = steps
			case d.Known():
				shape[i] = int(d.Value)
			case i == 0 || i == 1:
				shape[i] = batch
			default:
				shape[i] = 8
			}
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		switch v.DType {
		case tensor.Int64:
			d := make([]int64, n)
			for i := range d {
				d[i] = rng.Int64N(10)
			}
			in[v.Name] = tensor.From(shape, d)
		default:
			d := make([]float32, n)
			for i := range d {
				d[i] = float32(rng.NormFloat64())
			}
			in[v.Name] = tensor.From(shape, d)
		}
	}
	return in
}

// timeSlice returns steps [lo, hi) of t along axis.
func timeSlice(t *tensor.Tensor, axis, lo, hi int) *tensor.Tensor {
	outer, inner := 1, 1
	for i, d := range t.Shape {
		if i < axis {
			outer *= d
		} else if i > axis {
			inner *= d
		}
	}
	shape := append([]int(nil), t.Shape...)
	shape[axis] = hi - lo
	T := t.Shape[axis]
	switch d := t.Data.(type) {
	case []float32:
		out := make([]float32, 0, outer*(hi-lo)*inner)
		for o := 0; o < outer; o++ {
			out = append(out, d[(o*T+lo)*inner:(o*T+hi)*inner]...)
		}
		return tensor.From(shape, out)
	case []int64:
		out := make([]int64, 0, outer*(hi-lo)*inner)
		for o := 0; o < outer; o++ {
			out = append(out, d[(o*T+lo)*inner:(o*T+hi)*inner]...)
		}
		return tensor.From(shape, out)
	}
	panic(fmt.Sprintf("timeSlice: %v", t.DType))
}

func sliceAll(in map[string]*tensor.Tensor, axis, lo, hi int) map[string]*tensor.Tensor {
	out := map[string]*tensor.Tensor{}
	for k, t := range in {
		out[k] = timeSlice(t, axis, lo, hi)
	}
	return out
}

// maxDiff is the largest absolute difference of two float tensors of one shape.
func maxDiff(t *testing.T, what string, a, b *tensor.Tensor) float64 {
	t.Helper()
	if !tensor.SameShape(a.Shape, b.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, a.Shape, b.Shape)
	}
	x, _ := tensor.AsFloat64(a)
	y, _ := tensor.AsFloat64(b)
	worst := 0.0
	for i := range x {
		d := math.Abs(x[i] - y[i])
		if math.IsNaN(d) {
			t.Fatalf("%s: NaN at %d", what, i)
		}
		worst = max(worst, d)
	}
	return worst
}

// TestStreamEqualsPrefixRuns: for every streamable model, the stream's
// output after step t equals a full run over steps 0..t, at batch 1 and 5,
// one step at a time and in chunks.
func TestStreamEqualsPrefixRuns(t *testing.T) {
	for _, c := range streamModels {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			m := loadStreamModel(t, c.path, c.shared)
			sess, err := runtime.NewSession(m, runtime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			st, err := sess.NewStream()
			if err != nil {
				t.Fatal(err)
			}
			plan := st.Plan()
			ref, err := runtime.NewSession(runtime.FreeTimeAxis(m, plan.TimeAxis), runtime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			steps := c.steps
			if testing.Short() {
				steps = min(steps, 20)
			}
			worst := 0.0
			for _, batch := range []int{1, 5} {
				rng := rand.New(rand.NewPCG(uint64(batch), 18))
				x := streamInputs(m, plan.TimeAxis, batch, steps, rng)
				for _, chunk := range []int{1, 3} {
					if chunk > 1 && batch > 1 {
						continue
					}
					st.Reset()
					for lo := 0; lo < steps; lo += chunk {
						hi := min(lo+chunk, steps)
						got, err := st.Step(sliceAll(x, plan.TimeAxis, lo, hi))
						if err != nil {
							t.Fatalf("batch %d step %d: %v", batch, lo, err)
						}
						want, err := ref.Run(sliceAll(x, plan.TimeAxis, 0, hi))
						if err != nil {
							t.Fatalf("reference over %d steps: %v", hi, err)
						}
						for _, o := range plan.Outputs {
							w := want[o.Name]
							if o.PerStep {
								w = timeSlice(w, o.TimeAxis, lo, hi)
							}
							d := maxDiff(t, fmt.Sprintf("batch %d steps %d..%d output %q", batch, lo, hi, o.Name), got[o.Name], w)
							if d > 1e-6 {
								t.Fatalf("batch %d chunk %d steps %d..%d output %q: stream differs from the prefix run by %g", batch, chunk, lo, hi, o.Name, d)
							}
							worst = max(worst, d)
						}
					}
					if st.Steps() != int64(steps) {
						t.Errorf("Steps() = %d, want %d", st.Steps(), steps)
					}
				}
			}
			t.Logf("%s: time axis %d, carried %v, %d steps, worst difference %.3g", c.path, plan.TimeAxis, plan.Recurrent, steps, worst)
		})
	}
}

// TestStreamRefusals: models that look across time are refused with the
// node and the reason.
func TestStreamRefusals(t *testing.T) {
	cases := []struct {
		path   string
		shared bool
		want   []string
	}{
		{"testdata/pytorch/bilstm2_meanpool", false, []string{"LSTM", "bidirectional"}},
		{"testdata/pytorch/conv1d_gap", false, []string{"Conv", "3 time steps"}},
		{"models/mlp4", false, []string{"Gemm", "time axis"}},
		{"testdata/rnn/lstm_reverse", false, []string{"reverse direction"}},
		{"testdata/rnn/gru_lbr0_reverse_seqlens", false, []string{"sequence_lens"}},
		{"keras/keras3_bidirectional_lstm", true, []string{"LSTM", "bidirectional"}},
		{"keras/pytorch_bigru_attention", true, []string{"GRU", "bidirectional"}},
		{"keras/pytorch_lstm_attention_two_heads", true, []string{"Softmax", "over the time axis"}},
		{"keras/keras3_stacked_lstm_timedistributed", true, []string{"Slice", "window of the time axis"}},
		{"keras/keras3_gru_loop_small", true, []string{"Loop"}},
		{"keras/pytorch_lstm_packed_lengths", true, []string{"lengths"}},
		{"keras/keras3_conv1d_multibranch_gap", true, []string{"time"}},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.path), func(t *testing.T) {
			m := loadStreamModel(t, c.path, c.shared)
			sess, err := runtime.NewSession(m, runtime.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = sess.NewStream()
			var se *runtime.StreamError
			if !errors.As(err, &se) {
				t.Fatalf("NewStream error %v, want a *StreamError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			t.Log(err)
		})
	}
}

// TestStreamTestCanFail: a stream that loses its state between steps
// differs from the prefix run by far more than the 1e-6 the prefix test
// allows, so that test would catch a stream that drops its state.
func TestStreamTestCanFail(t *testing.T) {
	m := loadStreamModel(t, "models/seed_lstm", false)
	sess, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sess.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	x := streamInputs(m, 1, 1, 5, rand.New(rand.NewPCG(1, 2)))
	// the bug imitated: only the last step reaches the stream
	lost, err := st.Step(sliceAll(x, 1, 4, 5))
	if err != nil {
		t.Fatal(err)
	}
	want, err := sess.Run(x)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, "output1", lost["output1"], want["output1"]); d < 1e-4 {
		t.Fatalf("a stream without its state is within %g of the prefix run: the prefix test could not catch lost state", d)
	}
}

func seedStream(t testing.TB) (*runtime.Session, *runtime.Stream) {
	t.Helper()
	m := loadStreamModel(t, "models/seed_lstm", false)
	sess, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sess.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	return sess, st
}

// TestStreamStepAllocatesNothing: steady-state steps of the seed model (one
// step, batch 1 and 5) allocate nothing.
func TestStreamStepAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	_, st := seedStream(t)
	for _, batch := range []int{1, 5} {
		st.Reset()
		in := map[string]*tensor.Tensor{"input": tensor.From([]int{batch, 1, 1}, make([]float32, batch))}
		for i := 0; i < 3; i++ {
			if _, err := st.Step(in); err != nil {
				t.Fatal(err)
			}
		}
		if n := testing.AllocsPerRun(allocRuns, func() {
			if _, err := st.Step(in); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("batch %d: a steady-state Step allocates %.1f times", batch, n)
		}
	}
}

// TestStreamBadUse: wrong feature count, another batch mid-stream, unknown
// or non-streamable outputs, and a foreign state get clear errors.
func TestStreamBadUse(t *testing.T) {
	sess, st := seedStream(t)
	step := func(shape ...int) error {
		n := 1
		for _, d := range shape {
			n *= d
		}
		_, err := st.Step(map[string]*tensor.Tensor{"input": tensor.From(shape, make([]float32, n))})
		return err
	}
	var se *ops.InputError
	if err := step(1, 1, 3); !errors.As(err, &se) || !strings.Contains(err.Error(), "dim 2 must be 1") {
		t.Errorf("3 features: got %v", err)
	}
	if err := step(1, 0, 1); !errors.As(err, &se) || !strings.Contains(err.Error(), "no time step") {
		t.Errorf("0 steps: got %v", err)
	}
	if err := step(2, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := step(3, 1, 1); !errors.As(err, &se) || !strings.Contains(err.Error(), "keeps one batch") {
		t.Errorf("batch change: got %v", err)
	}
	if _, err := st.Step(map[string]*tensor.Tensor{"x": tensor.From([]int{2, 1, 1}, []float32{1, 2})}); !errors.As(err, &se) || !strings.Contains(err.Error(), "no such input") {
		t.Errorf("unknown input: got %v", err)
	}
	if _, err := sess.NewStream("nope"); err == nil || !strings.Contains(err.Error(), "unknown output") {
		t.Errorf("unknown output: got %v", err)
	}

	// a non-streamable output of an otherwise streamable model: the mean
	// over time of the LSTM's Y
	m := loadStreamModel(t, "models/seed_lstm", false)
	g := *m.Graph
	var y string
	for _, n := range g.Nodes {
		if n.OpType == "LSTM" {
			y = n.Outputs[0]
		}
	}
	g.Nodes = append(append([]*graph.Node(nil), g.Nodes...), nd("ReduceMean", "pool_time", []string{y}, []string{"pooled"}, "axes", []int64{0}))
	g.Outputs = append(append([]graph.ValueInfo(nil), g.Outputs...), vi("pooled", tensor.Float32, nil))
	m2 := *m
	m2.Graph = &g
	s2, err := runtime.NewSession(&m2, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.NewStream("output1"); err != nil {
		t.Errorf("output1 alone streams, got %v", err)
	}
	var serr *runtime.StreamError
	if _, err := s2.NewStream("output1", "pooled"); !errors.As(err, &serr) || serr.Node != "pool_time" || !strings.Contains(err.Error(), "reduces over the time axis (pooling over time)") {
		t.Errorf("pooled output: got %v", err)
	}

	// another model's state
	other, err := runtime.NewSession(loadStreamModel(t, "testdata/pytorch/gru3", false), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ost, err := other.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ost.Step(map[string]*tensor.Tensor{"input": tensor.From([]int{1, 1, 8}, make([]float32, 8))}); err != nil {
		t.Fatal(err)
	}
	foreign, err := ost.State()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Restore(foreign); !errors.Is(err, runtime.ErrStateModel) {
		t.Errorf("restore of gru3's state into seed_lstm's stream: got %v", err)
	}
	if err := st.Restore([]byte("garbage")); err == nil {
		t.Error("restore of garbage succeeded")
	}
}

// TestStreamStateRoundTrip: a state taken mid-sequence and restored into a
// fresh stream (as another process would) continues the sequence exactly.
func TestStreamStateRoundTrip(t *testing.T) {
	sess, st := seedStream(t)
	m := sess.Model()
	x := streamInputs(m, 1, 5, 30, rand.New(rand.NewPCG(5, 6)))
	for i := 0; i < 20; i++ {
		if _, err := st.Step(sliceAll(x, 1, i, i+1)); err != nil {
			t.Fatal(err)
		}
	}
	state, err := st.State()
	if err != nil {
		t.Fatal(err)
	}
	// a fork shares the compiled graphs and takes the same states
	fresh, err := st.Fork()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Steps() != 0 || fresh.Fingerprint() != st.Fingerprint() {
		t.Fatalf("fork: %d steps, fingerprint %s vs %s", fresh.Steps(), fresh.Fingerprint(), st.Fingerprint())
	}
	if err := fresh.Restore(state); err != nil {
		t.Fatal(err)
	}
	if fresh.Steps() != 20 {
		t.Errorf("restored Steps() = %d, want 20", fresh.Steps())
	}
	for i := 20; i < 30; i++ {
		a, err := st.Step(sliceAll(x, 1, i, i+1))
		if err != nil {
			t.Fatal(err)
		}
		b, err := fresh.Step(sliceAll(x, 1, i, i+1))
		if err != nil {
			t.Fatal(err)
		}
		for name := range a {
			if d := maxDiff(t, name, a[name], b[name]); d != 0 {
				t.Fatalf("step %d %s: restored stream differs by %g", i, name, d)
			}
		}
	}
	// truncated states are refused, and leave the stream as it was
	for _, n := range []int{0, 8, 20, len(state) / 2, len(state) - 1} {
		if err := fresh.Restore(state[:n]); err == nil {
			t.Errorf("restore of %d of %d bytes succeeded", n, len(state))
		}
	}
	if fresh.Steps() != 30 {
		t.Errorf("failed restores changed the stream: Steps() = %d", fresh.Steps())
	}
}

// FuzzStreamRestore: Restore never panics on damaged states.
func FuzzStreamRestore(f *testing.F) {
	_, st := seedStream(f)
	st.Step(map[string]*tensor.Tensor{"input": tensor.From([]int{2, 1, 1}, []float32{1, 2})})
	state, _ := st.State()
	f.Add(state)
	f.Add([]byte("MTLSTRM\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = st.Restore(b)
	})
}

// TestStreamStepBatch: streams stepped together in one batched run give
// what each gives alone, whatever their rows.
func TestStreamStepBatch(t *testing.T) {
	sess, scratch := seedStream(t)
	m := sess.Model()
	rows := []int{1, 2, 1}
	var batched, alone []*runtime.Stream
	var xs []map[string]*tensor.Tensor
	for i, r := range rows {
		a, err := scratch.Fork()
		if err != nil {
			t.Fatal(err)
		}
		b, err := scratch.Fork()
		if err != nil {
			t.Fatal(err)
		}
		batched, alone = append(batched, a), append(alone, b)
		xs = append(xs, streamInputs(m, 1, r, 12, rand.New(rand.NewPCG(uint64(i), 7))))
	}
	for step := 0; step < 12; step += 2 {
		in := make([]map[string]*tensor.Tensor, len(rows))
		for i := range rows {
			in[i] = sliceAll(xs[i], 1, step, step+2)
		}
		got, err := scratch.StepBatch(batched, in)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range alone {
			want, err := s.Step(in[i])
			if err != nil {
				t.Fatal(err)
			}
			for name, w := range want {
				if d := maxDiff(t, name, got[i][name], w); d != 0 {
					t.Fatalf("step %d stream %d %s: batched differs by %g", step, i, name, d)
				}
			}
		}
	}
	for i := range rows {
		if batched[i].Steps() != 12 {
			t.Errorf("stream %d: %d steps", i, batched[i].Steps())
		}
	}
	fresh, _ := scratch.Fork()
	if _, err := scratch.StepBatch([]*runtime.Stream{batched[0], fresh}, []map[string]*tensor.Tensor{sliceAll(xs[0], 1, 0, 1), sliceAll(xs[0], 1, 0, 1)}); err == nil {
		t.Error("a fresh and a started stream were batched together")
	}
}
