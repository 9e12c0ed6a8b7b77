package math

import (
	gomath "math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/internal/opstest"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// randOf is a tensor of dt and shape filled by gen in element order.
func randOf[T tensor.Elem](dt tensor.DType, shape []int, gen func() T) *tensor.Tensor {
	t, _ := tensor.New(dt, shape)
	d := tensor.Data[T](t)
	for i := range d {
		d[i] = gen()
	}
	return t
}

func randF32(rng *rand.Rand, shape ...int) *tensor.Tensor {
	return randOf(tensor.Float32, shape, func() float32 { return rng.Float32()*8 - 4 })
}

func randF64(rng *rand.Rand, shape ...int) *tensor.Tensor {
	return randOf(tensor.Float64, shape, func() float64 { return rng.Float64()*8 - 4 })
}

func randI64(rng *rand.Rand, shape ...int) *tensor.Tensor {
	return randOf(tensor.Int64, shape, func() int64 { return int64(rng.IntN(19)) - 9 })
}

func randBool(rng *rand.Rand, shape ...int) *tensor.Tensor {
	return randOf(tensor.Bool, shape, func() bool { return rng.IntN(2) == 0 })
}

func randF16(rng *rand.Rand, shape ...int) *tensor.Tensor {
	x := randF32(rng, shape...)
	h, _ := cast(x, tensor.Float16)
	return h
}

func arenaCases() []opstest.Case {
	rng := rand.New(rand.NewPCG(11, 12))
	f := func(s ...int) *tensor.Tensor { return randF32(rng, s...) }
	i := func(s ...int) *tensor.Tensor { return randI64(rng, s...) }
	pos := func(s ...int) *tensor.Tensor { // positive, non-zero divisors
		t := randI64(rng, s...)
		for k, v := range t.Int64s() {
			if v <= 0 {
				t.Int64s()[k] = 1 - v
			}
		}
		return t
	}
	b := func(s ...int) *tensor.Tensor { return randBool(rng, s...) }
	fa := func(v float32) graph.Attr { return graph.Attr{Type: graph.AttrFloat, Float: v} }
	ia := func(v int64) graph.Attr { return graph.Attr{Type: graph.AttrInt, Int: v} }
	var cs []opstest.Case
	for _, op := range []string{"Relu", "Sigmoid", "Tanh", "Exp", "Neg", "Abs", "Sqrt", "Log", "Erf",
		"Softplus", "Softsign", "Floor", "Ceil", "Round", "Sign", "Reciprocal", "Sin", "Cos",
		"HardSwish", "Mish", "LeakyRelu", "Elu", "Selu", "Celu", "HardSigmoid", "ThresholdedRelu", "Identity"} {
		cs = append(cs, opstest.Case{Op: op, In: []*tensor.Tensor{f(64, 128)}})
	}
	cs = append(cs,
		opstest.Case{Op: "Relu", Opset: 14, In: []*tensor.Tensor{i(8, 5)}},
		opstest.Case{Op: "Neg", In: []*tensor.Tensor{i(8, 5)}},
		opstest.Case{Op: "Abs", In: []*tensor.Tensor{randF64(rng, 3, 4)}},
		opstest.Case{Op: "Sigmoid", In: []*tensor.Tensor{randF16(rng, 3, 4)}},
		opstest.Case{Op: "LeakyRelu", Attrs: graph.Attrs{"alpha": fa(0.2)}, In: []*tensor.Tensor{f(7, 9)}},
		opstest.Case{Op: "Gelu", Opset: 20, In: []*tensor.Tensor{f(4, 33)}},
		opstest.Case{Op: "IsNaN", Opset: 9, In: []*tensor.Tensor{f(4, 5)}},
		opstest.Case{Op: "IsInf", Opset: 10, In: []*tensor.Tensor{f(4, 5)}},
		opstest.Case{Op: "Identity", In: []*tensor.Tensor{b(3, 2)}},
	)
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow"} {
		cs = append(cs,
			opstest.Case{Op: op, In: []*tensor.Tensor{f(64, 128), f(64, 128)}},
			opstest.Case{Op: op, In: []*tensor.Tensor{f(64, 1), f(64)}},
			opstest.Case{Op: op, In: []*tensor.Tensor{f(2, 3, 4), f(4)}},
			opstest.Case{Op: op, In: []*tensor.Tensor{f(), f(5, 6)}},
			opstest.Case{Op: op, In: []*tensor.Tensor{f(2, 1, 4, 1, 3), f(4, 5, 1)}},
		)
	}
	cs = append(cs,
		opstest.Case{Op: "Add", In: []*tensor.Tensor{i(64, 1), i(64)}},
		// eleven alternating broadcast dims: ten outer runs in the plan
		opstest.Case{Op: "Sub", In: []*tensor.Tensor{f(2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2), f(1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1)}},
		opstest.Case{Op: "Div", In: []*tensor.Tensor{i(3, 4), pos(4)}},
		opstest.Case{Op: "Add", In: []*tensor.Tensor{randF16(rng, 3, 4), randF16(rng, 4)}},
		opstest.Case{Op: "Pow", In: []*tensor.Tensor{f(3, 4), f()}}, // constant exponent
		opstest.Case{Op: "Pow", In: []*tensor.Tensor{f(3, 4), i(4)}},
		opstest.Case{Op: "Pow", In: []*tensor.Tensor{i(3, 4), pos(4)}},
		opstest.Case{Op: "Mod", Opset: 13, In: []*tensor.Tensor{i(3, 4), pos(4)}},
		opstest.Case{Op: "Mod", Opset: 13, Attrs: graph.Attrs{"fmod": ia(1)}, In: []*tensor.Tensor{f(3, 4), f(4)}},
		opstest.Case{Op: "PRelu", In: []*tensor.Tensor{f(2, 3, 4), f(3, 1)}},
		opstest.Case{Op: "PRelu", In: []*tensor.Tensor{f(64, 128), f(128)}},
		opstest.Case{Op: "Sum", In: []*tensor.Tensor{f(64, 128), f(128), f(64, 1)}},
		opstest.Case{Op: "Mean", In: []*tensor.Tensor{f(2, 3), f(3), f(2, 1), f(1)}},
		opstest.Case{Op: "Max", In: []*tensor.Tensor{f(1, 3), f(4, 1)}},
		opstest.Case{Op: "Min", In: []*tensor.Tensor{i(2, 3), i(3), i()}},
		opstest.Case{Op: "Sum", In: []*tensor.Tensor{f(5)}},
		opstest.Case{Op: "Max", In: []*tensor.Tensor{randF16(rng, 2, 3), randF16(rng, 3)}},
		opstest.Case{Op: "Clip", Opset: 13, In: []*tensor.Tensor{f(64, 128), f(), f()}},
		opstest.Case{Op: "Clip", Opset: 13, In: []*tensor.Tensor{i(3, 5), nil, i()}},
		opstest.Case{Op: "Clip", Opset: 6, Attrs: graph.Attrs{"min": fa(-1), "max": fa(1)}, In: []*tensor.Tensor{f(3, 5)}},
		opstest.Case{Op: "Clip", Opset: 6, Attrs: graph.Attrs{"min": fa(0)}, In: []*tensor.Tensor{randF16(rng, 3, 5)}},
		opstest.Case{Op: "Cast", Attrs: graph.Attrs{"to": ia(int64(tensor.Int64))}, In: []*tensor.Tensor{f(64, 128)}},
		opstest.Case{Op: "Cast", Attrs: graph.Attrs{"to": ia(int64(tensor.Float32))}, In: []*tensor.Tensor{i(4, 5)}},
		opstest.Case{Op: "Cast", Attrs: graph.Attrs{"to": ia(int64(tensor.Bool))}, In: []*tensor.Tensor{i(4, 5)}},
		opstest.Case{Op: "Cast", Attrs: graph.Attrs{"to": ia(int64(tensor.Float32))}, In: []*tensor.Tensor{b(4, 5)}},
		opstest.Case{Op: "Cast", Attrs: graph.Attrs{"to": ia(int64(tensor.Float16))}, In: []*tensor.Tensor{randF64(rng, 4, 5)}},
		opstest.Case{Op: "Cast", Attrs: graph.Attrs{"to": ia(int64(tensor.Float32))}, In: []*tensor.Tensor{f(4, 5)}},
		opstest.Case{Op: "CastLike", Opset: 15, In: []*tensor.Tensor{f(4, 5), i()}},
		opstest.Case{Op: "Equal", In: []*tensor.Tensor{i(64, 1), i(64)}},
		opstest.Case{Op: "Less", In: []*tensor.Tensor{f(2, 3, 4), f(4)}},
		opstest.Case{Op: "GreaterOrEqual", In: []*tensor.Tensor{f(64, 128), f(64, 128)}},
		opstest.Case{Op: "Greater", In: []*tensor.Tensor{b(3, 2), b(2)}},
		opstest.Case{Op: "And", In: []*tensor.Tensor{b(3, 2), b(2)}},
		opstest.Case{Op: "Not", In: []*tensor.Tensor{b(3, 2)}},
		opstest.Case{Op: "Where", Opset: 9, In: []*tensor.Tensor{b(64, 128), f(64, 128), f(64, 128)}},
		opstest.Case{Op: "Where", Opset: 9, In: []*tensor.Tensor{b(64, 1), f(64, 128), f()}},
		opstest.Case{Op: "Where", Opset: 9, In: []*tensor.Tensor{b(3, 1), i(1, 4), i(3, 4)}},
		opstest.Case{Op: "BitShift", Opset: 11, Attrs: graph.Attrs{"direction": {Type: graph.AttrString, String: "LEFT"}},
			In: []*tensor.Tensor{tensor.From([]int{3}, []uint8{1, 2, 3}), tensor.From([]int{1}, []uint8{2})}},
		opstest.Case{Op: "Dropout", Opset: 13, NOut: 2, In: []*tensor.Tensor{f(4, 5)}},
	)
	return cs
}

