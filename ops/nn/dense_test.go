package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// newOpCfg builds a kernel with a full Config (threads, domain).
func newOpCfg(tb testing.TB, domain, opType string, opset int, attrs graph.Attrs, nIn, threads int) ops.Op {
	tb.Helper()
	if attrs == nil {
		attrs = graph.Attrs{}
	}
	op, err := ops.New(&ops.Config{Domain: domain, OpType: opType, Opset: opset, Attrs: attrs, NumInputs: nIn, NumOutputs: 1, Threads: threads})
	if err != nil {
		tb.Fatalf("%s: %v", opType, err)
	}
	return op
}

// refAct is what the unfused activation node does to the whole product:
// ops/math's float32 Relu and LeakyRelu loops, linalg's Sigmoid and Tanh
// over the whole output.
func refAct(x []float32, act string, alpha float32) {
	switch act {
	case "Relu":
		for i, v := range x {
			x[i] = max(v, 0)
		}
	case "LeakyRelu":
		for i, v := range x {
			if v < 0 {
				v *= alpha
			}
			x[i] = v
		}
	case "Sigmoid":
		linalg.Sigmoid(x)
	case "Tanh":
		linalg.Tanh(x)
	}
}

func sameBits(tb testing.TB, what string, got, want *tensor.Tensor) {
	tb.Helper()
	if !tensor.SameShape(got.Shape, want.Shape) || got.DType != want.DType {
		tb.Fatalf("%s: %v %v, want %v %v", what, got.DType, got.Shape, want.DType, want.Shape)
	}
	switch g := got.Data.(type) {
	case []float32:
		w := want.Float32s()
		for i := range g {
			if math.Float32bits(g[i]) != math.Float32bits(w[i]) {
				tb.Fatalf("%s: [%d] = %v (%#x), want %v (%#x)", what, i, g[i], math.Float32bits(g[i]), w[i], math.Float32bits(w[i]))
			}
		}
	default:
		gv, wv := toF64(got), toF64(want)
		for i := range gv {
			if gv[i] != wv[i] && !(math.IsNaN(gv[i]) && math.IsNaN(wv[i])) {
				tb.Fatalf("%s: [%d] = %v, want %v", what, i, gv[i], wv[i])
			}
		}
	}
}

var activations = []string{"", "Relu", "LeakyRelu", "Sigmoid", "Tanh"}

func denseAttrs(act string, extra graph.Attrs) graph.Attrs {
	at := graph.Attrs{}
	for k, v := range extra {
		at[k] = v
	}
	if act != "" {
		at["activation"] = aStr(act)
	}
	if act == "LeakyRelu" {
		at["activation_alpha"] = aFloat(0.07)
	}
	return at
}

// TestDenseMatchesGemm: Dense with 2-D A is bit for bit Gemm followed by
// the activation, for every activation, C layout, transpose and size,
// with one and two threads.
func TestDenseMatchesGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	ms := []int{1, 2, 3, 7, 13, 33, 64, 67, 200}
	ns := []int{1, 5, 8, 16, 17, 64, 128}
	ks := []int{1, 3, 20, 64, 129, 400}
	cases := 0
	for mi, m := range ms {
		for ni, n := range ns {
			k := ks[(mi+ni)%len(ks)]
			variant := (mi*len(ns) + ni) % 6
			transA, transB := variant&1 != 0, variant&2 != 0
			attrs := graph.Attrs{}
			if transA {
				attrs["transA"] = aInt(1)
			}
			if transB {
				attrs["transB"] = aInt(1)
			}
			if variant == 5 {
				attrs["alpha"], attrs["beta"] = aFloat(0.5), aFloat(-1.5)
			}
			as, bs := []int{m, k}, []int{k, n}
			if transA {
				as = []int{k, m}
			}
			if transB {
				bs = []int{n, k}
			}
			a, b := randF32(rng, as...), randF32(rng, bs...)
			cShapes := [][]int{nil, {n}, {1, n}, {m, n}, {m, 1}, {1}, {}}
			for ci, cs := range cShapes {
				if ci > 2 && (mi+ni+ci)%3 != 0 {
					continue // fewer of the rare layouts
				}
				in := []*tensor.Tensor{a, b}
				if cs != nil {
					in = append(in, randF32(rng, cs...))
				}
				for _, act := range activations {
					for _, threads := range []int{1, 2} {
						name := fmt.Sprintf("m%d n%d k%d tA%v tB%v C%v %s t%d", m, n, k, transA, transB, cs, act, threads)
						gemm := newOpCfg(t, "", "Gemm", 13, attrs, len(in), 1)
						want := runOp(t, gemm, in...)[0]
						refAct(want.Float32s(), act, 0.07)
						d := newOpCfg(t, "ai.mtlrun", "Dense", 1, denseAttrs(act, attrs), len(in), threads)
						sameBits(t, name, runOp(t, d, in...)[0], want)
						var ar ops.Arena
						for r := 0; r < 2; r++ {
							ar.Reset()
							got, err := d.(ops.ArenaOp).RunWith(&ar, in)
							if err != nil {
								t.Fatal(err)
							}
							sameBits(t, name+" arena", got[0], want)
						}
						cases++
					}
				}
			}
		}
	}
	t.Logf("%d cases", cases)
}

