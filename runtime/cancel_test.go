package runtime_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// pollCtx is a context that becomes cancelled after a fixed number of polls
// (calls to Done or Err), so a test can cancel a run at a deterministic
// point inside it and count how long the run went on polling afterwards.
type pollCtx struct {
	after int64
	polls atomic.Int64
	once  sync.Once
	done  chan struct{}
}

func newPollCtx(after int64) *pollCtx { return &pollCtx{after: after, done: make(chan struct{})} }

func (c *pollCtx) poll() {
	if c.polls.Add(1) >= c.after {
		c.once.Do(func() { close(c.done) })
	}
}
func (c *pollCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *pollCtx) Value(any) any               { return nil }
func (c *pollCtx) Done() <-chan struct{} {
	c.poll()
	return c.done
}
func (c *pollCtx) Err() error {
	c.poll()
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}

func TestRunContextAlreadyCancelled(t *testing.T) {
	g := &graph.Graph{
		Inputs:  []graph.ValueInfo{vi("x", tensor.Float32, 2)},
		Nodes:   []*graph.Node{testNode("Count", "count", []string{"x"}, []string{"y"})},
		Outputs: []graph.ValueInfo{vi("y", tensor.Float32, 2)},
	}
	sess, err := runtime.NewSession(model(g, 13), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := counted.Load()
	_, err = sess.RunContext(ctx, map[string]*tensor.Tensor{"x": f32([]int{2}, 1, 2)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: err %v, want context.Canceled", err)
	}
	if counted.Load() != before {
		t.Error("a node ran although the context was cancelled before the run")
	}
	// the session still works afterwards
	if _, err := sess.Run(map[string]*tensor.Tensor{"x": f32([]int{2}, 1, 2)}); err != nil {
		t.Fatal(err)
	}
}

// lstmGraph is one LSTM node: x [seq, batch, in] → yh [1, batch, hid].
func lstmGraph(hid, in int) *graph.Graph {
	w := make([]float32, 4*hid*in)
	r := make([]float32, 4*hid*hid)
	for i := range w {
		w[i] = 0.1
	}
	return &graph.Graph{
		Inputs:       []graph.ValueInfo{vi("x", tensor.Float32, "seq", "batch", in)},
		Initializers: map[string]*tensor.Tensor{"w": f32([]int{1, 4 * hid, in}, w...), "r": f32([]int{1, 4 * hid, hid}, r...)},
		Nodes:        []*graph.Node{nd("LSTM", "lstm", []string{"x", "w", "r"}, []string{"y", "yh"}, "hidden_size", hid)},
		Outputs:      []graph.ValueInfo{vi("yh", tensor.Float32, 1, "batch", hid)},
	}
}

// TestZeroStepsHugeBatch: zero time steps of 16M rows is zero elements of
// X, but the LSTM's per-row state would be 30 GB: refused, not allocated
// (issue 17's out-of-memory request).
func TestZeroStepsHugeBatch(t *testing.T) {
	sess, err := runtime.NewSession(model(lstmGraph(64, 1), 14), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := f32([]int{0, 16777216, 1})
	_, err = sess.Run(map[string]*tensor.Tensor{"x": x})
	if err == nil || !strings.Contains(err.Error(), "too large a workspace") {
		t.Fatalf("err %v, want a refusal naming the workspace", err)
	}
}

// TestRunContextLSTM: a single LSTM node over 4000 steps stops inside the
// kernel once the context is cancelled, within the kernel's check interval.
func TestRunContextLSTM(t *testing.T) {
	const seq, hid, in = 4000, 4, 3
	sess, err := runtime.NewSession(model(lstmGraph(hid, in), 14), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := f32([]int{seq, 1, in}, make([]float32, seq*in)...)
	if _, err := sess.Run(map[string]*tensor.Tensor{"x": x}); err != nil {
		t.Fatal(err)
	}
	// the executor polls once before the run and once before the node;
	// cancel at the kernel's 3rd check (step 24 of 4000)
	ctx := newPollCtx(5)
	_, err = sess.RunContext(ctx, map[string]*tensor.Tensor{"x": x})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled from inside the LSTM kernel", err)
	}
	var ne *runtime.NodeError
	if !errors.As(err, &ne) || ne.Node != "lstm" {
		t.Errorf("err %v should name the LSTM node", err)
	}
	// a few polls to see and report the cancellation; running on would
	// poll ~500 times (every 8 of 4000 steps)
	if p := ctx.polls.Load(); p > 10 {
		t.Errorf("the run polled the context %d times after cancelling at poll 5: it did not stop", p)
	}
}

// TestRunContextLoop: a Loop of a million trips stops at the iteration
// after the cancellation.
func TestRunContextLoop(t *testing.T) {
	g := loopGraph(loopBody(nil), "M", "")
	sess, err := runtime.NewSession(model(g, 13), runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := newPollCtx(50)
	_, err = sess.RunContext(ctx, map[string]*tensor.Tensor{"x": f32([]int{2}, 1, 10), "M": tensor.Scalar(int64(1_000_000))})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if p := ctx.polls.Load(); p > 60 {
		t.Errorf("the loop polled %d times after cancelling at poll 50: it did not stop", p)
	}
}
