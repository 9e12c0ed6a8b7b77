package rnn

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

func randSlice(r *rand.Rand, n int, scale float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = (r.Float32()*2 - 1) * scale
	}
	return s
}

func TestGemmNT(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ m, n, k int }{
		{1, 1, 1}, {1, 4, 3}, {2, 5, 7}, {3, 7, 1}, {5, 9, 4}, {70, 13, 5}, {130, 256, 64}, {4, 3, 0}, {0, 4, 4},
	} {
		lda, ldc := tc.k+1, tc.n+2
		a := randSlice(r, tc.m*lda, 1)
		b := randSlice(r, tc.n*tc.k, 1)
		bias := randSlice(r, tc.n, 1)
		for _, withBias := range []bool{false, true} {
			c := randSlice(r, tc.m*ldc, 1)
			orig := append([]float32(nil), c...)
			var bs []float32
			if withBias {
				bs = bias
			}
			p := packRows(nil, b, 0, tc.n, tc.k)
			gemmNT(tc.m, a, lda, &p, bs, c, ldc, nil)
			for i := 0; i < tc.m; i++ {
				for j := 0; j < ldc; j++ {
					var want float32
					if j >= tc.n {
						want = orig[i*ldc+j] // padding columns untouched
					} else {
						var s float64
						if withBias {
							s = float64(bias[j])
						}
						for p := 0; p < tc.k; p++ {
							s += float64(a[i*lda+p]) * float64(b[j*tc.k+p])
						}
						want = float32(s)
					}
					if d := c[i*ldc+j] - want; d > 1e-4 || d < -1e-4 {
						t.Fatalf("%+v bias=%v: c[%d,%d] = %v, want %v", tc, withBias, i, j, c[i*ldc+j], want)
					}
				}
			}
		}
	}
}

type randCase struct {
	op     string
	attrs  graph.Attrs
	inputs []*tensor.Tensor
	nOut   int
}

// newRandCase builds a random node: seq T, batch N, input I, hidden H.
func newRandCase(seed uint64, opType string, attrs graph.Attrs, T, N, I, H int, lens []int32, initial bool) randCase {
	r := rand.New(rand.NewPCG(seed, 7))
	g := map[string]int{"LSTM": 4, "GRU": 3, "RNN": 1}[opType]
	nd := 1
	if attrs.String("direction", "") == "bidirectional" {
		nd = 2
	}
	xs, ss := []int{T, N, I}, []int{nd, N, H}
	if attrs.Int("layout", 0) == 1 {
		xs, ss = []int{N, T, I}, []int{N, nd, H}
	}
	in := []*tensor.Tensor{
		tensor.From(xs, randSlice(r, T*N*I, 1)),
		tensor.From([]int{nd, g * H, I}, randSlice(r, nd*g*H*I, 0.5)),
		tensor.From([]int{nd, g * H, H}, randSlice(r, nd*g*H*H, 0.5)),
		tensor.From([]int{nd, 2 * g * H}, randSlice(r, nd*2*g*H, 0.5)),
		nil, nil,
	}
	if lens != nil {
		in[4] = tensor.From([]int{N}, lens)
	}
	if initial {
		in[5] = tensor.From(ss, randSlice(r, nd*N*H, 0.5))
	}
	nOut := 2
	if opType == "LSTM" {
		nOut = 3
		in = append(in, nil, tensor.From([]int{nd, 3 * H}, randSlice(r, nd*3*H, 0.5)))
		if initial {
			in[6] = tensor.From(ss, randSlice(r, nd*N*H, 0.5))
		}
	}
	return randCase{op: opType, attrs: attrs, inputs: in, nOut: nOut}
}