// TestDenseMatchesMatMulAdd: Dense with A of rank 1, 2 or 3 is bit for bit
// MatMul, then Add of a row bias (as ops/math adds it), then activation.
func TestDenseMatchesMatMulAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	shapes := [][]int{{20}, {1, 20}, {3, 7, 20}, {64, 20}, {2, 33, 129}, {5, 13, 400}, {4, 50, 64}}
	for si, as := range shapes {
		k := as[len(as)-1]
		for _, n := range []int{1, 5, 16, 33} {
			a, b := randF32(rng, as...), randF32(rng, k, n)
			for bi, bias := range []*tensor.Tensor{nil, randF32(rng, n), randF32(rng, 1, n)} {
				for _, act := range activations {
					for _, threads := range []int{1, 2} {
						name := fmt.Sprintf("A%v n%d bias%d %s t%d", as, n, bi, act, threads)
						mm := newOpCfg(t, "", "MatMul", 13, nil, 2, 1)
						want := runOp(t, mm, a, b)[0]
						w := want.Float32s()
						in := []*tensor.Tensor{a, b}
						if bias != nil {
							bv := bias.Float32s()
							for i := range w {
								w[i] = w[i] + bv[i%n]
							}
							in = append(in, bias)
						}
						if bias != nil && bias.Rank() == 2 && len(as) == 1 {
							// Add broadcasts the result to [1 n]
							want.Shape = []int{1, n}
						}
						refAct(w, act, 0.07)
						d := newOpCfg(t, "ai.mtlrun", "Dense", 1, denseAttrs(act, nil), len(in), threads)
						sameBits(t, name, runOp(t, d, in...)[0], want)
					}
				}
			}
		}
		_ = si
	}
}

func TestDenseErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	if _, err := ops.New(&ops.Config{Domain: "ai.mtlrun", OpType: "Dense", Opset: 1, Attrs: graph.Attrs{"activation": aStr("Gelu")}}); err == nil {
		t.Error("unknown activation accepted")
	}
	d := newOpCfg(t, "ai.mtlrun", "Dense", 1, nil, 3, 1)
	for _, in := range [][]*tensor.Tensor{
		{randF32(rng, 2, 3, 4), randF32(rng, 4, 5), randF32(rng, 3, 5)}, // C not a row for rank-3 A
		{randF32(rng, 2, 4), randF32(rng, 3, 5)},                        // inner dims
		{randF32(rng, 2, 4), randF32(rng, 2, 4, 5)},                     // 3-D B
	} {
		if _, err := d.Run(in); err == nil {
			t.Errorf("Dense accepted %v", in)
		}
	}
}

// TestReluBits: the branch-free relu is Go's max(v, 0), which ops/math's
// Relu uses, on every special value and a sweep of bit patterns.
func TestReluBits(t *testing.T) {
	check := func(u uint32) {
		v := math.Float32frombits(u)
		if got, want := math.Float32bits(relu(v)), math.Float32bits(reluWant(v)); got != want {
			t.Fatalf("relu(%#x) = %#x, max gives %#x", u, got, want)
		}
	}
	for _, u := range []uint32{0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x00000001, 0x80000001, 0x3f800000, 0xbf800000, 0x7f7fffff, 0xff7fffff} {
		check(u)
	}
	for u := uint64(0); u < 1<<32; u += 65521 {
		check(uint32(u))
	}
}

