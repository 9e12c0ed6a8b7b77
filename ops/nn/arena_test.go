package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/internal/opstest"
	"github.com/mtlrun/mtlrun/tensor"
)

// allocRuns is how many runs an allocation check averages over: few, as
// in ops/rnn's arena_test.go, which says why.
const allocRuns = 5

type arenaCase struct {
	name    string
	domain  string
	op      string
	opset   int
	attrs   graph.Attrs
	nOut    int
	threads int
	in      []*tensor.Tensor
	// varying: no input is constant (ConstInputs all false), so weights
	// are packed into arena scratch on every run
	varying bool
	allocs  float64 // allowed allocations per steady-state run
}

func arenaCases() []arenaCase {
	rng := rand.New(rand.NewPCG(11, 12))
	r := func(shape ...int) *tensor.Tensor { return randF32(rng, shape...) }
	pos := func(shape ...int) *tensor.Tensor {
		t := r(shape...)
		for i, v := range t.Float32s() {
			t.Float32s()[i] = v*v + 0.1
		}
		return t
	}
	tB := graph.Attrs{"transB": aInt(1)}
	var cs []arenaCase
	for _, b := range []int{1, 2, 64} {
		for _, th := range []int{1, 2} {
			cs = append(cs,
				arenaCase{name: "Gemm mlp4 L1", op: "Gemm", opset: 13, attrs: tB, threads: th, in: []*tensor.Tensor{r(b, 20), r(128, 20), r(128)}},
				arenaCase{name: "Gemm mlp4 L2", op: "Gemm", opset: 13, attrs: tB, threads: th, in: []*tensor.Tensor{r(b, 128), r(64, 128), r(64)}},
				arenaCase{name: "Dense Relu", domain: "ai.mtlrun", op: "Dense", opset: 1, attrs: graph.Attrs{"transB": aInt(1), "activation": aStr("Relu")}, threads: th, in: []*tensor.Tensor{r(b, 128), r(64, 128), r(64)}},
				arenaCase{name: "Dense Sigmoid", domain: "ai.mtlrun", op: "Dense", opset: 1, attrs: graph.Attrs{"transB": aInt(1), "activation": aStr("Sigmoid")}, threads: th, in: []*tensor.Tensor{r(b, 64), r(1, 64), r(1)}},
				arenaCase{name: "Dense Tanh rank3", domain: "ai.mtlrun", op: "Dense", opset: 1, attrs: graph.Attrs{"activation": aStr("Tanh")}, threads: th, in: []*tensor.Tensor{r(b, 3, 64), r(64, 8), r(8)}},
				arenaCase{name: "MatMul shared B", op: "MatMul", opset: 13, threads: th, in: []*tensor.Tensor{r(b, 7, 64), r(64, 32)}},
				arenaCase{name: "MatMul 1-D", op: "MatMul", opset: 13, threads: th, in: []*tensor.Tensor{r(64), r(64, 32)}},
				arenaCase{name: "Conv2D", op: "Conv", opset: 11, attrs: graph.Attrs{"pads": aInts(1, 1, 1, 1)}, threads: th, in: []*tensor.Tensor{r(b, 8, 12, 12), r(16, 8, 3, 3), r(16)}},
				arenaCase{name: "Conv1x1", op: "Conv", opset: 11, threads: th, in: []*tensor.Tensor{r(b, 8, 12, 12), r(16, 8, 1, 1)}},
			)
		}
		cs = append(cs,
			arenaCase{name: "Conv one image split", op: "Conv", opset: 11, attrs: graph.Attrs{"pads": aInts(1, 1, 1, 1)}, threads: 2, in: []*tensor.Tensor{r(1, 16, 32, 32), r(32, 16, 3, 3), r(32)}},
			arenaCase{name: "Dense split", domain: "ai.mtlrun", op: "Dense", opset: 1, attrs: graph.Attrs{"transB": aInt(1), "activation": aStr("Sigmoid")}, threads: 2, in: []*tensor.Tensor{r(4*b, 128), r(64, 128), r(64)}},
			arenaCase{name: "Gemm varying B", op: "Gemm", opset: 13, attrs: tB, varying: true, in: []*tensor.Tensor{r(b, 20), r(128, 20), r(128)}},
			arenaCase{name: "Dense varying B", domain: "ai.mtlrun", op: "Dense", opset: 1, attrs: graph.Attrs{"activation": aStr("Relu")}, varying: true, threads: 2, in: []*tensor.Tensor{r(b, 128), r(128, 64), r(64)}},
			arenaCase{name: "MatMul varying B", op: "MatMul", opset: 13, varying: true, in: []*tensor.Tensor{r(b, 7, 64), r(64, 32)}},
			arenaCase{name: "MatMul batched B", op: "MatMul", opset: 13, in: []*tensor.Tensor{r(b, 9, 16), r(b, 16, 8)}},
			arenaCase{name: "Conv varying W", op: "Conv", opset: 11, varying: true, allocs: 1, in: []*tensor.Tensor{r(b, 8, 12, 12), r(16, 8, 3, 3), r(16)}},
			arenaCase{name: "MatMul batched B rows≤2", op: "MatMul", opset: 13, in: []*tensor.Tensor{r(b, 2, 16), r(b, 16, 8)}},
			arenaCase{name: "Softmax", op: "Softmax", opset: 13, in: []*tensor.Tensor{r(b, 5)}},
			arenaCase{name: "Softmax axis0", op: "Softmax", opset: 13, attrs: graph.Attrs{"axis": aInt(0)}, in: []*tensor.Tensor{r(b, 5)}},
			arenaCase{name: "LogSoftmax", op: "LogSoftmax", opset: 13, in: []*tensor.Tensor{r(b, 5)}},
			arenaCase{name: "Softmax legacy", op: "Softmax", opset: 11, in: []*tensor.Tensor{r(b, 3, 5)}},
			arenaCase{name: "BatchNorm", op: "BatchNormalization", opset: 15, in: []*tensor.Tensor{r(b, 8, 5, 5), r(8), r(8), r(8), pos(8)}},
			arenaCase{name: "LayerNorm", op: "LayerNormalization", opset: 17, nOut: 3, in: []*tensor.Tensor{r(b, 3, 16), r(16), r(16)}},
			arenaCase{name: "LayerNorm no bias", op: "LayerNormalization", opset: 17, in: []*tensor.Tensor{r(b, 16), r(16)}},
			arenaCase{name: "Depthwise", op: "Conv", opset: 11, attrs: graph.Attrs{"group": aInt(8), "pads": aInts(1, 1)}, in: []*tensor.Tensor{r(b, 8, 20), r(8, 1, 3), r(8)}},
			arenaCase{name: "Conv narrow", op: "Conv", opset: 11, attrs: graph.Attrs{"pads": aInts(1, 1)}, in: []*tensor.Tensor{r(b, 4, 20), r(2, 4, 3)}},
			arenaCase{name: "InstanceNorm", op: "InstanceNormalization", opset: 6, in: []*tensor.Tensor{r(b, 4, 5, 5), r(4), r(4)}},
			arenaCase{name: "ConvTranspose", op: "ConvTranspose", opset: 11, attrs: graph.Attrs{"strides": aInts(2, 2)}, in: []*tensor.Tensor{r(b, 4, 5, 5), r(4, 8, 3, 3), r(8)}},
			arenaCase{name: "ConvTranspose varying W", op: "ConvTranspose", opset: 11, varying: true, in: []*tensor.Tensor{r(b, 4, 5, 5), r(4, 8, 3, 3)}},
			arenaCase{name: "MaxPool", op: "MaxPool", opset: 12, attrs: graph.Attrs{"kernel_shape": aInts(2, 2), "strides": aInts(2, 2)}, in: []*tensor.Tensor{r(b, 4, 8, 8)}},
			arenaCase{name: "AveragePool", op: "AveragePool", opset: 11, attrs: graph.Attrs{"kernel_shape": aInts(3), "pads": aInts(1, 1)}, in: []*tensor.Tensor{r(b, 4, 9)}},
			arenaCase{name: "GlobalAveragePool", op: "GlobalAveragePool", opset: 1, in: []*tensor.Tensor{r(b, 4, 3, 3)}},
			arenaCase{name: "ReduceMean", op: "ReduceMean", opset: 13, attrs: graph.Attrs{"axes": aInts(-1)}, in: []*tensor.Tensor{r(b, 16)}},
			arenaCase{name: "ReduceMax keepdims", op: "ReduceMax", opset: 13, attrs: graph.Attrs{"axes": aInts(1)}, in: []*tensor.Tensor{r(b, 6, 4)}},
			arenaCase{name: "ReduceSum all", op: "ReduceSum", opset: 11, attrs: graph.Attrs{"keepdims": aInt(0)}, in: []*tensor.Tensor{r(b, 6)}},
			arenaCase{name: "ArgMax", op: "ArgMax", opset: 13, attrs: graph.Attrs{"axis": aInt(-1)}, in: []*tensor.Tensor{r(b, 5)}},
			arenaCase{name: "ArgMin keepdims0", op: "ArgMin", opset: 13, attrs: graph.Attrs{"axis": aInt(0), "keepdims": aInt(0)}, in: []*tensor.Tensor{r(b, 5)}},
		)
	}
	return cs
}

