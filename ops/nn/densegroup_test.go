package nn

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/internal/opstest"
	"github.com/mtlrun/mtlrun/tensor"
)

// groupAttrs builds DenseGroup's attributes; acts nil leaves both
// activation attributes out.
func groupAttrs(transB int, acts []string, alphas []float32) graph.Attrs {
	at := graph.Attrs{"transB": aInt(int64(transB))}
	if acts != nil {
		at["activations"] = graph.Attr{Type: graph.AttrStrings, Strings: acts}
		at["activation_alphas"] = graph.Attr{Type: graph.AttrFloats, Floats: alphas}
	}
	return at
}

func newGroup(tb testing.TB, attrs graph.Attrs, heads, threads int, constIn []bool) ops.ArenaOp {
	tb.Helper()
	op, err := ops.New(&ops.Config{Domain: "ai.mtlrun", OpType: "DenseGroup", Opset: 1, Attrs: attrs,
		NumInputs: 1 + 2*heads, NumOutputs: heads, Threads: threads, ConstInputs: constIn})
	if err != nil {
		tb.Fatalf("DenseGroup: %v", err)
	}
	return op.(ops.ArenaOp)
}

// groupCase is one set of heads on one A.
type groupCase struct {
	a      *tensor.Tensor
	ws, cs []*tensor.Tensor // cs[i] nil: head i has no bias
	transB int
	acts   []string
	alphas []float32
}

func (c *groupCase) inputs() []*tensor.Tensor {
	in := []*tensor.Tensor{c.a}
	for i := range c.ws {
		in = append(in, c.ws[i], c.cs[i])
	}
	return in
}

// perHead is what the separate Dense nodes give, head by head.
func (c *groupCase) perHead(tb testing.TB, threads int) []*tensor.Tensor {
	tb.Helper()
	var want []*tensor.Tensor
	for i := range c.ws {
		attrs := graph.Attrs{"transB": aInt(int64(c.transB))}
		if c.acts != nil && c.acts[i] != "" {
			attrs["activation"] = aStr(c.acts[i])
			attrs["activation_alpha"] = aFloat(c.alphas[i])
		}
		in := []*tensor.Tensor{c.a, c.ws[i]}
		if c.cs[i] != nil {
			in = append(in, c.cs[i])
		}
		want = append(want, runOp(tb, newOpCfg(tb, "ai.mtlrun", "Dense", 1, attrs, len(in), threads), in...)[0])
	}
	return want
}

// check runs the group every way a runtime may (Run with cached weights,
// RunWith on a reused arena with weights packed per run) and compares each
// output with Dense's, bit for bit and shape for shape.
func (c *groupCase) check(tb testing.TB, name string, threads int) {
	tb.Helper()
	want := c.perHead(tb, threads)
	attrs := groupAttrs(c.transB, c.acts, c.alphas)
	h := len(c.ws)
	in := c.inputs()
	cached := newGroup(tb, attrs, h, threads, nil)
	varying := newGroup(tb, attrs, h, threads, make([]bool, len(in)))
	var ar ops.Arena
	for run := 0; run < 2; run++ {
		got, err := cached.Run(in)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		ar.Reset()
		gotA, err := varying.RunWith(&ar, in)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		if len(got) != h || len(gotA) != h {
			tb.Fatalf("%s: %d and %d outputs, want %d", name, len(got), len(gotA), h)
		}
		for i := range want {
			sameBits(tb, fmt.Sprintf("%s head %d", name, i), got[i], want[i])
			sameBits(tb, fmt.Sprintf("%s head %d (arena, packed per run)", name, i), gotA[i], want[i])
		}
	}
}

// makeCase draws a case: biasMode 0 every head has C, 1 none has, 2 every
// other head has one; C alternates between [N] and [1 N]; actShift rotates
// the activations over the heads.
func makeCase(rng *rand.Rand, aShape []int, k int, ns []int, transB, biasMode, actShift int) *groupCase {
	c := &groupCase{a: randF32(rng, append(append([]int{}, aShape...), k)...), transB: transB}
	all := activations
	for i, n := range ns {
		if transB == 1 {
			c.ws = append(c.ws, randF32(rng, n, k))
		} else {
			c.ws = append(c.ws, randF32(rng, k, n))
		}
		var bias *tensor.Tensor
		if biasMode == 0 || (biasMode == 2 && i%2 == 0) {
			if i%2 == 0 {
				bias = randF32(rng, n)
			} else {
				bias = randF32(rng, 1, n)
			}
		}
		c.cs = append(c.cs, bias)
		c.acts = append(c.acts, all[(i+actShift)%len(all)])
		c.alphas = append(c.alphas, 0.05+0.01*float32(i))
	}
	return c
}

