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
// included. An LSTM with the default activations (no clip, peepholes or
// input_forget) also keeps each step's activated gates and tanh of its new
// cell state (Gates, TanhC: the fused cells store them through
// linalg.CellArgs.Gates, the general path activates its gate block in
// place), so a backward pass needs no recomputation; for the other cells
// a backward pass recomputes each step's gates from the states and the
// weights.
type Trace[T tensor.Float] struct {
	Cell                      string // "LSTM", "GRU" or "RNN"
	Seq, Batch, Input, Hidden int
	Reverse                   []bool // per direction
	Layout                    int
	Lens                      []int          // per batch row; nil when every row runs Seq steps
	LinearBeforeReset         bool           // GRU
	DefaultActivations        bool           // every direction uses the default activations
	Clip                      bool           // the clip attribute is set
	InputForget               bool           // LSTM input_forget=1
	Activations               [][]Activation // per direction, in the node's order: LSTM f, g, h; GRU f, g; RNN f
	hPrev, cPrev              []T
	gates, tanhC              []T // kept LSTM gates (keep), else nil
	keep                      bool
	omitY                     bool       // OmitY
	scratch                   *ops.Arena // the kernel's scratch, reused by the next traced run
}

// OmitY makes the traced runs that follow leave out the Y output (every
// step's hidden state): it is nil among their outputs, for a caller that
// nothing reads it from. The trace records the same states either way.
func (tr *Trace[T]) OmitY(omit bool) { tr.omitY = omit }

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

// Gates returns direction d's activated gates [Seq][Batch][4·Hidden]
// (i, o, f, c~ in row t·Batch+b, the step at time t of batch row b), or
// nil when the run did not keep them (then they must be recomputed). Rows
// at times past a row's length hold stale values.
func (tr *Trace[T]) Gates(d int) []T {
	if !tr.keep {
		return nil
	}
	return tr.gates[4*tr.at(d, 0, 0) : 4*tr.at(d+1, 0, 0)]
}

// TanhC returns, along with Gates, tanh of each step's new cell state
// ([Seq][Batch][Hidden]), or nil.
func (tr *Trace[T]) TanhC(d int) []T {
	if !tr.keep {
		return nil
	}
	return tr.tanhC[tr.at(d, 0, 0):tr.at(d+1, 0, 0)]
}

// keptGates reports whether a traced run of o keeps the LSTM gates: the
// default activations and no clip, peepholes or input_forget, the cells
// both the fused path (linalg.LSTMCell) and the general one (lstmFast)
// run.
func keptGates(o *rnnOp, in []*tensor.Tensor) bool {
	if o.cell != cellLSTM || o.hasClip || o.inputForget || input(in, 7) != nil {
		return false
	}
	for _, f := range o.fast {
		if !f {
			return false
		}
	}
	return true
}

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
func (tr *Trace[T]) start(o *rnnOp, dm dims, lens []int, keep bool) {
	hPrev, cPrev, gates, tanhC, sa := tr.hPrev, tr.cPrev, tr.gates, tr.tanhC, tr.scratch
	*tr = Trace[T]{Cell: o.cell.String(), Seq: dm.seq, Batch: dm.batch, Input: dm.in, Hidden: dm.hid,
		Reverse: append([]bool(nil), o.reverse...), Layout: o.layout, Lens: lens, LinearBeforeReset: o.lbr,
		Clip: o.hasClip, InputForget: o.inputForget, DefaultActivations: true, keep: keep, omitY: tr.omitY, scratch: sa}
	for _, f := range o.fast {
		tr.DefaultActivations = tr.DefaultActivations && f
	}
	tr.Activations = o.activations
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
	tr.gates, tr.tanhC = gates, tanhC // kept for a later run even when unused
	if keep {
		if cap(gates) < 4*n {
			gates = make([]T, 4*n)
		}
		if cap(tanhC) < n {
			tanhC = make([]T, n)
		}
		tr.gates, tr.tanhC = gates[:4*n], tanhC[:n]
	}
}

// scratchArena returns the trace's arena for the run's scratch and packed
// weights (not its outputs, which the caller keeps), reset: a traced run
// after the first allocates no scratch.
func (tr *Trace[T]) scratchArena() *ops.Arena {
	if tr.scratch == nil {
		tr.scratch = new(ops.Arena)
	}
	tr.scratch.Reset()
	return tr.scratch
}

// hRows returns the trace's hidden states of rows b0…b0+n-1 at time t of
// direction d (row stride Hidden): a fused step with no Y writes its new
// states there, for recordRows to find in place at the next step.
func (tr *Trace[T]) hRows(d, t, b0, n int) []T {
	at := tr.at(d, t, b0)
	return tr.hPrev[at : at+n*tr.Hidden]
}

// recordRows is record for rows b0…b0+n-1 whose states are contiguous
// (row stride Hidden) in h and, with lstm, c. h may already be the
// trace's own rows (hRows): then it is not copied.
func (tr *Trace[T]) recordRows(d, t, b0, n int, h, c []T, lstm bool) {
	at := tr.at(d, t, b0)
	if dst := tr.hPrev[at : at+n*tr.Hidden]; len(dst) > 0 && &dst[0] != &h[0] {
		copy(dst, h)
	}
	if lstm {
		copy(tr.cPrev[at:at+n*tr.Hidden], c)
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
