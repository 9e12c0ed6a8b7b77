package rnn

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/ops/parallel"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Define(ops.Desc{Type: "LSTM", Since: 1, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) { return newOp(c, cellLSTM) }})
	ops.Define(ops.Desc{Type: "GRU", Since: 1, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) { return newOp(c, cellGRU) }})
	ops.Define(ops.Desc{Type: "RNN", Since: 1, Kernel: func(c *ops.Config) (ops.Op, error) { return newOp(c, cellRNN) }})
}

type cellKind int

const (
	cellLSTM cellKind = iota
	cellGRU
	cellRNN
)

func (k cellKind) String() string { return [...]string{"LSTM", "GRU", "RNN"}[k] }

// gates is the number of gate blocks stacked in W, R and each half of B.
func (k cellKind) gates() int { return [...]int{4, 3, 1}[k] }

func (k cellKind) maxOutputs() int {
	if k == cellLSTM {
		return 3
	}
	return 2
}

// rnnOp is one configured LSTM, GRU or RNN node.
type rnnOp struct {
	cell        cellKind
	threads     int // intra-op parallelism budget (Config.Threads)
	hidden      int // from hidden_size; -1 when absent
	numDir      int
	reverse     []bool // per direction index
	layout      int
	hasClip     bool
	clip        float64
	acts        [][]act        // [direction][function]
	fast        []bool         // per direction: default activations
	activations [][]Activation // acts for Trace.Activations (shared, read-only)
	inputForget bool
	lbr         bool // GRU linear_before_reset
	numOutputs  int

	constIn [8]bool // Config.InputIsConst per input slot

	mu      sync.Mutex
	cache   any   // *weights[float32] or *weights[float64]
	parFree []any // idle *parRun[float32] / *parRun[float64]
}

func newOp(c *ops.Config, cell cellKind) (ops.Op, error) {
	o := &rnnOp{cell: cell, hidden: -1, numOutputs: c.NumOutputs, threads: max(c.Threads, 1)}
	for i := range o.constIn {
		o.constIn[i] = c.InputIsConst(i)
	}
	a := c.Attrs
	if a.Has("hidden_size") {
		h := a.Int("hidden_size", 0)
		if h < 0 || h > 1<<20 {
			return nil, ops.BadAttr("hidden_size", "must be in [0, 2^20], got %d", h)
		}
		o.hidden = int(h)
	}
	switch d := a.String("direction", "forward"); d {
	case "forward":
		o.numDir, o.reverse = 1, []bool{false}
	case "reverse":
		o.numDir, o.reverse = 1, []bool{true}
	case "bidirectional":
		o.numDir, o.reverse = 2, []bool{false, true}
	default:
		return nil, ops.BadAttr("direction", "must be forward, reverse or bidirectional, got %q", d)
	}
	o.layout = int(a.Int("layout", 0))
	if o.layout != 0 && o.layout != 1 {
		return nil, ops.BadAttr("layout", "must be 0 or 1, got %d", o.layout)
	}
	if a.Has("clip") {
		cl := a.Float("clip", 0)
		if !(cl > 0) {
			return nil, ops.BadAttr("clip", "must be positive, got %v", cl)
		}
		o.hasClip, o.clip = true, float64(cl)
	}
	var defs []string
	switch cell {
	case cellLSTM:
		defs = []string{"Sigmoid", "Tanh", "Tanh"}
		switch v := a.Int("input_forget", 0); v {
		case 0, 1:
			o.inputForget = v == 1
		default:
			return nil, ops.BadAttr("input_forget", "must be 0 or 1, got %d", v)
		}
	case cellGRU:
		defs = []string{"Sigmoid", "Tanh"}
		switch v := a.Int("linear_before_reset", 0); v {
		case 0, 1:
			o.lbr = v == 1
		default:
			return nil, ops.BadAttr("linear_before_reset", "must be 0 or 1, got %d", v)
		}
	case cellRNN:
		defs = []string{"Tanh"}
	}
	acts, err := parseActs(a, o.numDir, defs)
	if err != nil {
		return nil, err
	}
	o.acts = acts
	o.activations = make([][]Activation, len(acts))
	for d, fs := range acts {
		for _, f := range fs {
			o.activations[d] = append(o.activations[d], Activation{f})
		}
	}
	o.fast = make([]bool, o.numDir)
	for d, fs := range acts {
		ok := true
		for i, f := range fs {
			want := actTanh
			if defs[i] == "Sigmoid" {
				want = actSigmoid
			}
			ok = ok && f.kind == want
		}
		o.fast[d] = ok
	}
	return o, nil
}

// dims are the sizes a Run works with.
type dims struct {
	seq, batch, in, hid, gh int
}

func (o *rnnOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return o.RunWith(nil, in) }

// RunWith is Run with outputs and scratch from a (see ops.Arena): with a
// reused arena a steady-state run allocates nothing on one thread.
func (o *rnnOp) RunWith(a *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 3); err != nil {
		return nil, err
	}
	switch in[0].DType {
	case tensor.Float32:
		return run[float32](o, a, in, nil)
	case tensor.Float64:
		return run[float64](o, a, in, nil)
	}
	return nil, ops.BadInput(0, "dtype %v not supported (want float32 or float64)", in[0].DType)
}

