package rnn

import (
	"reflect"
	"strings"
	"testing"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// withX returns in with X (and the initial states) of other: the same
// weights, another sequence length and batch.
func withX(in, other []*tensor.Tensor) []*tensor.Tensor {
	out := append([]*tensor.Tensor(nil), in...)
	out[0] = other[0]
	for _, s := range []int{5, 6} {
		if s < len(out) {
			out[s] = other[s]
		}
	}
	return out
}

func to64(t *testing.T, in []*tensor.Tensor) []*tensor.Tensor {
	out := make([]*tensor.Tensor, len(in))
	for i, x := range in {
		if x == nil || x.DType != tensor.Float32 {
			out[i] = x
			continue
		}
		v, err := tensor.AsFloat64(x)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = tensor.From(x.Shape, v)
	}
	return out
}

// TestBoundMatchesOp: an op bound to its weights (Bind) gives bit for bit
// the op's outputs, at the bound inputs and at other sequence lengths,
// batches and initial states, on every layout, direction and cell path, in
// float32 and float64, and allocates nothing at steady state with an arena.
func TestBoundMatchesOp(t *testing.T) {
	for _, c := range arenaCases() {
		if c.lens {
			continue
		}
		for _, f64 := range []bool{false, true} {
			rc := c.randCase(5, 6, 4, 7)
			other := c.randCase(6, 1, 3, 7) // one step, as a stream runs
			in, oth := rc.inputs, withX(rc.inputs, other.inputs)
			if f64 {
				in, oth = to64(t, in), to64(t, oth)
			}
			op := buildOp(t, rc, 1, true)
			b, ok := op.(*rnnOp).Bind(in)
			if !ok {
				t.Fatalf("%s f64=%v: Bind refused constant weights", c.name, f64)
			}
			var a ops.Arena
			for _, x := range [][]*tensor.Tensor{in, oth, in} {
				want := mustRun(t, op, x)
				a.Reset()
				got, err := b.RunWith(&a, x)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if len(got) != len(want) {
					t.Fatalf("%s: %d outputs, want %d", c.name, len(got), len(want))
				}
				for i := range want {
					if !reflect.DeepEqual(got[i].Shape, want[i].Shape) || !reflect.DeepEqual(got[i].Data, want[i].Data) {
						t.Fatalf("%s f64=%v: bound output %d differs from the op's", c.name, f64, i)
					}
				}
			}
			run := func() {
				a.Reset()
				if _, err := b.RunWith(&a, oth); err != nil {
					t.Fatal(err)
				}
			}
			if n := testing.AllocsPerRun(20, run); n != 0 {
				t.Errorf("%s f64=%v: bound run allocates %v times, want 0", c.name, f64, n)
			}
		}
	}
}

// TestBindRefuses: Bind refuses weights that are not constant inputs of
// the node, sequence_lens and inputs that do not check.
func TestBindRefuses(t *testing.T) {
	c := arenaCase{name: "lstm", op: "LSTM", in: 3}
	rc := c.randCase(1, 4, 3, 5)
	if _, ok := buildOp(t, rc, 1, false).(*rnnOp).Bind(rc.inputs); ok {
		t.Error("Bind accepted weights that are not constant")
	}
	c.lens = true
	lens := c.randCase(1, 4, 3, 5)
	if _, ok := buildOp(t, lens, 1, true).(*rnnOp).Bind(lens.inputs); ok {
		t.Error("Bind accepted sequence_lens")
	}
	bad := append([]*tensor.Tensor(nil), rc.inputs...)
	bad[2] = tensor.From([]int{1, 20, 4}, make([]float32, 80))
	if _, ok := buildOp(t, rc, 1, true).(*rnnOp).Bind(bad); ok {
		t.Error("Bind accepted an R of the wrong shape")
	}
}

// TestBoundFallsBack: a bound op given other weights (other tensors, or
// the same tensor with other data), sequence_lens or wrong inputs runs the
// op's general path: same results, same errors.
func TestBoundFallsBack(t *testing.T) {
	c := arenaCase{name: "lstm", op: "LSTM", in: 3, initial: true}
	rc := c.randCase(1, 4, 3, 5)
	op := buildOp(t, rc, 1, true)
	b, ok := op.(*rnnOp).Bind(rc.inputs)
	if !ok {
		t.Fatal("Bind refused")
	}
	check := func(what string, in []*tensor.Tensor) {
		t.Helper()
		want, werr := op.Run(in)
		got, gerr := b.Run(in)
		if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
			t.Fatalf("%s: bound error %v, op error %v", what, gerr, werr)
		}
		if werr == nil {
			equalOutputs(t, what, want, got)
		}
	}
	o2 := c.randCase(2, 4, 3, 5)
	w := append([]*tensor.Tensor(nil), rc.inputs...)
	w[1], w[2], w[3] = o2.inputs[1], o2.inputs[2], o2.inputs[3]
	check("other weight tensors", w)
	saved := rc.inputs[2].Data
	rc.inputs[2].Data = o2.inputs[2].Float32s()
	check("the bound R tensor with other data", rc.inputs)
	rc.inputs[2].Data = saved
	c.lens = true
	w = append([]*tensor.Tensor(nil), rc.inputs...)
	w[4] = c.randCase(3, 4, 3, 5).inputs[4]
	check("sequence_lens", w)
	w = append([]*tensor.Tensor(nil), rc.inputs...)
	w[0] = tensor.From([]int{4, 3, 2}, make([]float32, 24))
	check("X with another input size", w)
	w = append([]*tensor.Tensor(nil), rc.inputs...)
	w[5] = tensor.From([]int{1, 2, 5}, make([]float32, 10))
	check("initial_h of another batch", w)
	if _, err := b.Run(w); err == nil || !strings.Contains(err.Error(), "initial_h") {
		t.Fatalf("bound op on a bad initial_h: %v", err)
	}
}
