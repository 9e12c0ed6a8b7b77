package runtime_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// TestStreamStepContext: a stream step stops inside the LSTM kernel once
// its context is cancelled, and leaves the carried state as it was: the
// same chunk sent again gives what an uncancelled stream gives.
func TestStreamStepContext(t *testing.T) {
	const seq, hid, in = 4000, 4, 3
	sess, err := runtime.NewSession(model(lstmGraph(hid, in), 14), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sess.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	if st.Plan().TimeAxis != 0 {
		t.Fatalf("time axis %d, want 0", st.Plan().TimeAxis)
	}
	ref, err := st.Fork()
	if err != nil {
		t.Fatal(err)
	}
	chunk := func(n int, off float32) map[string]*tensor.Tensor {
		d := make([]float32, n*in)
		for i := range d {
			d[i] = off + float32(i%7)*0.05
		}
		return map[string]*tensor.Tensor{"x": f32([]int{n, 1, in}, d...)}
	}
	a, b, c := chunk(50, 0.9), chunk(seq, -0.2), chunk(3, -0.5)
	for _, s := range []*runtime.Stream{st, ref} {
		if _, err := s.Step(a); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := st.StepContext(ctx, b); !errors.Is(err, context.Canceled) {
		t.Fatalf("step with a cancelled context: err %v, want context.Canceled", err)
	}
	// cancel inside the kernel (a few polls in: the run's and the nodes')
	pc := newPollCtx(5)
	_, err = st.StepContext(pc, b)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled from inside the step", err)
	}
	if p := pc.polls.Load(); p > 12 {
		t.Errorf("the step polled the context %d times after cancelling at poll 5: it did not stop", p)
	}
	if st.Steps() != 50 {
		t.Errorf("cancelled steps counted: Steps() = %d, want 50", st.Steps())
	}
	got, err := st.Step(c)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ref.Step(c)
	if err != nil {
		t.Fatal(err)
	}
	g, w := got["yh"].Data.([]float32), want["yh"].Data.([]float32)
	if len(g) != hid || len(w) != hid {
		t.Fatalf("yh %v and %v, want %d values", got["yh"], want["yh"], hid)
	}
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("after a cancelled step, yh = %v; the uncancelled stream gives %v", g, w)
		}
	}
	// the state matters: a fresh stream fed only c differs
	fresh, err := st.Fork()
	if err != nil {
		t.Fatal(err)
	}
	only, err := fresh.Step(c)
	if err != nil {
		t.Fatal(err)
	}
	if only["yh"].Data.([]float32)[0] == g[0] {
		t.Error("the first chunk left no trace in the state: the comparison above could not catch a lost state")
	}
	// StepBatchContext refuses a cancelled context and changes no member
	m1, _ := st.Fork()
	m2, _ := st.Fork()
	sc, _ := st.Fork()
	if _, err := sc.StepBatchContext(ctx, []*runtime.Stream{m1, m2}, []map[string]*tensor.Tensor{a, a}); !errors.Is(err, context.Canceled) {
		t.Fatalf("StepBatchContext with a cancelled context: err %v", err)
	}
	if m1.Started() || m2.Started() {
		t.Error("a cancelled batch started its members")
	}
}
