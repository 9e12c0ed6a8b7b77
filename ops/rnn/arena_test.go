package rnn

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// allocRuns is how many runs an allocation check averages over.
// testing.AllocsPerRun divides the allocations by the runs in integers,
// so an allocation in every run shows at any count and one in a few runs
// at none; more runs only cost time, a minute or more per test under the
// emulators scripts/test.sh runs these tests in.
const allocRuns = 5

var (
	biDir   = graph.Attrs{"direction": {Type: graph.AttrString, String: "bidirectional"}}
	revDir  = graph.Attrs{"direction": {Type: graph.AttrString, String: "reverse"}}
	layout1 = graph.Attrs{"layout": {Type: graph.AttrInt, Int: 1}}
	lbr1    = graph.Attrs{"linear_before_reset": {Type: graph.AttrInt, Int: 1}}
)

func merge(as ...graph.Attrs) graph.Attrs {
	out := graph.Attrs{}
	for _, a := range as {
		for k, v := range a {
			out[k] = v
		}
	}
	return out
}

type arenaCase struct {
	name    string
	op      string
	attrs   graph.Attrs
	lens    bool
	initial bool
	peep    bool // LSTM peepholes (the general, unfused path)
	in      int
}

func arenaCases() []arenaCase {
	var out []arenaCase
	for _, op := range []string{"LSTM", "GRU", "RNN"} {
		dirs := []struct {
			name  string
			attrs graph.Attrs
		}{{"fwd", graph.Attrs{}}, {"bidi", biDir}, {"rev_layout1", merge(revDir, layout1)}, {"bidi_layout1", merge(biDir, layout1)}}
		for _, dir := range dirs {
			for _, lens := range []bool{false, true} {
				for _, initial := range []bool{false, true} {
					variants := []graph.Attrs{dir.attrs}
					if op == "GRU" {
						variants = append(variants, merge(dir.attrs, lbr1))
					}
					for vi, attrs := range variants {
						for _, in := range []int{3, 20} {
							c := arenaCase{name: fmt.Sprintf("%s_%s_v%d_lens%v_init%v_I%d", op, dir.name, vi, lens, initial, in),
								op: op, attrs: attrs, lens: lens, initial: initial, in: in}
							out = append(out, c)
							if op == "LSTM" && in == 3 {
								c.peep = true
								c.name += "_peep"
								out = append(out, c)
							}
						}
					}
				}
			}
		}
	}
	return out
}

func (c arenaCase) randCase(seed uint64, T, N, H int) randCase {
	var lens []int32
	if c.lens {
		lens = make([]int32, N)
		for i := range lens {
			lens[i] = int32(i % (T + 1))
		}
	}
	rc := newRandCase(seed, c.op, c.attrs, T, N, c.in, H, lens, c.initial)
	if c.op == "LSTM" && !c.peep {
		rc.inputs = rc.inputs[:7]
	}
	return rc
}

func buildOp(t testing.TB, rc randCase, threads int, constW bool) ops.ArenaOp {
	cfg := &ops.Config{OpType: rc.op, Opset: 14, Attrs: rc.attrs, NumInputs: len(rc.inputs), NumOutputs: rc.nOut, Threads: threads}
	if !constW {
		cfg.ConstInputs = make([]bool, len(rc.inputs))
		cfg.ConstInputs[0] = true // X may be anything; W, R, B, P are not constant
	}
	op, err := ops.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return op.(ops.ArenaOp)
}

// TestArenaSteadyStateAllocs: with a reused arena, a run on one thread
// allocates nothing, on every path (fused and general cells, both
// directions, layouts, sequence_lens, initial states, per-run weights).
func TestArenaSteadyStateAllocs(t *testing.T) {
	for _, c := range arenaCases() {
		for _, constW := range []bool{true, false} {
			rc := c.randCase(1, 6, 9, 5)
			op := buildOp(t, rc, 1, constW)
			var a ops.Arena
			run := func() {
				a.Reset()
				if _, err := op.RunWith(&a, rc.inputs); err != nil {
					t.Fatal(err)
				}
			}
			run()
			if n := testing.AllocsPerRun(allocRuns, run); n != 0 {
				t.Errorf("%s constW=%v: %v allocations per steady-state run, want 0", c.name, constW, n)
			}
		}
	}
}

// TestArenaMatchesFresh: arena runs (reused, after runs of other inputs)
// give bit-identical results to runs without an arena, sequential and
// parallel.
func TestArenaMatchesFresh(t *testing.T) {
	saved := parallelWork
	defer func() { parallelWork = saved }()
	for _, c := range arenaCases() {
		for _, threads := range []int{1, 3} {
			parallelWork = 0
			rc := c.randCase(2, 5, 17, 6)
			other := c.randCase(3, 5, 17, 6)
			op := buildOp(t, rc, threads, false)
			want := mustRun(t, op, rc.inputs)
			var a ops.Arena
			for k := 0; k < 3; k++ {
				a.Reset()
				if _, err := op.RunWith(&a, other.inputs); err != nil {
					t.Fatal(err)
				}
				a.Reset()
				got, err := op.RunWith(&a, rc.inputs)
				if err != nil {
					t.Fatal(err)
				}
				equalOutputs(t, c.name, want, got)
			}
		}
	}
}