func sameBits(t *testing.T, got, want *tensor.Tensor) {
	t.Helper()
	if err := bitsEqual(got, want); err != nil {
		t.Fatal(err)
	}
}

// bitsEqual compares dtype, shape and every element exactly (NaN equals NaN).
func bitsEqual(got, want *tensor.Tensor) error {
	if got.DType != want.DType || !tensor.SameShape(got.Shape, want.Shape) {
		return errorf("got %v, want %v", got, want)
	}
	if err := got.Validate(); err != nil {
		return err
	}
	g, w := reflect.ValueOf(got.Data), reflect.ValueOf(want.Data)
	for k := 0; k < w.Len(); k++ {
		gv, wv := g.Index(k).Interface(), w.Index(k).Interface()
		if gv != wv {
			switch gf := gv.(type) {
			case float32:
				if gomath.IsNaN(float64(gf)) && gomath.IsNaN(float64(wv.(float32))) {
					continue
				}
			case float64:
				if gomath.IsNaN(gf) && gomath.IsNaN(wv.(float64)) {
					continue
				}
			}
			return errorf("element %d: got %v, want %v", k, gv, wv)
		}
	}
	return nil
}

// TestArenaRuns runs every converted kernel twice through RunWith on one
// reused arena: the results must equal Run's (nil arena), and the steady
// state must allocate nothing.
func TestArenaRuns(t *testing.T) {
	for _, c := range arenaCases() {
		t.Run(c.Name(), func(t *testing.T) {
			opstest.ArenaRuns(t, c.New(t), c.In, bitsEqual, nil)
		})
	}
}