// TestArenaKernels: every converted kernel gives, through RunWith with a
// reused arena, exactly what Run gives, and allocates nothing once warm.
func TestArenaKernels(t *testing.T) {
	for _, c := range arenaCases() {
		nOut := max(c.nOut, 1)
		var constIn []bool
		if c.varying {
			constIn = make([]bool, len(c.in))
		}
		op, err := ops.New(&ops.Config{Domain: c.domain, OpType: c.op, Opset: c.opset, Attrs: c.attrs,
			NumInputs: len(c.in), NumOutputs: nOut, Threads: c.threads, ConstInputs: constIn})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		name := c.name + " " + tensor.ShapeString(c.in[0].Shape)
		if c.threads > 1 {
			name += " threads"
		}
		ao, ok := op.(ops.ArenaOp)
		if !ok {
			t.Errorf("%s: no RunWith", name)
			continue
		}
		want := runOp(t, op, c.in...)
		if c.threads > 1 {
			// splitting the work never changes a result
			single, err := ops.New(&ops.Config{Domain: c.domain, OpType: c.op, Opset: c.opset, Attrs: c.attrs,
				NumInputs: len(c.in), NumOutputs: nOut, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range runOp(t, single, c.in...) {
				sameBits(t, name+" vs one thread", want[i], w)
			}
		}
		var ar ops.Arena
		for run := 0; run < 3; run++ {
			ar.Reset()
			got, err := ao.RunWith(&ar, c.in)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d outputs, want %d", name, len(got), len(want))
			}
			for i := range got {
				sameBits(t, name, got[i], want[i])
			}
		}
		allocs := testing.AllocsPerRun(allocRuns, func() {
			ar.Reset()
			if _, err := ao.RunWith(&ar, c.in); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > c.allocs && !raceEnabled {
			t.Errorf("%s: %v allocations per steady-state run, want %v", name, allocs, c.allocs)
		}
	}
}

// TestVaryingWeightsRepacked: a right-hand input that is not constant may
// be an arena buffer rewritten in place between runs; the kernel must see
// the new values (a cache keyed by address would not).
func TestVaryingWeightsRepacked(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, c := range []struct {
		domain, op string
		attrs      graph.Attrs
		in         []*tensor.Tensor
	}{
		{"", "Gemm", graph.Attrs{"transB": aInt(1)}, []*tensor.Tensor{randF32(rng, 8, 20), randF32(rng, 16, 20), randF32(rng, 16)}},
		{"", "MatMul", nil, []*tensor.Tensor{randF32(rng, 2, 8, 20), randF32(rng, 20, 16)}},
		{"ai.mtlrun", "Dense", graph.Attrs{"activation": aStr("Tanh")}, []*tensor.Tensor{randF32(rng, 2, 8, 20), randF32(rng, 20, 16), randF32(rng, 16)}},
		{"", "Conv", nil, []*tensor.Tensor{randF32(rng, 2, 3, 9, 9), randF32(rng, 8, 3, 3, 3)}},
	} {
		op, err := ops.New(&ops.Config{Domain: c.domain, OpType: c.op, Opset: 13, Attrs: c.attrs,
			NumInputs: len(c.in), NumOutputs: 1, ConstInputs: make([]bool, len(c.in))})
		if err != nil {
			t.Fatal(err)
		}
		var ar ops.Arena
		for run := 0; run < 3; run++ {
			w := c.in[1].Float32s()
			for i := range w {
				w[i] = float32(rng.NormFloat64()) // same address, new values
			}
			fresh := runOp(t, newOpCfg(t, c.domain, c.op, 13, c.attrs, len(c.in), 1), c.in...)
			ar.Reset()
			got, err := op.(ops.ArenaOp).RunWith(&ar, c.in)
			if err != nil {
				t.Fatal(err)
			}
			sameBits(t, c.op, got[0], fresh[0])
		}
	}
}

// TestConcurrentExecutors: kernels shared by several executors, each with
// its own arena, running threaded products at once (more chunks than
// workers) give every caller its own correct result.
func TestConcurrentExecutors(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	dense := newOpCfg(t, "ai.mtlrun", "Dense", 1, graph.Attrs{"transB": aInt(1), "activation": aStr("Sigmoid")}, 3, 4)
	conv := newOpCfg(t, "", "Conv", 11, graph.Attrs{"pads": aInts(1, 1, 1, 1)}, 3, 4)
	w, bias := randF32(rng, 64, 128), randF32(rng, 64)
	cw, cb := randF32(rng, 16, 8, 3, 3), randF32(rng, 16)
	const callers = 6
	type io struct{ in, want []*tensor.Tensor }
	var cases [callers][2]io
	for i := range cases {
		x := randF32(rng, 256, 128) // above parallelWork: split over threads
		cases[i][0] = io{[]*tensor.Tensor{x, w, bias}, runOp(t, newOpCfg(t, "ai.mtlrun", "Dense", 1, graph.Attrs{"transB": aInt(1), "activation": aStr("Sigmoid")}, 3, 1), x, w, bias)}
		cx := randF32(rng, 1+i%3, 8, 12, 12)
		cases[i][1] = io{[]*tensor.Tensor{cx, cw, cb}, runOp(t, newOpCfg(t, "", "Conv", 11, graph.Attrs{"pads": aInts(1, 1, 1, 1)}, 3, 1), cx, cw, cb)}
	}
	opstest.Concurrent(t, callers, 50, func(i, r int, ar *ops.Arena) error {
		for k, op := range []ops.Op{dense, conv} {
			got, err := op.(ops.ArenaOp).RunWith(ar, cases[i][k].in)
			if err != nil {
				return err
			}
			g, w := got[0].Float32s(), cases[i][k].want[0].Float32s()
			for e := range g {
				if g[e] != w[e] {
					return fmt.Errorf("caller %d op %d run %d: [%d] = %v, want %v", i, k, r, e, g[e], w[e])
				}
			}
		}
		return nil
	})
}

// TestNormFastPaths: the float32 fast paths of the normalisations give
// bit for bit what their general (float64-staged) paths give.
func TestNormFastPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	v := randF32(rng, 6)
	for i, x := range v.Float32s() {
		v.Float32s()[i] = x*x + 0.01
	}
	bnIn := []*tensor.Tensor{randF32(rng, 3, 6, 4, 5), randF32(rng, 6), randF32(rng, 6), randF32(rng, 6), v}
	bn := newOp(t, "BatchNormalization", 15, nil, 5, 1).(*batchNorm)
	want, err := bn.run(bnIn)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "BatchNorm", runOp(t, bn, bnIn...)[0], want[0])

	lnIn := []*tensor.Tensor{randF32(rng, 3, 4, 16), randF32(rng, 4, 16), randF32(rng, 16)}
	ln := newOp(t, "LayerNormalization", 17, graph.Attrs{"axis": aInt(1)}, 3, 3).(*layerNorm)
	want, err = ln.run(lnIn)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range runOp(t, ln, lnIn...) {
		sameBits(t, "LayerNorm", g, want[i])
	}

	inIn := []*tensor.Tensor{randF32(rng, 2, 6, 7), randF32(rng, 6), randF32(rng, 6)}
	in := newOp(t, "InstanceNormalization", 6, nil, 3, 1).(*instanceNorm)
	want, err = in.run(inIn)
	if err != nil {
		t.Fatal(err)
	}
	sameBits(t, "InstanceNorm", runOp(t, in, inIn...)[0], want[0])
}