// TestFusedMatchesGeneral: the fused cell kernels (assembly or pure Go)
// agree with the GEMM-plus-activations path on every layout, direction,
// sequence_lens and initial state combination they handle.
func TestFusedMatchesGeneral(t *testing.T) {
	defer func() { forceFused = 0 }()
	for _, c := range arenaCases() {
		if c.peep {
			continue
		}
		for _, H := range []int{5, 16, 33} {
			rc := c.randCase(4, 7, 11, H)
			forceFused = -1
			want := mustRun(t, buildOp(t, rc, 1, true), rc.inputs)
			for _, mode := range []int{0, 1} {
				if mode == 1 && linalg.CellAccelerated() {
					continue // mode 1 forces what mode 0 chose: the assembly cells
				}
				forceFused = mode
				got := mustRun(t, buildOp(t, rc, 1, true), rc.inputs)
				for i := range want {
					x, y := want[i].Float32s(), got[i].Float32s()
					for k := range x {
						if d := math.Abs(float64(x[k] - y[k])); d > 2e-6+2e-6*math.Abs(float64(x[k])) {
							t.Fatalf("%s H=%d mode %d: output %d element %d: fused %v, general %v", c.name, H, mode, i, k, y[k], x[k])
						}
					}
				}
			}
		}
	}
}

// Weights that are not constant are packed per run: rewriting them in
// place (as an arena does with its buffers) must be noticed every time.
func TestNonConstWeightsNotCached(t *testing.T) {
	for _, op := range []string{"LSTM", "GRU"} {
		a := newRandCase(11, op, lbr1, 4, 3, 3, 4, nil, false)
		b := newRandCase(12, op, lbr1, 4, 3, 3, 4, nil, false)
		if op == "LSTM" {
			a.inputs, b.inputs = a.inputs[:4], b.inputs[:4]
		}
		wantB := mustRun(t, buildOp(t, b, 1, true), append([]*tensor.Tensor{a.inputs[0]}, b.inputs[1:]...))
		k := buildOp(t, a, 1, false)
		var ar ops.Arena
		ar.Reset()
		if _, err := k.RunWith(&ar, a.inputs); err != nil {
			t.Fatal(err)
		}
		// same buffers, new contents (one sample would not notice a change
		// everywhere but the sampled positions; here everything changes)
		for i := 1; i < 4; i++ {
			copy(a.inputs[i].Float32s(), b.inputs[i].Float32s())
		}
		ar.Reset()
		got, err := k.RunWith(&ar, a.inputs)
		if err != nil {
			t.Fatal(err)
		}
		equalOutputs(t, op, wantB, got)
	}
}

// TestArenaParallelAllocs: a parallel run reuses its job list and
// WaitGroup and takes its helper from the pool: no allocations either.
func TestArenaParallelAllocs(t *testing.T) {
	saved := parallelWork
	defer func() { parallelWork = saved }()
	parallelWork = 0
	for _, c := range []arenaCase{{name: "lstm", op: "LSTM", attrs: graph.Attrs{}, in: 1},
		{name: "gru_bidi", op: "GRU", attrs: merge(lbr1, biDir), in: 8}} {
		rc := c.randCase(1, 10, 64, 32)
		op := buildOp(t, rc, 2, true)
		var a ops.Arena
		run := func() {
			a.Reset()
			if _, err := op.RunWith(&a, rc.inputs); err != nil {
				t.Fatal(err)
			}
		}
		run()
		if n := testing.AllocsPerRun(allocRuns, run); n != 0 {
			t.Errorf("%s at 2 threads: %v allocations per run, want 0", c.name, n)
		}
	}
}

// Omitted optional inputs (P of an LSTM, B) count as constant: the packed
// weights are cached even when ConstInputs is shorter than 8 or marks the
// empty slots false, and packing happens once.
func TestConstWeightsCachedWithOmittedInputs(t *testing.T) {
	rc := newRandCase(1, "LSTM", graph.Attrs{}, 3, 2, 2, 4, nil, false)
	rc.inputs = rc.inputs[:4]
	op, err := ops.New(&ops.Config{OpType: "LSTM", Opset: 14, Attrs: graph.Attrs{}, NumInputs: 4, NumOutputs: 3,
		ConstInputs: []bool{false, true, true, true}})
	if err != nil {
		t.Fatal(err)
	}
	k := op.(ops.ArenaOp)
	var a ops.Arena
	for i := 0; i < 2; i++ {
		a.Reset()
		if _, err := k.RunWith(&a, rc.inputs); err != nil {
			t.Fatal(err)
		}
	}
	o := op.(*rnnOp)
	if _, ok := o.cache.(*weights[float32]); !ok {
		t.Fatal("constant weights were not cached")
	}
}

// TestConcurrentParallelRuns: executors running one op at once, each with
// its own arena and a thread split, share the helper pool; results equal a
// sequential run (a helper delayed behind another run's work must not
// disturb a later run that reuses its job list).
func TestConcurrentParallelRuns(t *testing.T) {
	saved := parallelWork
	defer func() { parallelWork = saved }()
	parallelWork = 0
	for _, c := range []arenaCase{{name: "lstm", op: "LSTM", attrs: graph.Attrs{}, in: 1},
		{name: "gru_bidi", op: "GRU", attrs: merge(lbr1, biDir), in: 3, lens: true}} {
		rc := c.randCase(2, 6, 33, 7)
		want := mustRun(t, buildOp(t, rc, 1, true), rc.inputs)
		op := buildOp(t, rc, 3, true)
		var wg sync.WaitGroup
		errs := make(chan string, 16)
		for g := 0; g < 6; g++ {
			wg.Go(func() {
				var a ops.Arena
				for k := 0; k < 30; k++ {
					a.Reset()
					got, err := op.RunWith(&a, rc.inputs)
					if err != nil {
						errs <- err.Error()
						return
					}
					for i := range want {
						x, y := want[i].Float32s(), got[i].Float32s()
						for e := range x {
							if x[e] != y[e] {
								errs <- fmt.Sprintf("output %d element %d: %v vs %v", i, e, y[e], x[e])
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
			t.Fatalf("%s: %s", c.name, e)
		}
	}
}