// TestArenaInputsUntouched checks in-place accumulation never writes into
// an input, also when the arena hands back last run's buffers.
func TestArenaInputsUntouched(t *testing.T) {
	x := f32([]int{2, 2}, 1, 2, 3, 4)
	y := f32([]int{2, 2}, 10, 20, 30, 40)
	k, _ := ops.New(&ops.Config{OpType: "Sum", Opset: 13})
	a := &ops.Arena{}
	for run := 0; run < 3; run++ {
		a.Reset()
		got, err := k.(ops.ArenaOp).RunWith(a, []*tensor.Tensor{x, y, x})
		if err != nil {
			t.Fatal(err)
		}
		same(t, got[0], f32([]int{2, 2}, 12, 24, 36, 48))
	}
	same(t, x, f32([]int{2, 2}, 1, 2, 3, 4))
}

// TestSigmoidTanhMatchLinalg: the ops are bitwise the vector kernels the
// fused Dense uses.
func TestSigmoidTanhMatchLinalg(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := randF32(rng, 1000)
	for _, op := range []string{"Sigmoid", "Tanh"} {
		got, err := runOp(op, 13, nil, 1, x)
		if err != nil {
			t.Fatal(err)
		}
		want := append([]float32(nil), x.Float32s()...)
		if op == "Sigmoid" {
			linalgSigmoid(want)
		} else {
			linalgTanh(want)
		}
		sameBits(t, got[0], f32([]int{1000}, want...))
	}
}

var (
	linalgSigmoid = linalg.Sigmoid
	linalgTanh    = linalg.Tanh
)