func input(in []*tensor.Tensor, i int) *tensor.Tensor {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// check validates the inputs' dtypes and shapes and returns the sizes.
func (o *rnnOp) check(in []*tensor.Tensor) (dims, error) {
	var dm dims
	x, w, r := in[0], in[1], in[2]
	for i := 1; i < len(in) && i < 8; i++ {
		if in[i] == nil || i == 4 {
			continue
		}
		if in[i].DType != x.DType {
			return dm, ops.BadInput(i, "dtype %v does not match X's %v", in[i].DType, x.DType)
		}
	}
	if len(in) > 8 {
		return dm, fmt.Errorf("%v takes at most 8 inputs, got %d", o.cell, len(in))
	}
	if o.cell != cellLSTM && len(in) > 6 {
		for i := 6; i < len(in); i++ {
			if in[i] != nil {
				return dm, ops.BadInput(i, "%v takes at most 6 inputs", o.cell)
			}
		}
	}
	if x.Rank() != 3 {
		return dm, ops.BadInput(0, "X must have rank 3, got shape %v", x.Shape)
	}
	if o.layout == 0 {
		dm.seq, dm.batch = x.Shape[0], x.Shape[1]
	} else {
		dm.batch, dm.seq = x.Shape[0], x.Shape[1]
	}
	dm.in = x.Shape[2]
	nd, g := o.numDir, o.cell.gates()
	if r.Rank() != 3 || r.Shape[0] != nd {
		return dm, ops.BadInput(2, "R must have shape [%d, %d*hidden, hidden], got %v", nd, g, r.Shape)
	}
	dm.hid = r.Shape[2]
	if o.hidden >= 0 && o.hidden != dm.hid {
		return dm, ops.BadInput(2, "R shape %v does not match hidden_size %d", r.Shape, o.hidden)
	}
	dm.gh = g * dm.hid
	if _, err := tensor.NumElements([]int{dm.seq, dm.batch, 2 * dm.gh}); err != nil {
		return dm, ops.BadInput(0, "X shape %v with hidden size %d needs too large a workspace: %v", x.Shape, dm.hid, err)
	}
	// per-row state and gates, needed even when there are no steps
	if _, err := tensor.NumElements([]int{dm.batch, 2*dm.gh + 4*dm.hid}); err != nil {
		return dm, ops.BadInput(0, "X shape %v with hidden size %d needs too large a workspace: %v", x.Shape, dm.hid, err)
	}
	if r.Shape[1] != dm.gh {
		return dm, ops.BadInput(2, "R must have shape [%d, %d, %d], got %v", nd, dm.gh, dm.hid, r.Shape)
	}
	if !tensor.SameShape(w.Shape, []int{nd, dm.gh, dm.in}) {
		return dm, ops.BadInput(1, "W must have shape [%d, %d, %d], got %v", nd, dm.gh, dm.in, w.Shape)
	}
	if b := input(in, 3); b != nil && !tensor.SameShape(b.Shape, []int{nd, 2 * dm.gh}) {
		return dm, ops.BadInput(3, "B must have shape [%d, %d], got %v", nd, 2*dm.gh, b.Shape)
	}
	if s := input(in, 4); s != nil {
		if s.DType != tensor.Int32 && s.DType != tensor.Int64 {
			return dm, ops.BadInput(4, "sequence_lens must be int32, got %v", s.DType)
		}
		if !tensor.SameShape(s.Shape, []int{dm.batch}) {
			return dm, ops.BadInput(4, "sequence_lens must have shape [%d], got %v", dm.batch, s.Shape)
		}
	}
	// an array, copied only into error messages, so the check allocates
	// nothing
	state := [3]int{nd, dm.batch, dm.hid}
	if o.layout == 1 {
		state = [3]int{dm.batch, nd, dm.hid}
	}
	if h := input(in, 5); h != nil && !tensor.SameShape(h.Shape, state[:]) {
		return dm, ops.BadInput(5, "initial_h must have shape %v, got %v", fmt.Sprint(state), h.Shape)
	}
	if o.cell == cellLSTM {
		if c := input(in, 6); c != nil && !tensor.SameShape(c.Shape, state[:]) {
			return dm, ops.BadInput(6, "initial_c must have shape %v, got %v", fmt.Sprint(state), c.Shape)
		}
		if p := input(in, 7); p != nil && !tensor.SameShape(p.Shape, []int{nd, 3 * dm.hid}) {
			return dm, ops.BadInput(7, "P must have shape [%d, %d], got %v", nd, 3*dm.hid, p.Shape)
		}
	}
	return dm, nil
}

// seqLens returns per-row lengths (arena scratch), or nil when every row
// runs all steps.
func seqLens(a *ops.Arena, s *tensor.Tensor, dm dims) ([]int, error) {
	if s == nil {
		return nil, nil
	}
	var at func(i int) int64
	switch v := s.Data.(type) {
	case []int32:
		at = func(i int) int64 { return int64(v[i]) }
	case []int64:
		at = func(i int) int64 { return v[i] }
	default:
		return nil, ops.BadInput(4, "sequence_lens must be int32 or int64, got %v", s.DType)
	}
	full := true
	for i := 0; i < dm.batch; i++ {
		l := at(i)
		if l < 0 || l > int64(dm.seq) {
			return nil, ops.BadInput(4, "sequence_lens[%d] = %d out of range [0, %d]", i, l, dm.seq)
		}
		full = full && int(l) == dm.seq
	}
	if full {
		return nil, nil
	}
	out := a.Ints(dm.batch)
	for i := range out {
		out[i] = int(at(i))
	}
	return out, nil
}

// dirWeights are one direction's weights, packed for the multiply kernel,
// with the biases pre-summed. A job points to a copy owned by its run (on
// the run's stack, or in the parRun of a parallel run, cleared after it)
// or by a bound op, so a run with per-run (non-constant) weights leaves no
// pointer to its stack behind.
type dirWeights[T tensor.Float] struct {
	w     packed[T] // [gates*H, I]
	r     packed[T] // [gates*H, H]; GRU lbr=0: only the z and r rows
	rh    packed[T] // GRU lbr=0: the h rows of R
	xbias []T       // added to X·Wᵀ: Wb+Rb (GRU lbr=1 h block: Wbh only); zeros without B
	rbias []T       // added to H·Rᵀ: GRU lbr=1 holds Rbh in its h block
	pi    []T       // peepholes (LSTM) or nil
	po    []T
	pf    []T
	// fused cell (float32, default activations, see fusedOK): W and R
	// packed together when fuseX, R alone otherwise (X·Wᵀ then comes from w)
	cell  linalg.CellWeights
	gru0  linalg.GRU0Weights // GRU linear_before_reset=0 (two passes)
	fuseX bool
	fused bool
}

// weights caches the packed weights of all directions, keyed on the
// identity of the input tensors' data (W, R, B, P). It is only used when
// the runtime says those inputs are constant (Config.ConstInputs): an arena
// buffer may hold new data at the same address on the next run. It keeps
// the slices referenced so that their addresses cannot be reused by other
// data while cached. A few sampled values per slice are compared on every
// hit, so a caller that rewrites a weight buffer in place is very likely
// (though not certain) to be noticed.
type weights[T tensor.Float] struct {
	keys    [4]unsafe.Pointer
	lens    [4]int
	in      int
	hid     int
	fused   [2]bool
	keep    [4][]T
	samples [4][nSamples]T
	dirs    [2]dirWeights[T]
}

const nSamples = 8

func sample[T tensor.Float](s []T) (out [nSamples]T) {
	if len(s) == 0 {
		return
	}
	for i := range out {
		out[i] = s[(len(s)-1)*i/(nSamples-1)]
	}
	return
}

// same compares sampled values bitwise (so NaN weights still match).
func sameSamples[T tensor.Float](a, b [nSamples]T) bool {
	for i := range a {
		if a[i] != b[i] && (a[i] == a[i] || b[i] == b[i]) {
			return false
		}
	}
	return true
}

func dataOf[T tensor.Float](t *tensor.Tensor) []T {
	if t == nil {
		return nil
	}
	return t.Data.([]T)
}

// forceFused overrides the choice of the fused cells in tests: 0 = when
// the assembly is available, 1 = always (the pure-Go cell too), -1 = never.
var forceFused = 0

// fuseMaxIn is the widest input the fused cell multiplies step by step;
// wider inputs are projected for all steps at once by one GEMM, which
// blocks rows and runs nearer peak.
const fuseMaxIn = 16

// fusedOK reports whether direction d of a float32 run can use the fused
// cell kernels.
func fusedOK[T tensor.Float](o *rnnOp, in []*tensor.Tensor, d int) bool {
	var z T
	if _, ok := any(z).(float32); !ok || forceFused < 0 {
		return false
	}
	if forceFused == 0 && !linalg.CellAccelerated() {
		return false
	}
	if !o.fast[d] || o.hasClip {
		return false
	}
	switch o.cell {
	case cellLSTM:
		return !o.inputForget && input(in, 7) == nil
	case cellGRU, cellRNN:
		return true
	}
	return false
}

// getWeights returns the packed weights, from the cache when W, R, B and P
// are constant (and the run is not traced: training changes the weights,
// in place when it checks gradients), else packed into arena scratch for
// this run only.
func getWeights[T tensor.Float](o *rnnOp, a *ops.Arena, in []*tensor.Tensor, dm dims, traced bool) [2]dirWeights[T] {
	src := [4][]T{dataOf[T](in[1]), dataOf[T](in[2]), dataOf[T](input(in, 3)), nil}
	if o.cell == cellLSTM {
		src[3] = dataOf[T](input(in, 7))
	}
	var fused [2]bool
	for d := 0; d < o.numDir; d++ {
		fused[d] = fusedOK[T](o, in, d)
	}
	// cache only when every weight input given is constant (an omitted
	// optional input, nil here, counts as constant)
	constW := !traced
	for i, s := range src {
		slot := [4]int{1, 2, 3, 7}[i]
		constW = constW && (s == nil || o.constIn[slot])
	}
	if !constW {
		// packed into this run's scratch: a cache would be keyed by
		// addresses an arena reuses for other data
		var dirs [2]dirWeights[T]
		packWeights(o, a, src, dm, fused, &dirs)
		return dirs
	}
	var keys [4]unsafe.Pointer
	var lens [4]int
	for i, s := range src {
		if s != nil {
			keys[i], lens[i] = unsafe.Pointer(unsafe.SliceData(s)), len(s)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var samples [4][nSamples]T
	for i, s := range src {
		samples[i] = sample(s)
	}
	if c, ok := o.cache.(*weights[T]); ok && c.keys == keys && c.lens == lens && c.in == dm.in && c.hid == dm.hid &&
		c.fused == fused && sameSamples(c.samples[0], samples[0]) && sameSamples(c.samples[1], samples[1]) &&
		sameSamples(c.samples[2], samples[2]) && sameSamples(c.samples[3], samples[3]) {
		return c.dirs
	}
	c := &weights[T]{keys: keys, lens: lens, in: dm.in, hid: dm.hid, fused: fused, keep: src, samples: samples}
	packWeights(o, nil, src, dm, fused, &c.dirs)
	o.cache = c
	return c.dirs
}

// packWeights packs every direction, taking buffers from a (nil: fresh).
func packWeights[T tensor.Float](o *rnnOp, a *ops.Arena, src [4][]T, dm dims, fused [2]bool, dirs *[2]dirWeights[T]) {
	H, GH, I := dm.hid, dm.gh, dm.in
	for d := 0; d < o.numDir; d++ {
		dw := &dirs[d]
		wd := src[0][d*GH*I : (d+1)*GH*I]
		rd := src[1][d*GH*H : (d+1)*GH*H]
		dw.fused = fused[d]
		dw.fuseX = fused[d] && I <= fuseMaxIn
		if !dw.fuseX {
			dw.w = packRows(a, wd, 0, GH, I)
		}
		switch {
		case dw.fused:
			k := 0
			var w32 []float32
			if dw.fuseX {
				k, w32 = I, any(wd).([]float32)
			}
			if o.cell == cellGRU && !o.lbr {
				linalg.PackGRU0(&dw.gru0, a.Float32s(linalg.GRU0Size(k, H)), k, H, w32, any(rd).([]float32))
				break
			}
			g := o.cell.gates()
			linalg.PackCell(&dw.cell, a.Float32s(linalg.CellSize(g, k, H)), g, k, H, w32, any(rd).([]float32))
		case o.cell == cellGRU && !o.lbr:
			dw.r = packRows(a, rd, 0, 2*H, H)
			dw.rh = packRows(a, rd, 2*H, H, H)
		default:
			dw.r = packRows(a, rd, 0, GH, H)
		}
		dw.xbias = scratch[T](a, GH)
		if b := src[2]; b != nil {
			bd := b[d*2*GH : (d+1)*2*GH]
			wb, rb := bd[:GH], bd[GH:]
			for j := range dw.xbias {
				dw.xbias[j] = wb[j] + rb[j]
			}
			if o.cell == cellGRU && o.lbr {
				dw.rbias = scratch[T](a, GH)
				copy(dw.rbias[2*H:], rb[2*H:])
				copy(dw.xbias[2*H:], wb[2*H:])
			}
		}
		if p := src[3]; p != nil {
			pd := scratch[T](a, 3*H)
			copy(pd, p[d*3*H:(d+1)*3*H])
			dw.pi, dw.po, dw.pf = pd[:H], pd[H:2*H], pd[2*H:]
		}
	}
}

// scratch returns n zeroed elements of arena scratch (fresh memory when a
// is nil): float32 from the arena's scratch, float64 as an arena tensor.
// The type switches are resolved per instantiation.
func scratch[T tensor.Float](a *ops.Arena, n int) []T {
	var z T
	if _, ok := any(z).(float32); ok {
		return any(a.Float32s(n)).([]T)
	}
	if t, err := a.New(tensor.Float64, []int{n}); err == nil {
		return t.Data.([]T)
	}
	return make([]T, n) // New fails only for a negative n, as make does
}

// jobScratch returns j's scratch of n elements: zeroed, except for a fused
// job, which clears the few buffers it needs zeroed itself (runFused) and
// fully overwrites the rest, the input projection of every step (10 MB for
// GRU(128), T = 100, batch 64) among them.
func jobScratch[T tensor.Float](a *ops.Arena, j *job[T], n int) []T {
	if j.w.fused {
		return any(a.EmptyFloat32s(n)).([]T) // fused implies float32
	}
	return scratch[T](a, n)
}

// parallelWork is the multiply-add count from which a Run splits its batch
// rows and directions across goroutines. Once ops/parallel's workers poll
// between calls instead of parking (a parked one needed ~100-230 µs to get
// a core), a hand-off costs well under a microsecond and the limit is the
// data the second core must fetch from the first (the input rows, written
// by the op before): GRU(32) batch 64, 12M multiply-adds, ~0.23 ms, gains
// ~1.15× at p50 on two threads; LSTM(64) batch 64, 53M, ~1.7×.
var parallelWork = 1 << 22

// chunksPerThread is how many row blocks per thread a parallel run makes.
// Blocks are claimed from a shared counter, so more blocks let the caller
// take over the share of a helper that starts late (under load); with
// helpers that are awake, one block each measured best on the quiet
// 2-vCPU machine (p50 GRU(32) batch 64: 0.198 ms with 1, 0.211 with 2;
// LSTM(64): ~0.46 ms with either), as each block's rows stay on one core.
var chunksPerThread = 1

// job is the recurrence of one direction over a contiguous range of batch
// rows; rows are independent, so jobs run in parallel. Each job owns its
// scratch (taken from the arena before any goroutine starts).
type job[T tensor.Float] struct {
	o      *rnnOp
	w      *dirWeights[T] // the run's (or a bound op's), not the cache's
	d      int
	dm     dims
	b0, b1 int
	x      []T
	lens   []int
	h0, c0 []T
	y      []T
	yh, yc []T
	buf    []T
	tr     *Trace[T]  // nil unless a training pass traces the run
	arena  *ops.Arena // for cancellation checks (Arena.Err) only
}

// cancelEvery is how many time steps a job runs between checks of the
// run's context: a cancelled run stops within that many steps.
const cancelEvery = 8

// stopped reports, every cancelEvery steps, whether the run was cancelled.
func (j *job[T]) stopped(s int) bool {
	return s%cancelEvery == cancelEvery-1 && j.arena.Err() != nil
}

// projChunk bounds the input projection a fused job computes ahead of the
// recurrence (bytes): the steps' rows are projected a few steps at a time,
// just before those steps run, so they are read back from L2 rather than
// written to and re-read from memory (all T steps of GRU(128) at batch 64
// are 10 MB per direction).
var projChunk = 256 << 10

// projSteps is how many steps' input projection a fused job over cb rows
// computes at a time: all of them with sequence_lens (each row then runs
// its own steps), else as many as fit projChunk, at least one.
func (j *job[T]) projSteps(cb int) int {
	seq := j.dm.seq
	if j.lens != nil || cb == 0 || j.dm.gh == 0 {
		return seq
	}
	return max(1, min(seq, projChunk/(4*cb*j.dm.gh)))
}

// scratchSize is the scratch a job over cb rows needs.
func (j *job[T]) scratchSize(cb int) int {
	o, dm := j.o, j.dm
	H, GH := dm.hid, dm.gh
	if cb == 0 {
		return 0
	}
	if j.w.fused {
		n := 3 * cb * H // c, and two h buffers
		if o.cell == cellGRU && !o.lbr {
			n += 2 * cb * H // z and r⊙h between the two passes
		}
		if !j.w.fuseX {
			steps := j.projSteps(cb)
			n += steps*cb*GH + linalg.WorkSize(steps*cb, dm.in)
		}
		return n
	}
	ngate := GH
	if o.cell == cellGRU && !o.lbr {
		ngate = 2 * H
	}
	n := dm.seq*cb*GH + cb*ngate + 2*cb*H
	if o.cell == cellLSTM {
		n += cb * H
	}
	if o.cell == cellGRU && !o.lbr {
		n += 2 * cb * H
	}
	// A-panel work of the GEMMs (the input projection is the largest)
	return n + linalg.WorkSize(max(dm.seq*cb, cb), max(dm.in, H))
}

// run is Run with an optional trace (RunTraced), which runs on the calling
// goroutine only.
func run[T tensor.Float](o *rnnOp, a *ops.Arena, in []*tensor.Tensor, tr *Trace[T]) ([]*tensor.Tensor, error) {
	dm, err := o.check(in)
	if err != nil {
		return nil, err
	}
	return runChecked(o, a, in, dm, nil, tr)
}

// runChecked is run after the checks of in (sizes dm), with the packed
// weights given (a bound op's) or, when wb is nil, from getWeights.
func runChecked[T tensor.Float](o *rnnOp, a *ops.Arena, in []*tensor.Tensor, dm dims, wb *[2]dirWeights[T], tr *Trace[T]) ([]*tensor.Tensor, error) {
	nd := o.numDir
	work := dm.seq * dm.batch * dm.gh * (dm.in + dm.hid) * nd
	split := o.threads > 1 && work >= parallelWork && tr == nil
	if split {
		// a parked worker takes a while to get a core: wake it now, so it
		// is polling by the time the buffers below are ready
		parallel.Wake(o.threads)
	}
	lens, err := seqLens(a, input(in, 4), dm)
	if err != nil {
		return nil, err
	}
	sa := a // scratch and packed weights
	if tr != nil {
		tr.start(o, dm, append([]int(nil), lens...), keptGates(o, in))
		sa = tr.scratchArena()
	}
	var yShape, hShape [4]int
	if o.layout == 0 {
		yShape = [4]int{dm.seq, nd, dm.batch, dm.hid}
		hShape = [4]int{nd, dm.batch, dm.hid}
	} else {
		yShape = [4]int{dm.batch, dm.seq, nd, dm.hid}
		hShape = [4]int{dm.batch, nd, dm.hid}
	}
	dt := in[0].DType
	var outs [3]*tensor.Tensor
	var y, yh, yc []T
	nOut := min(o.numOutputs, o.cell.maxOutputs())
	if nOut >= 1 && (tr == nil || !tr.omitY) {
		// without sequence_lens every element of Y is written
		if lens != nil {
			outs[0], err = a.New(dt, yShape[:])
		} else {
			outs[0], err = a.Empty(dt, yShape[:])
		}
		if err != nil {
			return nil, err
		}
		y = dataOf[T](outs[0])
	}
	if nOut >= 2 {
		if outs[1], err = a.Empty(dt, hShape[:3]); err != nil {
			return nil, err
		}
		yh = dataOf[T](outs[1])
	}
	if nOut >= 3 {
		if outs[2], err = a.Empty(dt, hShape[:3]); err != nil {
			return nil, err
		}
		yc = dataOf[T](outs[2])
	}
	wts := wb
	if wts == nil {
		w := getWeights[T](o, sa, in, dm, tr != nil)
		wts = &w
	}
	var c0 []T
	if o.cell == cellLSTM {
		c0 = dataOf[T](input(in, 6))
	}
	base := job[T]{o: o, dm: dm, x: dataOf[T](in[0]), lens: lens, arena: a,
		h0: dataOf[T](input(in, 5)), c0: c0, y: y, yh: yh, yc: yc, tr: tr}
	result := func() []*tensor.Tensor {
		// extra declared outputs beyond the op's own stay nil
		switch o.numOutputs {
		case 0:
			return a.Outputs()
		case 1:
			return a.Outputs(outs[0])
		case 2:
			return a.Outputs(outs[0], outs[1])
		case 3:
			return a.Outputs(outs[0], outs[1], outs[2])
		}
		r := make([]*tensor.Tensor, o.numOutputs)
		copy(r, outs[:])
		return r
	}

	// Split rows across goroutines when there is enough work.
	chunks := 1
	if split {
		// several row blocks per thread, handed out from a shared
		// counter: a thread whose core is busy with something else takes
		// fewer, so the run does not wait on a straggler (cores are often
		// shared)
		chunks = min(chunksPerThread*((o.threads+nd-1)/nd), max(1, dm.batch/8))
	}
	if !split || nd*chunks == 1 {
		// sequential: jobs live on this stack, nothing escapes
		j := base
		j.b1 = dm.batch
		for d := 0; d < nd; d++ {
			j.w, j.d = &wts[d], d
			j.buf = jobScratch[T](sa, &j, j.scratchSize(dm.batch))
			runJob(&j)
		}
		if err := a.Err(); err != nil {
			return nil, err
		}
		return result(), nil
	}
	runParallel(o, a, base, wts, nd, chunks)
	if err := a.Err(); err != nil {
		return nil, err
	}
	return result(), nil
}

// parRun is the job list of one parallel Run (a parallel.Task: chunk i is
// jobs[i]). It is reused through the op's free list (a run's headers, not
// its buffers, which come from the arena), so a parallel run allocates
// nothing in steady state.
type parRun[T tensor.Float] struct {
	jobs []job[T]
	wts  [2]dirWeights[T] // the run's weights, which the jobs point to
}

// Do runs job i.
func (p *parRun[T]) Do(i int) { runJob(&p.jobs[i]) }

// runParallel runs nd×chunks jobs on the calling goroutine and up to
// threads-1 ops/parallel workers, handed out once per Run (each job covers
// every time step of its rows, so there is no per-step synchronisation).
func runParallel[T tensor.Float](o *rnnOp, a *ops.Arena, base job[T], wts *[2]dirWeights[T], nd, chunks int) {
	o.mu.Lock()
	var p *parRun[T]
	for i := len(o.parFree) - 1; i >= 0 && p == nil; i-- {
		if q, ok := o.parFree[i].(*parRun[T]); ok {
			p = q
			o.parFree = append(o.parFree[:i], o.parFree[i+1:]...)
		}
	}
	o.mu.Unlock()
	if p == nil {
		p = new(parRun[T])
	}
	batch := base.dm.batch
	p.wts = *wts
	for d := 0; d < nd; d++ {
		for ci := 0; ci < chunks; ci++ {
			j := base
			j.w, j.d = &p.wts[d], d
			j.b0, j.b1 = batch*ci/chunks, batch*(ci+1)/chunks
			j.buf = jobScratch[T](a, &j, j.scratchSize(j.b1-j.b0))
			p.jobs = append(p.jobs, j)
		}
	}
	parallel.Run(p, len(p.jobs), o.threads)
	// drop references to this run's inputs and buffers before parking
	clear(p.jobs)
	p.jobs = p.jobs[:0]
	p.wts = [2]dirWeights[T]{}
	o.mu.Lock()
	if len(o.parFree) < 8 {
		o.parFree = append(o.parFree, p)
	}
	o.mu.Unlock()
}

func clamp[T tensor.Float](v, c T) T {
	if v > c {
		return c
	}
	if v < -c {
		return -c
	}
	return v
}

// f32 is s as []float32 (T is float32 whenever this is called).
func f32[T tensor.Float](s []T) []float32 { return any(s).([]float32) }

// runFused runs one direction over rows [b0, b1) with the fused cell
// kernels (float32). Without sequence_lens the new hidden state is written
// straight into Y (row stride H for layout 0, seq·nd·H for layout 1) and
// read back from there at the next step: no copies. With sequence_lens each
// live row steps on its own.
func runFused(j *job[float32]) {
	o, w, dm := j.o, j.w, j.dm
	seq, batch, I, H, GH := dm.seq, dm.batch, dm.in, dm.hid, dm.gh
	cb := j.b1 - j.b0
	if H == 0 {
		return // Y, Y_h and Y_c are empty
	}
	nd, d := o.numDir, j.d
	rev := o.reverse[d]
	lstm := o.cell == cellLSTM
	buf := j.buf
	take := func(n int) []float32 {
		s := buf[:n:n]
		buf = buf[n:]
		return s
	}
	// the scratch comes uncleared (jobScratch): zero the states and the
	// GRU buffers here; the input projection and its work are overwritten
	cs, hA, hB := take(cb*H), take(cb*H), take(cb*H)
	clear(cs)
	clear(hA)
	clear(hB)
	gru0 := o.cell == cellGRU && !o.lbr
	var zs, rhs []float32
	if gru0 {
		zs, rhs = take(cb*H), take(cb*H)
		clear(zs)
		clear(rhs)
	}
	var xw, work []float32
	// xw row of (t, local row lb) = xw[(t-xw0)*xwT + lb*xwB]
	xwT, xwB := cb*GH, GH
	xw0, xw1 := 0, 0 // the steps xw holds
	steps := j.projSteps(cb)
	if o.layout == 1 && steps == seq {
		xwT, xwB = GH, seq*GH
	}
	// project computes the rows of steps [t0, t1) into xw. Each row's sum
	// is the same whatever the block of rows it is computed in
	// (linalg.TestRowResultIndependentOfBlock), so projecting a few steps
	// at a time gives the same bits as all at once.
	project := func(t0, t1 int) {
		xw0, xw1 = t0, t1
		switch {
		case o.layout == 0 && cb == batch:
			gemmNT((t1-t0)*batch, j.x[t0*batch*I:], I, &w.w, w.xbias, xw, GH, work)
		case o.layout == 0:
			for t := t0; t < t1; t++ {
				gemmNT(cb, j.x[(t*batch+j.b0)*I:], I, &w.w, w.xbias, xw[(t-t0)*cb*GH:], GH, work)
			}
		case t1-t0 == seq:
			gemmNT(cb*seq, j.x[j.b0*seq*I:], I, &w.w, w.xbias, xw, GH, work)
		default:
			for t := t0; t < t1; t++ {
				gemmNT(cb, j.x[(j.b0*seq+t)*I:], seq*I, &w.w, w.xbias, xw[(t-t0)*cb*GH:], GH, work)
			}
		}
	}
	if !w.fuseX {
		xw = take(steps * cb * GH)
		work = take(linalg.WorkSize(steps*cb, I))
		if steps == seq {
			project(0, seq)
		}
	}
	// strides of X, Y and the initial/final states between batch rows
	xT, xB := batch*I, I
	yT, yB := nd*batch*H, H
	yBase := (d*batch + j.b0) * H
	sB, sBase := H, (d*batch+j.b0)*H
	if o.layout == 1 {
		xT, xB = I, seq*I
		yT, yB = nd*H, seq*nd*H
		yBase = (j.b0*seq*nd + d) * H
		sB, sBase = nd*H, (j.b0*nd+d)*H
	}
	xBase := j.b0 * xB
	if o.layout == 0 {
		xBase = j.b0 * I
	}
	for lb := 0; lb < cb; lb++ {
		if j.h0 != nil {
			copy(hA[lb*H:(lb+1)*H], j.h0[sBase+lb*sB:][:H])
		}
		if lstm && j.c0 != nil {
			copy(cs[lb*H:(lb+1)*H], j.c0[sBase+lb*sB:][:H])
		}
	}
	var rb []float32
	if !lstm && w.rbias != nil {
		rb = f32(w.rbias)[2*H:]
	}
	xbias := f32(w.xbias)
	args := linalg.CellArgs{RB: rb, C: cs, LdC: H}
	keep := j.tr != nil && j.tr.keep
	// keepAt points the cell's gate outputs at the trace's rows of time t
	// from local row lb (a traced LSTM keeps them for BPTT)
	keepAt := func(t, lb int) {
		if keep {
			at := j.tr.at(d, t, j.b0+lb)
			args.Gates, args.LdGates = j.tr.gates[4*at:], 4*H
			args.TanhC, args.LdTanhC = j.tr.tanhC[at:], H
		}
	}
	step := func() {
		switch {
		case lstm:
			linalg.LSTMCell(&w.cell, &args)
		case gru0:
			linalg.GRU0Cell(&w.gru0, &args, zs, rhs)
		case o.cell == cellRNN:
			linalg.RNNCell(&w.cell, &args)
		default:
			linalg.GRUCell(&w.cell, &args)
		}
	}
	setInput := func(t, lb, rows int) {
		args.Rows = rows
		if w.fuseX {
			args.X, args.LdX = j.x[xBase+t*xT+lb*xB:], xB
			args.Init, args.LdInit = xbias, 0
		} else {
			if t < xw0 || t >= xw1 {
				// the next steps in the order they run
				if rev {
					project(max(0, t+1-steps), t+1)
				} else {
					project(t, min(seq, t+steps))
				}
			}
			args.X, args.LdX = nil, 0
			args.Init, args.LdInit = xw[(t-xw0)*xwT+lb*xwB:], xwB
		}
	}
	if j.lens == nil {
		args.H, args.LdH = hA, H
		for s := 0; s < seq && !j.stopped(s); s++ {
			t := s
			if rev {
				t = seq - 1 - s
			}
			setInput(t, 0, cb)
			keepAt(t, 0)
			if j.tr != nil && args.LdH == H {
				// rows contiguous in Y (layout 0) and in the trace: one copy
				// (none for h when the step before wrote it there)
				j.tr.recordRows(d, t, j.b0, cb, args.H, cs, lstm)
			} else if j.tr != nil {
				for lb := 0; lb < cb; lb++ {
					var c []float32
					if lstm {
						c = cs[lb*H:][:H]
					}
					j.tr.record(d, t, j.b0+lb, args.H[lb*args.LdH:][:H], c)
				}
			}
			next := t + 1
			if rev {
				next = t - 1
			}
			if j.y != nil {
				args.HOut, args.LdHOut = j.y[yBase+t*yT:], yB
			} else if j.tr != nil && s+1 < seq {
				// no Y (a trace told to omit it): the new state goes
				// straight into the trace's row of the next step
				args.HOut, args.LdHOut = j.tr.hRows(d, next, j.b0, cb), H
			} else if &args.H[0] == &hB[0] {
				args.HOut, args.LdHOut = hA, H
			} else {
				args.HOut, args.LdHOut = hB, H
			}
			step()
			args.H, args.LdH = args.HOut, args.LdHOut
		}
		if j.yh != nil {
			for lb := 0; lb < cb; lb++ {
				copy(j.yh[sBase+lb*sB:][:H], args.H[lb*args.LdH:][:H])
			}
		}
	} else {
		for lb := 0; lb < cb && !j.stopped(lb); lb++ {
			L := j.lens[j.b0+lb]
			args.C = cs[lb*H:]
			hs := hA[lb*H : (lb+1)*H]
			for s := 0; s < L && !j.stopped(s); s++ {
				t := s
				if rev {
					t = L - 1 - s
				}
				setInput(t, lb, 1)
				keepAt(t, lb)
				args.H, args.HOut = hs, hB[lb*H:(lb+1)*H]
				if j.tr != nil {
					var c []float32
					if lstm {
						c = cs[lb*H:][:H]
					}
					j.tr.record(d, t, j.b0+lb, hs, c)
				}
				step()
				copy(hs, args.HOut)
				if j.y != nil {
					copy(j.y[yBase+t*yT+lb*yB:][:H], hs)
				}
			}
			if j.yh != nil {
				copy(j.yh[sBase+lb*sB:][:H], hs)
			}
		}
	}
	if j.yc != nil {
		for lb := 0; lb < cb; lb++ {
			copy(j.yc[sBase+lb*sB:][:H], cs[lb*H:(lb+1)*H])
		}
	}
}

// runJob runs one direction over rows [b0, b1).
func runJob[T tensor.Float](j *job[T]) {
	o, w, dm := j.o, j.w, j.dm
	seq, batch, I, H, GH := dm.seq, dm.batch, dm.in, dm.hid, dm.gh
	cb := j.b1 - j.b0
	if cb == 0 {
		return
	}
	if w.fused {
		runFused(any(j).(*job[float32])) // fused implies float32
		return
	}
	nd, d := o.numDir, j.d
	rev := o.reverse[d]
	lstm, gru := o.cell == cellLSTM, o.cell == cellGRU
	ngate := GH // columns of the per-step recurrence product
	if gru && !o.lbr {
		ngate = 2 * H
	}
	buf := j.buf
	take := func(n int) []T {
		s := buf[:n:n]
		buf = buf[n:]
		return s
	}
	xw := take(seq * cb * GH)
	g := take(cb * ngate)
	hs := take(cb * H)
	var cs, rh, gh []T
	if lstm {
		cs = take(cb * H)
	}
	if gru && !o.lbr {
		rh = take(cb * H)
		gh = take(cb * H)
	}
	tc := take(cb * H) // LSTM: tanh of the new cell states
	// the A-panel work of linalg's float32 GEMM; gemmNT's float64 path
	// needs none
	work, _ := any(buf).([]float32)

	// Input projection for every step at once: xw = X·Wᵀ + bias.
	if o.layout == 0 {
		if cb == batch {
			gemmNT(seq*batch, j.x, I, &w.w, w.xbias, xw, GH, work)
		} else {
			for t := 0; t < seq; t++ {
				gemmNT(cb, j.x[(t*batch+j.b0)*I:], I, &w.w, w.xbias, xw[t*cb*GH:], GH, work)
			}
		}
	} else {
		gemmNT(cb*seq, j.x[j.b0*seq*I:], I, &w.w, w.xbias, xw, GH, work)
	}
	xwOff := func(t, lb int) int {
		if o.layout == 0 {
			return (t*cb + lb) * GH
		}
		return (lb*seq + t) * GH
	}
	stateOff := func(b int) int {
		if o.layout == 0 {
			return (d*batch + b) * H
		}
		return (b*nd + d) * H
	}
	yOff := func(t, b int) int {
		if o.layout == 0 {
			return ((t*nd+d)*batch + b) * H
		}
		return ((b*seq+t)*nd + d) * H
	}

	// Initial state.
	for lb := 0; lb < cb; lb++ {
		so := stateOff(j.b0 + lb)
		if j.h0 != nil {
			copy(hs[lb*H:(lb+1)*H], j.h0[so:so+H])
		} else {
			clear(hs[lb*H : (lb+1)*H])
		}
		if lstm {
			if j.c0 != nil {
				copy(cs[lb*H:(lb+1)*H], j.c0[so:so+H])
			} else {
				clear(cs[lb*H : (lb+1)*H])
			}
		}
	}
	steps := seq
	if j.lens != nil {
		steps = 0
		for _, l := range j.lens[j.b0:j.b1] {
			steps = max(steps, l)
		}
	}
	rowLen := func(lb int) int {
		if j.lens == nil {
			return seq
		}
		return j.lens[j.b0+lb]
	}
	acts := o.acts[d]
	fast := o.fast[d]
	clip := T(o.clip)
	hasClip := o.hasClip
	_, is32 := any(clip).(float32)
	keep := j.tr != nil && j.tr.keep
	gStep := g

	for s := 0; s < steps && !j.stopped(s); s++ {
		if j.tr != nil {
			for lb := 0; lb < cb; lb++ {
				if L := rowLen(lb); s < L {
					t := s
					if rev {
						t = L - 1 - s
					}
					var c []T
					if lstm {
						c = cs[lb*H:][:H]
					}
					j.tr.record(d, t, j.b0+lb, hs[lb*H:][:H], c)
				}
			}
		}
		g = gStep
		if keep && j.lens == nil {
			// a traced LSTM's gates go straight into the trace, where
			// lstmFast activates them in place
			t := s
			if rev {
				t = seq - 1 - s
			}
			g = j.tr.gates[4*j.tr.at(d, t, j.b0):][:cb*ngate]
		}
		gemmNT(cb, hs, H, &w.r, w.rbias, g, ngate, work)
		if gru && !o.lbr {
			// z and r first, then the h block needs (r ⊙ H)·Rhᵀ.
			for lb := 0; lb < cb; lb++ {
				L := rowLen(lb)
				if s >= L {
					continue
				}
				t := s
				if rev {
					t = L - 1 - s
				}
				x := xw[xwOff(t, lb):][:2*H]
				gr := g[lb*ngate:][:2*H]
				h := hs[lb*H:][:H]
				r := rh[lb*H:][:H]
				if fast && !hasClip && is32 {
					// vector sigmoid over the z and r blocks
					for k := range gr {
						gr[k] += x[k]
					}
					linalg.Sigmoid(f32(gr))
				} else {
					for k := 0; k < 2*H; k++ {
						v := x[k] + gr[k]
						if hasClip {
							v = clamp(v, clip)
						}
						if fast {
							gr[k] = sigmoid(v)
						} else {
							gr[k] = applyT(acts[0], v)
						}
					}
				}
				for k := range r {
					r[k] = gr[H+k] * h[k]
				}
			}
			gemmNT(cb, rh, H, &w.rh, nil, gh, H, work)
		}
		for lb := 0; lb < cb; lb++ {
			L := rowLen(lb)
			if s >= L {
				continue
			}
			t := s
			if rev {
				t = L - 1 - s
			}
			x := xw[xwOff(t, lb):][:GH]
			gr := g[lb*ngate:][:ngate]
			h := hs[lb*H:][:H]
			switch o.cell {
			case cellLSTM:
				c := cs[lb*H:][:H]
				if fast && !hasClip && w.pi == nil && !o.inputForget {
					tcRow := tc[lb*H:][:H]
					if keep {
						tcRow = j.tr.tanhC[j.tr.at(d, t, j.b0+lb):][:H]
					}
					lstmFast(x, gr, h, c, tcRow)
					if keep && j.lens != nil {
						copy(j.tr.gates[4*j.tr.at(d, t, j.b0+lb):][:4*H], gr)
					}
				} else {
					lstmGeneral(o, w, acts, x, gr, h, c, clip)
				}
			case cellGRU:
				if o.lbr {
					gruLBR(fast, acts, hasClip, clip, x, gr, h)
				} else {
					gruStep2(fast, acts, hasClip, clip, x[2*H:], gr[:H], gh[lb*H:][:H], h)
				}
			case cellRNN:
				f := acts[0]
				if fast && !hasClip && is32 {
					for k := range h {
						h[k] = x[k] + gr[k]
					}
					linalg.Tanh(f32(h))
					break
				}
				for k := range h {
					v := x[k] + gr[k]
					if hasClip {
						v = clamp(v, clip)
					}
					if fast {
						h[k] = tanh(v)
					} else {
						h[k] = applyT(f, v)
					}
				}
			}
			if j.y != nil {
				copy(j.y[yOff(t, j.b0+lb):][:H], h)
			}
		}
	}
	for lb := 0; lb < cb; lb++ {
		so := stateOff(j.b0 + lb)
		if j.yh != nil {
			copy(j.yh[so:so+H], hs[lb*H:(lb+1)*H])
		}
		if j.yc != nil {
			copy(j.yc[so:so+H], cs[lb*H:(lb+1)*H])
		}
	}
}

// lstmFast is the LSTM cell with the default activations and no clip,
// peepholes or input_forget. x and g hold the iofc pre-activations; g is
// left holding the activated gates i, o, f, c~ and tc (H) tanh of the new
// cell state, which a traced run keeps.
func lstmFast[T tensor.Float](x, g, h, c, tc []T) {
	if x32, ok := any(x).([]float32); ok {
		lstmFast32(x32, any(g).([]float32), any(h).([]float32), any(c).([]float32), any(tc).([]float32))
		return
	}
	H := len(h)
	c, tc = c[:H], tc[:H]
	xi, xo, xf, xc := x[:H], x[H:2*H], x[2*H:3*H], x[3*H:4*H]
	gi, gO, gf, gc := g[:H], g[H:2*H], g[2*H:3*H], g[3*H:4*H]
	for k := range h {
		i := sigmoid(xi[k] + gi[k])
		f := sigmoid(xf[k] + gf[k])
		cc := tanh(xc[k] + gc[k])
		o := sigmoid(xo[k] + gO[k])
		gi[k], gO[k], gf[k], gc[k] = i, o, f, cc
		cn := f*c[k] + i*cc
		c[k] = cn
		tc[k] = tanh(cn)
		h[k] = o * tc[k]
	}
}

func lstmGeneral[T tensor.Float](o *rnnOp, w *dirWeights[T], acts []act, x, g, h, c []T, clip T) {
	H := len(h)
	hasClip := o.hasClip
	fa, ga, ha := acts[0], acts[1], acts[2]
	for k := 0; k < H; k++ {
		ip := x[k] + g[k]
		op := x[H+k] + g[H+k]
		fp := x[2*H+k] + g[2*H+k]
		cp := x[3*H+k] + g[3*H+k]
		if w.pi != nil {
			ip += w.pi[k] * c[k]
			fp += w.pf[k] * c[k]
		}
		if hasClip {
			ip, fp, cp = clamp(ip, clip), clamp(fp, clip), clamp(cp, clip)
		}
		i := applyT(fa, ip)
		var f T
		if o.inputForget {
			f = 1 - i
		} else {
			f = applyT(fa, fp)
		}
		cn := f*c[k] + i*applyT(ga, cp)
		if w.po != nil {
			op += w.po[k] * cn
		}
		if hasClip {
			op = clamp(op, clip)
		}
		c[k] = cn
		h[k] = applyT(fa, op) * applyT(ha, cn)
	}
}

// gruLBR is the GRU cell with linear_before_reset=1: g holds H·Rᵀ (+Rbh in
// the h block), x the zrh input projections.
func gruLBR[T tensor.Float](fast bool, acts []act, hasClip bool, clip T, x, g, h []T) {
	if x32, ok := any(x).([]float32); ok && fast && !hasClip {
		gruLBRFast32(x32, any(g).([]float32), any(h).([]float32))
		return
	}
	H := len(h)
	for k := 0; k < H; k++ {
		zp := x[k] + g[k]
		rp := x[H+k] + g[H+k]
		if hasClip {
			zp, rp = clamp(zp, clip), clamp(rp, clip)
		}
		var z, r T
		if fast {
			z, r = sigmoid(zp), sigmoid(rp)
		} else {
			z, r = applyT(acts[0], zp), applyT(acts[0], rp)
		}
		hp := x[2*H+k] + r*g[2*H+k]
		if hasClip {
			hp = clamp(hp, clip)
		}
		var hh T
		if fast {
			hh = tanh(hp)
		} else {
			hh = applyT(acts[1], hp)
		}
		h[k] = (1-z)*hh + z*h[k]
	}
}

// gruStep2 finishes a linear_before_reset=0 GRU step: z holds the activated
// update gate, gh = (r ⊙ H)·Rhᵀ, xh the h block of the input projection.
func gruStep2[T tensor.Float](fast bool, acts []act, hasClip bool, clip T, xh, z, gh, h []T) {
	H := len(h)
	xh, z, gh = xh[:H], z[:H], gh[:H]
	if gh32, ok := any(gh).([]float32); ok && fast && !hasClip {
		// float32 default activations: one vector tanh over the row (gh
		// is this step's scratch)
		for k := range gh {
			gh[k] += xh[k]
		}
		linalg.Tanh(gh32)
		for k := range h {
			h[k] = (1-z[k])*gh[k] + z[k]*h[k]
		}
		return
	}
	for k := 0; k < H; k++ {
		hp := xh[k] + gh[k]
		if hasClip {
			hp = clamp(hp, clip)
		}
		var hh T
		if fast {
			hh = tanh(hp)
		} else {
			hh = applyT(acts[1], hp)
		}
		h[k] = (1-z[k])*hh + z[k]*h[k]
	}
}

// lstmFast32 is lstmFast for float32 with the vector activations of
// ops/linalg, in place in g.
func lstmFast32(x, g, h, c, tc []float32) {
	H := len(h)
	g, x, c, tc = g[:4*H], x[:4*H], c[:H], tc[:H]
	for k := range g {
		g[k] += x[k]
	}
	linalg.Sigmoid(g[:3*H])
	linalg.Tanh(g[3*H:])
	i, o, f, cc := g[:H], g[H:2*H], g[2*H:3*H], g[3*H:]
	for k := range c {
		cn := f[k]*c[k] + i[k]*cc[k]
		c[k] = cn
		tc[k] = cn
	}
	linalg.Tanh(tc)
	for k := range h {
		h[k] = o[k] * tc[k]
	}
}

// gruLBRFast32 is gruLBR (default activations, no clip) for float32.
func gruLBRFast32(x, g, h []float32) {
	H := len(h)
	g, x = g[:3*H], x[:3*H]
	for k := 0; k < 2*H; k++ {
		g[k] += x[k]
	}
	linalg.Sigmoid(g[:2*H])
	z, r, hh := g[:H], g[H:2*H], g[2*H:]
	for k := range hh {
		hh[k] = x[2*H+k] + r[k]*hh[k]
	}
	linalg.Tanh(hh)
	for k := range h {
		h[k] = (1-z[k])*hh[k] + z[k]*h[k]
	}
}