// TestDenseGroupMatchesDense: every head's output is bit for bit the
// separate Dense node's, over rows, inner sizes (one and several k-blocks,
// K = 0 included), head widths (single and several column panels, heads
// straddling panels), both transB, every activation on every head slot,
// with and without C (both shapes), one and two threads.
func TestDenseGroupMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	ms := []int{1, 2, 3, 7, 64, 65, 200}
	ks := []int{1, 7, 64, 128, 385, 400}
	heads := [][]int{{1, 5, 1, 8}, {1, 1}, {16, 3}, {33, 2}, {8}}
	if testing.Short() {
		ms, ks = []int{1, 7, 65}, []int{7, 385}
	}
	for _, m := range ms {
		for _, k := range ks {
			for _, ns := range heads {
				for transB := 0; transB <= 1; transB++ {
					for shift := range activations {
						biasMode := shift % 3
						c := makeCase(rng, []int{m}, k, ns, transB, biasMode, shift)
						for _, th := range []int{1, 2} {
							c.check(t, fmt.Sprintf("M%d K%d N%v transB%d bias%d acts%v t%d", m, k, ns, transB, biasMode, c.acts, th), th)
						}
					}
				}
			}
		}
	}
}

// TestDenseGroupShapes: A of rank 1 (one row; a [1 N] C makes Dense's
// output [1 N], and the group's too), rank 3 (leading dims are rows), K = 0,
// M = 0, large splits over threads, and the activation attributes left out.
func TestDenseGroupShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	for _, tc := range []struct {
		name   string
		aShape []int
		k      int
		ns     []int
		bias   int
	}{
		{"rank1", nil, 64, []int{1, 5, 1, 8}, 0},
		{"rank1 no C", nil, 64, []int{1, 5}, 1},
		{"rank3", []int{4, 5}, 64, []int{1, 5, 1, 8}, 2},
		{"rank4", []int{2, 3, 5}, 385, []int{16, 3}, 0},
		{"K0", []int{5}, 0, []int{1, 5}, 0},
		{"M0", []int{0}, 16, []int{3, 2}, 0},
		{"split", []int{256}, 400, []int{33, 2}, 0},
		{"split one k-block", []int{2000}, 128, []int{5, 3}, 2},
		{"split rank3", []int{7, 300}, 64, []int{64, 40, 5}, 0},
	} {
		for transB := 0; transB <= 1; transB++ {
			for shift := range activations {
				c := makeCase(rng, tc.aShape, tc.k, tc.ns, transB, tc.bias, shift)
				for _, th := range []int{1, 2, 3} {
					c.check(t, fmt.Sprintf("%s transB%d acts%v t%d", tc.name, transB, c.acts, th), th)
				}
			}
		}
	}
	// no activation attributes at all: plain products
	c := makeCase(rng, []int{9}, 20, []int{1, 5, 1, 8}, 1, 0, 0)
	c.acts, c.alphas = nil, nil
	c.check(t, "no activations", 1)
	// activations without alphas: LeakyRelu takes Dense's default 0.01
	c = makeCase(rng, []int{9}, 20, []int{3, 2}, 0, 0, 2)
	c.acts, c.alphas = []string{"LeakyRelu", "LeakyRelu"}, []float32{0.01, 0.01}
	want := c.perHead(t, 1)
	at := groupAttrs(0, c.acts, nil)
	delete(at, "activation_alphas")
	got := runOp(t, newGroup(t, at, 2, 1, nil), c.inputs()...)
	for i := range want {
		sameBits(t, "default alpha", got[i], want[i])
	}
}