// TestThreadsBitwise: splitting large element-wise ops over threads gives
// bitwise the single-threaded result, and the steady state allocates
// nothing either way.
func TestThreadsBitwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	x, y := randF32(rng, 601, 499), randF32(rng, 601, 499) // 299899 elements, not a multiple of 64
	s := randF32(rng)
	for _, c := range []struct {
		op string
		in []*tensor.Tensor
	}{
		{"Sigmoid", []*tensor.Tensor{x}},
		{"Tanh", []*tensor.Tensor{x}},
		{"Relu", []*tensor.Tensor{x}},
		{"Exp", []*tensor.Tensor{x}},
		{"Add", []*tensor.Tensor{x, y}},
		{"Mul", []*tensor.Tensor{x, s}},
		{"Sub", []*tensor.Tensor{s, y}},
		{"Div", []*tensor.Tensor{x, y}},
		{"Sum", []*tensor.Tensor{x, y, x}},
		{"Max", []*tensor.Tensor{x, s}},
	} {
		t.Run(c.op, func(t *testing.T) {
			var res [2]*tensor.Tensor
			for i, threads := range []int{1, 4} {
				k, err := ops.New(&ops.Config{OpType: c.op, Opset: 13, NumInputs: len(c.in), NumOutputs: 1, Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				ak := k.(ops.ArenaOp)
				a := &ops.Arena{}
				out, err := ak.RunWith(a, c.in)
				if err != nil {
					t.Fatal(err)
				}
				res[i] = out[0]
				if n := testing.AllocsPerRun(10, func() {
					a.Reset()
					if _, err := ak.RunWith(a, c.in); err != nil {
						t.Fatal(err)
					}
				}); n != 0 {
					t.Errorf("threads %d: %v allocations per steady-state run", threads, n)
				}
			}
			sameBits(t, res[1], res[0])
		})
	}
}

// TestArenaConcurrent runs every kernel from several goroutines at once,
// each with its own arena, as executors of one session do (run with -race).
func TestArenaConcurrent(t *testing.T) {
	for _, c := range arenaCases() {
		opstest.ArenaConcurrent(t, c.Op, c.New(t), c.In, bitsEqual)
	}
}

// TestReluMatchesBuiltinMax: the bitwise Relu equals Go's max(x, 0) bit for
// bit, NaNs and signed zeros included.
func TestReluMatchesBuiltinMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	x := []float32{0, float32(gomath.Copysign(0, -1)), 1, -1, float32(gomath.Inf(1)), float32(gomath.Inf(-1)),
		gomath.Float32frombits(0x7fc00000), gomath.Float32frombits(0xffc00000), gomath.Float32frombits(0x7f800001),
		gomath.Float32frombits(0xff800001), gomath.Float32frombits(0x80000001), gomath.Float32frombits(0x00000001)}
	for i := 0; i < 100000; i++ {
		x = append(x, gomath.Float32frombits(rng.Uint32()))
	}
	o := make([]float32, len(x))
	reluF32(o, x)
	for i, v := range x {
		w := max(v, 0)
		if v != v { // documented: NaN with its sign cleared (arm64's FMAX keeps the sign)
			w = gomath.Float32frombits(gomath.Float32bits(v) &^ (1 << 31))
		}
		if gomath.Float32bits(o[i]) != gomath.Float32bits(w) {
			t.Fatalf("relu(%#x) = %#x, max gives %#x", gomath.Float32bits(v), gomath.Float32bits(o[i]), gomath.Float32bits(w))
		}
	}
}

// TestBroadcastHighRank checks the run walk when the plan has more outer
// dimensions than fit a small counter, against the index-table reference.
func TestBroadcastHighRank(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	as, bs := []int{2, 1, 2, 1, 2, 1, 3, 1, 2, 1, 2}, []int{1, 2, 1, 2, 1, 2, 1, 2, 1, 3, 1}
	a, b := randT(rng, as), randT(rng, bs)
	got, err := runOp("Sub", 13, nil, 1, a, b)
	if err != nil {
		t.Fatal(err)
	}
	os, _ := tensor.BroadcastShapes(as, bs)
	ai, bi := tensor.BroadcastIndex(as, os), tensor.BroadcastIndex(bs, os)
	want := make([]float32, len(ai))
	for i := range want {
		want[i] = a.Float32s()[ai[i]] - b.Float32s()[bi[i]]
	}
	sameBits(t, got[0], f32(os, want...))
}
