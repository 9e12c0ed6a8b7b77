package rnn

import (
	"math"
	"unsafe"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Bind returns the op specialised to the weights of in (W, R, B and P, at
// their slots): their checks and packing are done once, here, instead of
// at every run. A caller that runs the node again and again on short
// inputs (a stream, one time step per run) saves the per-run work that a
// long sequence pays once: the weight checks, the weight-cache lookup
// (which samples the weights to notice in-place rewrites) and the shape
// arithmetic they feed.
//
// The bound op runs the same kernels as the op, with the weights packed
// when Bind was called: it does not notice a later in-place rewrite of the
// weight buffers. A run whose weight inputs are other tensors (or other
// data), that gives sequence_lens, or whose inputs the quick checks do not
// accept goes through the op's general path, which checks everything. Bind
// refuses (ok false) when the weights are not constant inputs of the node
// (Config.ConstInputs) or the inputs do not check.
func (o *rnnOp) Bind(in []*tensor.Tensor) (op ops.ArenaOp, ok bool) {
	if len(in) < 3 || in[0] == nil || in[1] == nil || in[2] == nil {
		return nil, false
	}
	switch in[0].DType {
	case tensor.Float32:
		return bind[float32](o, in)
	case tensor.Float64:
		return bind[float64](o, in)
	}
	return nil, false
}

// bound is an rnnOp with its weights checked and packed (see Bind).
type bound[T tensor.Float] struct {
	o *rnnOp
	// the weight inputs as bound: tensor, data address and length, shape
	w     [4]*tensor.Tensor
	wData [4]unsafe.Pointer
	wLen  [4]int
	// W's and R's shapes as checked (a tensor's Shape could be replaced)
	wShape, rShape [3]int
	dm             dims // in, hid and gh; seq and batch come per run
	wts            [2]dirWeights[T]
	// the outputs and scratch of a sequential run, its own: kept while
	// the run's seq and batch stay the same (see RunWith)
	ownSeq, ownBatch int
	own              [3]*tensor.Tensor
	ownBuf           []T
}

// weightSlots are the input slots Bind fixes: W, R, B, P.
var weightSlots = [4]int{1, 2, 3, 7}

func bind[T tensor.Float](o *rnnOp, in []*tensor.Tensor) (ops.ArenaOp, bool) {
	dm, err := o.check(in)
	if err != nil || input(in, 4) != nil {
		return nil, false
	}
	b := &bound[T]{o: o, dm: dims{in: dm.in, hid: dm.hid, gh: dm.gh}}
	for i, slot := range weightSlots {
		t := input(in, slot)
		if slot == 7 && o.cell != cellLSTM {
			t = nil
		}
		if t == nil {
			continue
		}
		if !o.constIn[slot] {
			return nil, false
		}
		d := dataOf[T](t)
		b.w[i], b.wData[i], b.wLen[i] = t, unsafe.Pointer(unsafe.SliceData(d)), len(d)
	}
	copy(b.wShape[:], in[1].Shape)
	copy(b.rShape[:], in[2].Shape)
	// the op's weight cache: bound ops of one node share its packed
	// buffers (a server makes one stream per sequence)
	b.wts = getWeights[T](o, nil, in, dm, false)
	return b, true
}

func (b *bound[T]) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return b.RunWith(nil, in) }

// RunWith runs the node with the bound weights when in holds them, and
// through the op's general path otherwise.
//
// A run on one goroutine (the usual case of short inputs) writes its
// outputs into tensors of the bound op's own and takes its scratch there
// too, instead of from a: for a one-step run, the arena's bookkeeping
// (three outputs, a scratch block, a result list) was a good part of the
// work outside the cell. They are reused by the next run at the same
// sequence length and batch, so, as with an arena's, the outputs are valid
// until then; a bound op serves one caller at a time (a stream binds one
// per executor).
func (b *bound[T]) RunWith(a *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	dm, ok := b.dims(in)
	if !ok {
		return b.o.RunWith(a, in)
	}
	o := b.o
	nd := o.numDir
	if o.numOutputs > 3 || o.threads > 1 && dm.seq*dm.batch*dm.gh*(dm.in+dm.hid)*nd >= parallelWork {
		// more outputs than the op's own, or a run split over threads
		return runChecked(o, a, in, dm, &b.wts, nil)
	}
	if err := b.ownOutputs(in[0].DType, dm); err != nil {
		return nil, err
	}
	var c0 []T
	if o.cell == cellLSTM {
		c0 = dataOf[T](input(in, 6))
	}
	j := job[T]{o: o, dm: dm, x: dataOf[T](in[0]), arena: a, h0: dataOf[T](input(in, 5)), c0: c0,
		y: dataOf[T](b.own[0]), yh: dataOf[T](b.own[1]), yc: dataOf[T](b.own[2]), b1: dm.batch}
	for d := 0; d < nd; d++ {
		j.w, j.d = &b.wts[d], d
		// zeroed, as scratch from an arena is
		j.buf = b.ownBuf[:j.scratchSize(dm.batch)]
		clear(j.buf)
		runJob(&j)
	}
	if err := a.Err(); err != nil {
		return nil, err
	}
	return b.own[:o.numOutputs], nil
}

// ownOutputs makes the outputs and scratch of a sequential run of sizes
// dm, unless the last run's fit.
func (b *bound[T]) ownOutputs(dt tensor.DType, dm dims) error {
	if b.ownBuf != nil && b.ownSeq == dm.seq && b.ownBatch == dm.batch {
		return nil
	}
	o, nd := b.o, b.o.numDir
	yShape := []int{dm.seq, nd, dm.batch, dm.hid}
	hShape := []int{nd, dm.batch, dm.hid}
	if o.layout == 1 {
		yShape = []int{dm.batch, dm.seq, nd, dm.hid}
		hShape = []int{dm.batch, nd, dm.hid}
	}
	var own [3]*tensor.Tensor
	for i := range min(o.numOutputs, o.cell.maxOutputs()) {
		shape := hShape
		if i == 0 {
			shape = yShape
		}
		t, err := tensor.New(dt, shape)
		if err != nil {
			return err
		}
		own[i] = t
	}
	j := job[T]{o: o, dm: dm, w: &b.wts[0]}
	n := 0
	for d := 0; d < nd; d++ {
		j.w = &b.wts[d]
		n = max(n, j.scratchSize(dm.batch))
	}
	b.own, b.ownBuf, b.ownSeq, b.ownBatch = own, make([]T, n), dm.seq, dm.batch
	return nil
}

// dims checks in against the bound weights, and X and the initial states
// as o.check does, and returns the run's sizes; false sends the run to the
// general path (which reports what is wrong, if anything is).
func (b *bound[T]) dims(in []*tensor.Tensor) (dims, bool) {
	o := b.o
	if len(in) < 3 || len(in) > 8 || (o.cell != cellLSTM && len(in) > 6) {
		return dims{}, false
	}
	for i, slot := range weightSlots {
		t := input(in, slot)
		if slot == 7 && o.cell != cellLSTM {
			continue
		}
		if t != b.w[i] {
			return dims{}, false
		}
		if t == nil {
			continue
		}
		d, ok := t.Data.([]T)
		if !ok || unsafe.Pointer(unsafe.SliceData(d)) != b.wData[i] || len(d) != b.wLen[i] {
			return dims{}, false
		}
	}
	if !same3(in[1].Shape, b.wShape) || !same3(in[2].Shape, b.rShape) || input(in, 4) != nil {
		return dims{}, false
	}
	x := in[0]
	var z T
	if _, is32 := any(z).(float32); x == nil || len(x.Shape) != 3 || x.DType != tensor.Float32 && is32 || x.DType != tensor.Float64 && !is32 {
		return dims{}, false
	}
	dm := b.dm
	if x.Shape[2] != dm.in {
		return dims{}, false
	}
	if o.layout == 0 {
		dm.seq, dm.batch = x.Shape[0], x.Shape[1]
	} else {
		dm.batch, dm.seq = x.Shape[0], x.Shape[1]
	}
	// o.check's workspace bounds: seq·batch·2·gh and batch·(2·gh+4·hid)
	if dm.seq < 0 || dm.batch < 0 || !fits(dm.seq, dm.batch, 2*dm.gh) || !fits(1, dm.batch, 2*dm.gh+4*dm.hid) {
		return dims{}, false
	}
	state := [3]int{o.numDir, dm.batch, dm.hid}
	if o.layout == 1 {
		state = [3]int{dm.batch, o.numDir, dm.hid}
	}
	for slot := 5; slot <= 6; slot++ {
		if slot == 6 && o.cell != cellLSTM {
			break
		}
		if s := input(in, slot); s != nil && (s.DType != x.DType || !same3(s.Shape, state)) {
			return dims{}, false
		}
	}
	return dm, true
}

// same3 reports whether shape is s.
func same3(shape []int, s [3]int) bool {
	return len(shape) == 3 && shape[0] == s[0] && shape[1] == s[1] && shape[2] == s[2]
}

// fits reports whether a·b·c (all >= 0) is at most math.MaxInt.
func fits(a, b, c int) bool {
	if a == 0 || b == 0 || c == 0 {
		return true
	}
	return a <= math.MaxInt/b && a*b <= math.MaxInt/c
}