func (rc randCase) build(t testing.TB) ops.Op {
	op, err := ops.New(&ops.Config{OpType: rc.op, Opset: 14, Attrs: rc.attrs, NumInputs: len(rc.inputs), NumOutputs: rc.nOut, Threads: 4})
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func mustRun(t testing.TB, op ops.Op, in []*tensor.Tensor) []*tensor.Tensor {
	out, err := op.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func equalOutputs(t *testing.T, what string, a, b []*tensor.Tensor) {
	t.Helper()
	for i := range a {
		x, y := a[i].Float32s(), b[i].Float32s()
		for k := range x {
			if x[k] != y[k] {
				t.Fatalf("%s: output %d element %d differs: %v vs %v", what, i, k, x[k], y[k])
			}
		}
	}
}

var bigCases = []struct {
	name  string
	op    string
	attrs graph.Attrs
}{
	{"lstm_bidi_layout0", "LSTM", graph.Attrs{"direction": {Type: graph.AttrString, String: "bidirectional"}}},
	{"lstm_layout1", "LSTM", graph.Attrs{"layout": {Type: graph.AttrInt, Int: 1}}},
	{"gru_lbr0_reverse", "GRU", graph.Attrs{"direction": {Type: graph.AttrString, String: "reverse"}}},
	{"gru_lbr1_bidi_layout1", "GRU", graph.Attrs{"linear_before_reset": {Type: graph.AttrInt, Int: 1},
		"direction": {Type: graph.AttrString, String: "bidirectional"}, "layout": {Type: graph.AttrInt, Int: 1}}},
	{"rnn_bidi", "RNN", graph.Attrs{"direction": {Type: graph.AttrString, String: "bidirectional"}}},
}

// The parallel split over batch rows and directions must give bit-identical
// results to the sequential path.
func TestParallelMatchesSequential(t *testing.T) {
	saved := parallelWork
	defer func() { parallelWork = saved }()
	const N = 37
	lens := make([]int32, N)
	for i := range lens {
		lens[i] = int32(1 + i%7)
	}
	for _, bc := range bigCases {
		for _, l := range [][]int32{nil, lens} {
			rc := newRandCase(3, bc.op, bc.attrs, 7, N, 5, 6, l, true)
			parallelWork = 1 << 62
			seq := mustRun(t, rc.build(t), rc.inputs)
			parallelWork = 0
			par := mustRun(t, rc.build(t), rc.inputs)
			equalOutputs(t, bc.name, seq, par)
		}
	}
}

// Concurrent runs of one op share the weight cache (scratch is per run).
func TestConcurrentRuns(t *testing.T) {
	for _, bc := range bigCases {
		rc := newRandCase(5, bc.op, bc.attrs, 5, 9, 4, 5, nil, true)
		op := rc.build(t)
		want := mustRun(t, op, rc.inputs)
		var wg sync.WaitGroup
		errs := make(chan string, 16)
		for g := 0; g < 8; g++ {
			wg.Go(func() {
				for k := 0; k < 20; k++ {
					got, err := op.Run(rc.inputs)
					if err != nil {
						errs <- err.Error()
						return
					}
					for i := range want {
						a, b := want[i].Float32s(), got[i].Float32s()
						for e := range a {
							if a[e] != b[e] {
								errs <- "mismatch"
								return
							}
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Fatalf("%s: %s", bc.name, e)
		}
	}
}

// New weight tensors must not be served from the cache of old ones.
func TestCacheFollowsWeights(t *testing.T) {
	a := newRandCase(11, "LSTM", graph.Attrs{}, 4, 3, 3, 4, nil, false)
	b := newRandCase(12, "LSTM", graph.Attrs{}, 4, 3, 3, 4, nil, false)
	opA := a.build(t)
	wantA := mustRun(t, opA, a.inputs)
	wantB := mustRun(t, b.build(t), b.inputs)
	// Same op, alternating weights (X shared).
	mixed := append([]*tensor.Tensor{a.inputs[0]}, b.inputs[1:]...)
	wantMixed := mustRun(t, b.build(t), mixed)
	for k := 0; k < 3; k++ {
		equalOutputs(t, "A", wantA, mustRun(t, opA, a.inputs))
		equalOutputs(t, "mixed", wantMixed, mustRun(t, opA, mixed))
	}
	_ = wantB
	// Weights rewritten in place (same buffer, new values) are noticed.
	w := append([]float32(nil), a.inputs[1].Float32s()...)
	copy(a.inputs[1].Float32s(), b.inputs[1].Float32s())
	wantNew := mustRun(t, a.build(t), a.inputs)
	equalOutputs(t, "rewritten W", wantNew, mustRun(t, opA, a.inputs))
	copy(a.inputs[1].Float32s(), w)
	// Dropping the bias and peepholes changes the key too.
	noB := append([]*tensor.Tensor(nil), a.inputs...)
	noB[3], noB[7] = nil, nil
	r1 := mustRun(t, opA, noB)
	r2 := mustRun(t, a.build(t), noB)
	equalOutputs(t, "no bias", r2, r1)
}

// float64 inputs compute in float64 and agree with float32 to float32
// precision.
func TestFloat64(t *testing.T) {
	for _, bc := range bigCases {
		rc := newRandCase(9, bc.op, bc.attrs, 5, 4, 3, 5, []int32{5, 1, 3, 4}, true)
		in64 := make([]*tensor.Tensor, len(rc.inputs))
		for i, x := range rc.inputs {
			if x == nil || x.DType != tensor.Float32 {
				in64[i] = x
				continue
			}
			v, _ := tensor.AsFloat64(x)
			in64[i] = tensor.From(x.Shape, v)
		}
		op := rc.build(t)
		o32 := mustRun(t, op, rc.inputs)
		o64 := mustRun(t, op, in64)
		for i := range o32 {
			if o64[i].DType != tensor.Float64 {
				t.Fatalf("%s: output %d is %v", bc.name, i, o64[i].DType)
			}
			a, b := o32[i].Float32s(), o64[i].Float64s()
			for k := range a {
				if d := float64(a[k]) - b[k]; d > 1e-5 || d < -1e-5 {
					t.Fatalf("%s: output %d element %d: %v vs %v", bc.name, i, k, a[k], b[k])
				}
			}
		}
	}
}

func TestEdgeShapes(t *testing.T) {
	// Zero steps: Y is empty and the final state is the initial state.
	rc := newRandCase(1, "GRU", graph.Attrs{}, 0, 2, 3, 4, nil, true)
	out := mustRun(t, rc.build(t), rc.inputs)
	if !tensor.SameShape(out[0].Shape, []int{0, 1, 2, 4}) {
		t.Fatalf("Y shape %v", out[0].Shape)
	}
	equalOutputs(t, "Y_h", []*tensor.Tensor{rc.inputs[5]}, out[1:2])
	// Zero batch.
	rc = newRandCase(1, "LSTM", graph.Attrs{"layout": {Type: graph.AttrInt, Int: 1}}, 3, 0, 3, 4, nil, false)
	out = mustRun(t, rc.build(t), rc.inputs)
	if !tensor.SameShape(out[0].Shape, []int{0, 3, 1, 4}) || !tensor.SameShape(out[2].Shape, []int{0, 1, 4}) {
		t.Fatalf("shapes %v %v", out[0].Shape, out[2].Shape)
	}
	// A zero length row keeps its initial state and has zero outputs.
	rc = newRandCase(2, "RNN", graph.Attrs{}, 3, 2, 2, 3, []int32{0, 3}, true)
	out = mustRun(t, rc.build(t), rc.inputs)
	h0, yh, y := rc.inputs[5].Float32s(), out[1].Float32s(), out[0].Float32s()
	for k := 0; k < 3; k++ {
		if yh[k] != h0[k] {
			t.Fatalf("Y_h of empty row: %v, want %v", yh[:3], h0[:3])
		}
		for s := 0; s < 3; s++ {
			if y[s*6+k] != 0 {
				t.Fatalf("Y of empty row not zero: %v", y)
			}
		}
	}
	// Fewer outputs requested.
	op, err := ops.New(&ops.Config{OpType: "LSTM", Opset: 14, Attrs: graph.Attrs{}, NumOutputs: 1})
	if err != nil {
		t.Fatal(err)
	}
	lc := newRandCase(4, "LSTM", graph.Attrs{}, 2, 2, 2, 2, nil, false)
	if out := mustRun(t, op, lc.inputs); len(out) != 1 {
		t.Fatalf("got %d outputs, want 1", len(out))
	}
}

func TestErrors(t *testing.T) {
	str := func(s string) graph.Attr { return graph.Attr{Type: graph.AttrString, String: s} }
	i64 := func(v int64) graph.Attr { return graph.Attr{Type: graph.AttrInt, Int: v} }
	for _, tc := range []struct {
		op    string
		attrs graph.Attrs
		want  string
	}{
		{"LSTM", graph.Attrs{"direction": str("sideways")}, "direction"},
		{"GRU", graph.Attrs{"layout": i64(2)}, "layout"},
		{"LSTM", graph.Attrs{"clip": {Type: graph.AttrFloat, Float: -1}}, "clip"},
		{"LSTM", graph.Attrs{"input_forget": i64(3)}, "input_forget"},
		{"GRU", graph.Attrs{"linear_before_reset": i64(2)}, "linear_before_reset"},
		{"RNN", graph.Attrs{"activations": {Type: graph.AttrStrings, Strings: []string{"Swish"}}}, "Swish"},
		{"GRU", graph.Attrs{"activations": {Type: graph.AttrStrings, Strings: []string{"Sigmoid"}}}, "activations"},
		{"LSTM", graph.Attrs{"hidden_size": i64(-3)}, "hidden_size"},
	} {
		_, err := ops.New(&ops.Config{OpType: tc.op, Opset: 14, Attrs: tc.attrs, NumOutputs: 2})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: got error %v, want one naming %q", tc.op, tc.attrs, err, tc.want)
		}
	}

	base := newRandCase(1, "LSTM", graph.Attrs{"hidden_size": i64(4)}, 3, 2, 3, 4, nil, true)
	op := base.build(t)
	mod := func(i int, t *tensor.Tensor) []*tensor.Tensor {
		in := append([]*tensor.Tensor(nil), base.inputs...)
		in[i] = t
		return in
	}
	f := func(shape ...int) *tensor.Tensor {
		n, _ := tensor.NumElements(shape)
		return tensor.From(shape, make([]float32, n))
	}
	for _, tc := range []struct {
		name string
		in   []*tensor.Tensor
		want string
	}{
		{"int X", mod(0, tensor.From([]int{3, 2, 3}, make([]int32, 18))), "input 0"},
		{"X rank", mod(0, f(3, 6)), "input 0"},
		{"W dtype", mod(1, tensor.From([]int{1, 16, 3}, make([]float64, 48))), "input 1"},
		{"W shape", mod(1, f(1, 16, 2)), "input 1"},
		{"R shape", mod(2, f(1, 16, 5)), "input 2"},
		{"B shape", mod(3, f(1, 16)), "input 3"},
		{"lens dtype", mod(4, tensor.From([]int{2}, []float32{1, 2})), "input 4"},
		{"lens range", mod(4, tensor.From([]int{2}, []int32{4, 1})), "input 4"},
		{"lens shape", mod(4, tensor.From([]int{3}, []int32{1, 1, 1})), "input 4"},
		{"h0 shape", mod(5, f(2, 1, 4)), "input 5"},
		{"c0 shape", mod(6, f(1, 2, 5)), "input 6"},
		{"P shape", mod(7, f(1, 4)), "input 7"},
		{"missing R", mod(2, nil), "input 2"},
		{"too few", base.inputs[:2], "inputs"},
		{"huge", mod(0, tensor.From([]int{1 << 16, 1 << 15, 0}, []float32{})), "input 0"},
	} {
		_, err := op.Run(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got error %v, want one naming %q", tc.name, err, tc.want)
		}
	}
}

func benchOp(b *testing.B, opType string, attrs graph.Attrs, T, N, I, H int) {
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads%d", threads), func(b *testing.B) {
			rc := newRandCase(1, opType, attrs, T, N, I, H, nil, false)
			if opType == "LSTM" {
				rc.inputs = rc.inputs[:4] // no peepholes: the common export
			}
			op, err := ops.New(&ops.Config{OpType: rc.op, Opset: 14, Attrs: rc.attrs, NumInputs: len(rc.inputs), NumOutputs: rc.nOut, Threads: threads})
			if err != nil {
				b.Fatal(err)
			}
			var a ops.Arena
			run := func() {
				a.Reset()
				if _, err := op.(ops.ArenaOp).RunWith(&a, rc.inputs); err != nil {
					b.Fatal(err)
				}
			}
			run()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				run()
			}
		})
	}
}

func BenchmarkLSTM64_T50_B1(b *testing.B)  { benchOp(b, "LSTM", graph.Attrs{}, 50, 1, 1, 64) }
func BenchmarkLSTM64_T50_B64(b *testing.B) { benchOp(b, "LSTM", graph.Attrs{}, 50, 64, 1, 64) }
func BenchmarkGRU32_I8_T50_B1(b *testing.B) {
	benchOp(b, "GRU", graph.Attrs{"linear_before_reset": {Type: graph.AttrInt, Int: 1}}, 50, 1, 8, 32)
}
func BenchmarkGRU32_I8_T50_B64(b *testing.B) {
	benchOp(b, "GRU", graph.Attrs{"linear_before_reset": {Type: graph.AttrInt, Int: 1}}, 50, 64, 8, 32)
}
func BenchmarkGRU32lbr0_I8_T50_B1(b *testing.B) { benchOp(b, "GRU", graph.Attrs{}, 50, 1, 8, 32) }
func BenchmarkRNN32_I8_T50_B64(b *testing.B)    { benchOp(b, "RNN", graph.Attrs{}, 50, 64, 8, 32) }

func BenchmarkGemmNT_64x256x64(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	m, n, k := 64, 256, 64
	a := randSlice(r, m*k, 1)
	p := packRows(nil, randSlice(r, n*k, 1), 0, n, k)
	c := make([]float32, m*n)
	work := make([]float32, linalg.WorkSize(m, k))
	b.ReportAllocs()
	for b.Loop() {
		gemmNT(m, a, k, &p, nil, c, n, work)
	}
	b.ReportMetric(float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFMA/s")
}
