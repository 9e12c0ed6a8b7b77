package rnn

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Trace is what a training pass needs from a run of the inference kernel:
// the node's parsed configuration (so training has no attribute parser of
// its own) and the state every step started from. The kernel fills it as
// it runs (RunTraced); its outputs are exactly those of Run, fused path
// included. A backward pass recomputes each step's gates from these states
// and the weights.
type Trace[T tensor.Float] struct {
	Cell                      string // "LSTM", "GRU" or "RNN"
	Seq, Batch, Input, Hidden int
	Reverse                   []bool // per direction
	Layout                    int
	Lens                      []int // per batch row; nil when every row runs Seq steps
	LinearBeforeReset         bool  // GRU
	DefaultActivations        bool  // every direction uses the default activations
	Clip                      bool  // the clip attribute is set
	InputForget               bool  // LSTM input_forget=1
	hPrev, cPrev              []T
}

// Dirs is the number of directions.
func (tr *Trace[T]) Dirs() int { return len(tr.Reverse) }

// H returns the hidden state that row b's step at time t of direction d
// started from ([Hidden] values; zeros for a time past the row's length).
func (tr *Trace[T]) H(d, t, b int) []T { return tr.hPrev[tr.at(d, t, b):][:tr.Hidden] }

// C returns the LSTM cell state that step started from.
func (tr *Trace[T]) C(d, t, b int) []T { return tr.cPrev[tr.at(d, t, b):][:tr.Hidden] }

// Hs returns every hidden state direction d's steps started from, as a
// [Seq][Batch][Hidden] slab (row t·Batch+b is H(d, t, b)), so a backward
// pass can multiply all of them at once.
func (tr *Trace[T]) Hs(d int) []T { return tr.hPrev[tr.at(d, 0, 0):tr.at(d+1, 0, 0)] }

// Cs is Hs for the LSTM cell states.
func (tr *Trace[T]) Cs(d int) []T { return tr.cPrev[tr.at(d, 0, 0):tr.at(d+1, 0, 0)] }

func (tr *Trace[T]) at(d, t, b int) int { return ((d*tr.Seq+t)*tr.Batch + b) * tr.Hidden }

// RunTraced runs an LSTM, GRU or RNN kernel made by this package (ops.New)
// on one goroutine and fills tr; its outputs are bitwise those of Run. A
// trace may be reused: its state buffers are then overwritten.
func RunTraced[T tensor.Float](op ops.Op, in []*tensor.Tensor, tr *Trace[T]) ([]*tensor.Tensor, error) {
	o, ok := op.(*rnnOp)
	if !ok {
		return nil, fmt.Errorf("rnn: RunTraced needs an LSTM, GRU or RNN kernel of package rnn, got %T", op)
	}
	if err := ops.NeedInputs(in, 3); err != nil {
		return nil, err
	}
	var z T
	if _, is32 := any(z).(float32); (in[0].DType == tensor.Float32) != is32 || !in[0].DType.IsFloat() {
		return nil, ops.BadInput(0, "dtype %v does not match the trace's %T", in[0].DType, z)
	}
	return run[T](o, nil, in, tr)
}

// start fills the configuration and sizes the state buffers, reusing
// those of an earlier run of tr when they are large enough.
func (tr *Trace[T]) start(o *rnnOp, dm dims, lens []int) {
	hPrev, cPrev := tr.hPrev, tr.cPrev
	*tr = Trace[T]{Cell: o.cell.String(), Seq: dm.seq, Batch: dm.batch, Input: dm.in, Hidden: dm.hid,
		Reverse: append([]bool(nil), o.reverse...), Layout: o.layout, Lens: lens, LinearBeforeReset: o.lbr,
		Clip: o.hasClip, InputForget: o.inputForget, DefaultActivations: true}
	for _, f := range o.fast {
		tr.DefaultActivations = tr.DefaultActivations && f
	}
	n := o.numDir * dm.seq * dm.batch * dm.hid
	// every step is recorded, except times past a row's length, which
	// must read as zeros
	reuse := func(s []T) []T {
		if cap(s) < n {
			return make([]T, n)
		}
		s = s[:n]
		if lens != nil {
			clear(s)
		}
		return s
	}
	tr.hPrev = reuse(hPrev)
	if o.cell == cellLSTM {
		tr.cPrev = reuse(cPrev)
	}
}

// record keeps the states row b's step at time t of direction d starts
// from (c is nil for GRU and RNN).
func (tr *Trace[T]) record(d, t, b int, h, c []T) {
	if tr == nil {
		return
	}
	copy(tr.H(d, t, b), h)
	if c != nil {
		copy(tr.C(d, t, b), c)
	}
}