// TestReluSliceBits: the vector Relu epilogues agree with max(v, 0) (and
// LeakyRelu with ops/math's loop) on
// special values in every lane position and on the scalar tail.
func TestReluSliceBits(t *testing.T) {
	specials := []uint32{0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x00000001, 0x80000001, 0x3f800000, 0xbf800000, 0x7f7fffff, 0xff7fffff}
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; n <= 37; n++ {
		x, bias := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i] = math.Float32frombits(specials[rng.IntN(len(specials))])
			if rng.IntN(3) == 0 {
				x[i] = float32(rng.NormFloat64())
			}
			bias[i] = float32(rng.NormFloat64())
			if rng.IntN(4) == 0 {
				bias[i] = 0
			}
		}
		got, got2, got3 := append([]float32(nil), x...), append([]float32(nil), x...), append([]float32(nil), x...)
		reluSlice(got)
		biasRelu(got2, bias)
		leakyRelu(got3, 0.07)
		for i, v := range x {
			want := v
			if v < 0 {
				want = v * 0.07
			}
			if a, b := math.Float32bits(got3[i]), math.Float32bits(want); a != b {
				t.Fatalf("n=%d leakyRelu(%#x) = %#x, want %#x", n, math.Float32bits(v), a, b)
			}
		}
		for i, v := range x {
			if a, b := math.Float32bits(got[i]), math.Float32bits(reluWant(v)); a != b {
				t.Fatalf("n=%d relu(%#x) = %#x, want %#x", n, math.Float32bits(v), a, b)
			}
			if a, b := math.Float32bits(got2[i]), math.Float32bits(reluWant(v+bias[i])); a != b {
				t.Fatalf("n=%d relu(%#x + %v) = %#x, want %#x", n, math.Float32bits(v), bias[i], a, b)
			}
		}
	}
}

// TestDenseThreadsSplit: products large enough to be split over threads
// give, for every activation and thread count, the one-thread result.
func TestDenseThreadsSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, sz := range [][3]int{{256, 128, 64}, {7000, 64, 5}, {333, 96, 128}, {2200, 33, 31}} {
		m, k, n := sz[0], sz[1], sz[2]
		if m*k*n < parallelWork {
			t.Fatalf("%v is below parallelWork", sz)
		}
		in := []*tensor.Tensor{randF32(rng, m, k), randF32(rng, n, k), randF32(rng, n)}
		for _, act := range activations {
			attrs := denseAttrs(act, graph.Attrs{"transB": aInt(1)})
			want := runOp(t, newOpCfg(t, "ai.mtlrun", "Dense", 1, attrs, 3, 1), in...)[0]
			for _, threads := range []int{2, 3, 5} {
				got := runOp(t, newOpCfg(t, "ai.mtlrun", "Dense", 1, attrs, 3, threads), in...)[0]
				sameBits(t, fmt.Sprintf("%v %s t%d", sz, act, threads), got, want)
			}
		}
	}
}

// TestRowWiseMatchesBlocked: the one-call-per-row path used for narrow
// products gives bitwise linalg's blocked product, so a result never
// depends on which path (or how many rows) computed it.
func TestRowWiseMatchesBlocked(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, sz := range [][3]int{{64, 64, 1}, {64, 64, 8}, {7, 20, 16}, {100, 333, 5}, {13, 384, 3}} {
		m, k, n := sz[0], sz[1], sz[2]
		a, b := randF32(rng, m, k), randF32(rng, k, n)
		pb := linalg.PackB(false, k, n, b.Float32s(), n)
		want := make([]float32, m*n)
		linalg.SgemmPacked(false, m, 1, a.Float32s(), k, pb, 0, want, n)
		got := runOp(t, newOpCfg(t, "", "MatMul", 13, nil, 2, 1), a, b)[0]
		sameBits(t, fmt.Sprint(sz), got, tensor.From([]int{m, n}, want))
	}
}

// reluWant is the documented Relu: max(v, 0), a NaN kept with its sign
// cleared. Go's builtin max gives that on amd64; on arm64 it compiles to
// FMAX, which keeps a NaN's sign, so the tests state the value directly.
func reluWant(v float32) float32 {
	if v != v {
		return math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
	}
	return max(v, 0)
}