// TestDenseGroupTrailingC: the last head's absent C may also be left out
// of the input list altogether.
func TestDenseGroupTrailingC(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	c := makeCase(rng, []int{6}, 10, []int{2, 3}, 1, 2, 1)
	want := c.perHead(t, 1)
	in := c.inputs()
	op, err := ops.New(&ops.Config{Domain: "ai.mtlrun", OpType: "DenseGroup", Opset: 1,
		Attrs: groupAttrs(1, c.acts, c.alphas), NumInputs: 4, NumOutputs: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := runOp(t, op, in[:4]...)
	for i := range want {
		sameBits(t, fmt.Sprint("head ", i), got[i], want[i])
	}
}

// TestDenseGroupWeightsChange: cached packs follow the weights' identity
// (a new tensor repacks), and weights that are not constant are repacked
// on every run even when rewritten in place at the same address.
func TestDenseGroupWeightsChange(t *testing.T) {
	rng := rand.New(rand.NewPCG(37, 38))
	c := makeCase(rng, []int{12}, 30, []int{1, 5, 1, 8}, 1, 0, 3)
	attrs := groupAttrs(1, c.acts, c.alphas)
	cached := newGroup(t, attrs, 4, 1, nil)
	varying := newGroup(t, attrs, 4, 1, make([]bool, 9))
	var ar ops.Arena
	for run := 0; run < 4; run++ {
		if run%2 == 1 {
			// rewrite one head's weights in place: only the varying
			// kernel may be run on them
			for i, w := 0, c.ws[2].Float32s(); i < len(w); i++ {
				w[i] = float32(rng.NormFloat64())
			}
		} else {
			c.ws[1] = randF32(rng, 5, 30) // a new tensor
		}
		want := c.perHead(t, 1)
		ar.Reset()
		got, err := varying.RunWith(&ar, c.inputs())
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			sameBits(t, fmt.Sprintf("varying run %d head %d", run, i), got[i], want[i])
		}
		if run%2 == 0 {
			// the cached kernel after a weight tensor was replaced (its
			// earlier packs were of the rewritten data, so a fresh one is
			// needed for the in-place case)
			fresh := newGroup(t, attrs, 4, 1, nil)
			for _, op := range []ops.ArenaOp{cached, fresh} {
				got := runOp(t, op, c.inputs()...)
				for i := range want {
					sameBits(t, fmt.Sprintf("cached run %d head %d", run, i), got[i], want[i])
				}
			}
		}
	}
}

// TestDenseGroupErrors: bad attributes fail in the factory, bad inputs at
// run time with the offending head named.
func TestDenseGroupErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		attrs graph.Attrs
		nIn   int
		want  string
	}{
		{"transB", graph.Attrs{"transB": aInt(2)}, 5, "transB"},
		{"unknown activation", groupAttrs(0, []string{"", "Gelu"}, []float32{0, 0}), 5, `head 1: unknown activation "Gelu"`},
		{"activations count", groupAttrs(0, []string{"Relu"}, []float32{0}), 5, "1 entries for 2 heads"},
		{"alphas count", groupAttrs(0, []string{"Relu", "Relu"}, []float32{0}), 5, "1 entries for 2 heads"},
		{"empty activations", graph.Attrs{"activations": {Type: graph.AttrStrings}}, 0, "empty"},
		{"no heads", nil, 1, "at least one head"},
	} {
		_, err := ops.New(&ops.Config{Domain: "ai.mtlrun", OpType: "DenseGroup", Opset: 1, Attrs: tc.attrs, NumInputs: tc.nIn})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		var ae *ops.AttrError
		if tc.name != "no heads" && !errors.As(err, &ae) {
			t.Errorf("%s: %T is not an *ops.AttrError", tc.name, err)
		}
	}
	rng := rand.New(rand.NewPCG(39, 40))
	a := randF32(rng, 4, 6)
	w0, c0 := randF32(rng, 6, 2), randF32(rng, 2)
	op := newGroup(t, groupAttrs(0, []string{"", "Relu"}, []float32{0, 0}), 2, 1, nil)
	for _, tc := range []struct {
		name string
		in   []*tensor.Tensor
		want string
	}{
		{"K mismatch", []*tensor.Tensor{a, w0, c0, randF32(rng, 5, 3), nil}, "head 1: inner dimensions differ"},
		{"C shape", []*tensor.Tensor{a, w0, c0, randF32(rng, 6, 3), randF32(rng, 2, 3)}, "head 1: C of"},
		{"C length", []*tensor.Tensor{a, w0, randF32(rng, 3), randF32(rng, 6, 3), nil}, "head 0: C of"},
		{"missing W", []*tensor.Tensor{a, w0, c0, nil, nil}, "head 1: weight W is missing"},
		{"W rank", []*tensor.Tensor{a, randF32(rng, 6, 2, 1), c0, randF32(rng, 6, 3), nil}, "head 0: W must be 2-D"},
		{"W dtype", []*tensor.Tensor{a, w0, c0, tensor.From([]int{6, 1}, make([]float64, 6)), nil}, "head 1: W must be 2-D float32"},
		{"A dtype", []*tensor.Tensor{tensor.From([]int{4, 6}, make([]float64, 24)), w0, c0, w0, nil}, "float32 A"},
		{"A scalar", []*tensor.Tensor{tensor.From([]int{}, []float32{1}), w0, c0, w0, nil}, "rank ≥ 1"},
		{"A missing", []*tensor.Tensor{nil, w0, c0, w0, nil}, "A is missing"},
		{"input count", []*tensor.Tensor{a, w0, c0}, "needs 5 inputs"},
	} {
		_, err := op.Run(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// TestDenseGroupConcurrent: one kernel (with its cached packs) shared by
// callers with their own arenas, each product split over threads, gives
// every caller its own correct result.
func TestDenseGroupConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	base := makeCase(rng, []int{256}, 128, []int{33, 5, 1}, 1, 2, 3)
	op := newGroup(t, groupAttrs(1, base.acts, base.alphas), 3, 2, nil)
	const callers = 4
	var cases [callers]*groupCase
	var wants [callers][]*tensor.Tensor
	for i := range cases {
		c := *base
		c.a = randF32(rng, 256+6*i, 128)
		cases[i], wants[i] = &c, c.perHead(t, 1)
	}
	opstest.Concurrent(t, callers, 30, func(i, r int, ar *ops.Arena) error {
		got, err := op.RunWith(ar, cases[i].inputs())
		if err != nil {
			return err
		}
		for h, w := range wants[i] {
			g, wv := got[h].Float32s(), w.Float32s()
			for e := range wv {
				if g[e] != wv[e] {
					return fmt.Errorf("caller %d run %d head %d: [%d] = %v, want %v", i, r, h, e, g[e], wv[e])
				}
			}
		}
		return nil
	})
}

// mlp4Heads are models/mlp4's four task heads on a trunk output of 64.
func mlp4Heads(rng *rand.Rand, batch int) *groupCase {
	c := &groupCase{a: randF32(rng, batch, 64), transB: 1,
		acts: []string{"", "", "Sigmoid", "Tanh"}, alphas: []float32{0.01, 0.01, 0.01, 0.01}}
	for _, n := range []int{1, 5, 1, 8} {
		c.ws = append(c.ws, randF32(rng, n, 64))
		c.cs = append(c.cs, randF32(rng, n))
	}
	return c
}

// TestDenseGroupAllocs: with a reused arena a steady-state run allocates
// nothing, with cached or per-run packed weights, at one and two threads
// (the last cases are split over the threads).
func TestDenseGroupAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop linalg's A-panel buffers")
	}
	rng := rand.New(rand.NewPCG(41, 42))
	cases := map[string]*groupCase{
		"mlp4 b64":     mlp4Heads(rng, 64),
		"mlp4 b1":      mlp4Heads(rng, 1),
		"wide K400":    makeCase(rng, []int{256}, 400, []int{33, 2}, 0, 2, 1),
		"split rank3":  makeCase(rng, []int{8, 250}, 128, []int{40, 24}, 1, 0, 3),
		"split Relu":   makeCase(rng, []int{300}, 400, []int{16, 3}, 1, 0, 1),
		"rank1 [1 N]C": makeCase(rng, nil, 64, []int{1, 5, 1, 8}, 1, 0, 2),
	}
	for name, c := range cases {
		in := c.inputs()
		for _, th := range []int{1, 2} {
			for _, constIn := range [][]bool{nil, make([]bool, len(in))} {
				op := newGroup(t, groupAttrs(c.transB, c.acts, c.alphas), len(c.ws), th, constIn)
				var ar ops.Arena
				for i := 0; i < 3; i++ {
					ar.Reset()
					if _, err := op.RunWith(&ar, in); err != nil {
						t.Fatal(err)
					}
				}
				allocs := testing.AllocsPerRun(allocRuns, func() {
					ar.Reset()
					if _, err := op.RunWith(&ar, in); err != nil {
						t.Fatal(err)
					}
				})
				t.Logf("%s t%d const=%v: %v allocs/run", name, th, constIn == nil, allocs)
				if allocs != 0 {
					t.Errorf("%s t%d const=%v: %v allocations per steady-state run", name, th, constIn == nil, allocs)
				}
			}
		}
	}
}

