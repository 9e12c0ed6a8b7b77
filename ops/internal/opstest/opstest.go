// Package opstest is the arena test harness shared by the kernel packages
// under ops: it checks that a kernel run through RunWith on a reused
// ops.Arena gives what Run gives, allocates nothing once warm and is safe for
// concurrent callers with their own arenas, and it benchmarks kernels the way
// the runtime runs them.
package opstest

import (
	"fmt"
	"testing"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Case is one kernel at one input signature.
type Case struct {
	Op    string
	Opset int // 0: 13
	Attrs graph.Attrs
	NOut  int // 0: 1
	In    []*tensor.Tensor
}

// Name is the op and its input signatures, for t.Run.
func (c Case) Name() string {
	name := c.Op
	for _, x := range c.In {
		if x != nil {
			name += "/" + x.String()
		}
	}
	return name
}

// New builds the kernel of c, filling in the defaults, or fails tb.
func (c Case) New(tb testing.TB) ops.Op {
	tb.Helper()
	opset, nOut, attrs := c.Opset, c.NOut, c.Attrs
	if opset == 0 {
		opset = 13
	}
	if nOut == 0 {
		nOut = 1
	}
	if attrs == nil {
		attrs = graph.Attrs{}
	}
	k, err := ops.New(&ops.Config{OpType: c.Op, Opset: opset, Attrs: attrs, NumInputs: len(c.In), NumOutputs: nOut})
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// ArenaRuns checks k on in. Run (nil arena) gives the reference; RunWith
// runs twice on one arena, so the second run gets the first run's buffers
// back, and both must give the same outputs under same and pass check (nil:
// nothing more); then a steady-state RunWith must allocate nothing.
func ArenaRuns(t *testing.T, k ops.Op, in []*tensor.Tensor, same func(got, want *tensor.Tensor) error, check func(t *testing.T, got []*tensor.Tensor)) {
	t.Helper()
	ak, ok := k.(ops.ArenaOp)
	if !ok {
		t.Fatalf("%T is not an ops.ArenaOp", k)
	}
	want, err := k.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	a := &ops.Arena{}
	for run := 0; run < 2; run++ {
		a.Reset()
		got, err := ak.RunWith(a, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d outputs, want %d", len(got), len(want))
		}
		for j := range want {
			if err := same(got[j], want[j]); err != nil {
				t.Fatalf("output %d: %v", j, err)
			}
		}
		if check != nil {
			check(t, got)
		}
	}
	allocs := testing.AllocsPerRun(20, func() {
		a.Reset()
		if _, err := ak.RunWith(a, in); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("steady-state RunWith allocates %v times per run", allocs)
	}
}

// Concurrent starts callers goroutines, each with its own arena as the
// executors of one session have, and has each call run runs times, resetting
// its arena first. Every caller stops at its first error, which fails t.
func Concurrent(t testing.TB, callers, runs int, run func(caller, r int, ar *ops.Arena) error) {
	t.Helper()
	errs := make(chan error, callers)
	for i := 0; i < callers; i++ {
		go func(i int) {
			var ar ops.Arena
			for r := 0; r < runs; r++ {
				ar.Reset()
				if err := run(i, r, &ar); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(i)
	}
	for i := 0; i < callers; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// ArenaConcurrent runs k on in from four callers at once, three runs each,
// and every output must match Run's under same; name labels the failures.
// The race detector sees the kernel shared the way a session shares it.
func ArenaConcurrent(t testing.TB, name string, k ops.Op, in []*tensor.Tensor, same func(got, want *tensor.Tensor) error) {
	t.Helper()
	want, err := k.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	Concurrent(t, 4, 3, func(_, _ int, a *ops.Arena) error {
		got, err := k.(ops.ArenaOp).RunWith(a, in)
		if err != nil {
			return err
		}
		for j := range want {
			if err := same(got[j], want[j]); err != nil {
				return fmt.Errorf("%s: concurrent run: %v", name, err)
			}
		}
		return nil
	})
}

// Bench runs k on in the way the runtime does: through RunWith on one reused
// arena when the kernel has it (a steady state allocates nothing), else
// Run. bytes gives the bytes one run processes from a first run's outputs.
func Bench(b *testing.B, k ops.Op, bytes func(out []*tensor.Tensor) int64, in ...*tensor.Tensor) {
	b.Helper()
	run := k.Run
	if ak, ok := k.(ops.ArenaOp); ok {
		a := &ops.Arena{}
		run = func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			a.Reset()
			return ak.RunWith(a, in)
		}
	}
	out, err := run(in)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(bytes(out))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := run(in); err != nil {
			b.Fatal(err)
		}
	}
}