// BenchmarkDenseGroupMLP4: mlp4's four heads (64 → 1, 5, 1, 8, transB,
// activations none, none, Sigmoid, Tanh) as one DenseGroup against the
// four Dense nodes it replaces, at batch 64 and 1.
func BenchmarkDenseGroupMLP4(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 16))
	for _, batch := range []int{64, 1} {
		c := mlp4Heads(rng, batch)
		for _, th := range []int{1, 2} {
			sfx := fmt.Sprintf("/b%d/t%d", batch, th)
			b.Run("DenseGroup"+sfx, func(b *testing.B) {
				benchArena(b, newGroup(b, groupAttrs(1, c.acts, c.alphas), 4, th, nil), c.inputs()...)
			})
			b.Run("Dense×4"+sfx, func(b *testing.B) {
				var heads []ops.ArenaOp
				var ins [][]*tensor.Tensor
				for i := range c.ws {
					heads = append(heads, newOpCfg(b, "ai.mtlrun", "Dense", 1, denseAttrs(c.acts[i], graph.Attrs{"transB": aInt(1)}), 3, th).(ops.ArenaOp))
					ins = append(ins, []*tensor.Tensor{c.a, c.ws[i], c.cs[i]})
				}
				var ar ops.Arena
				b.ReportAllocs()
				for b.Loop() {
					ar.Reset()
					for i, op := range heads {
						if _, err := op.RunWith(&ar, ins[i]); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
