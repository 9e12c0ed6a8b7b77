package autodiff

import (
	"fmt"
	"math"
	"math/bits"
	"sync"

	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/ops/rnn"
	"github.com/mtlrun/mtlrun/tensor"
)

// LSTM, GRU and RNN are differentiated by full backpropagation through time.
// The forward pass is the inference kernel of ops/rnn itself (fused where
// it is), run with a trace (rnn.RunTraced) that records the node's parsed
// configuration and the state every step started from; so training's
// outputs are bitwise inference's, and there is one attribute parser, the
// kernel's. For an LSTM with the default activations (no peepholes, clip
// or input_forget) the traced run also keeps each step's activated gates
// and tanh of its cell state (rnn.Trace.Gates; the fused cells store
// them), so its tape recomputes nothing. For the other cells the tape
// recomputes from the recorded states each step's gate activations (gate
// orders iofc and zrh, RNN's single function; directions; sequence_lens;
// initial states; peepholes; layout 0 and 1; GRU linear_before_reset 0 and
// 1; any activation functions, whose derivatives are taken from their
// outputs), which the backward pass needs: all steps in one product, since every
// starting state is known. The backward pass runs per step only what the
// recurrence needs (the element-wise step, ops/linalg's LSTMCellGrad for
// LSTM, and dh_prev = da·R); the weight, bias and input gradients of all
// steps are products over all T·B rows after it. A released tape
// (Tape.Release) lends its buffers to the next forward pass.

func init() {
	register("LSTM", typed(rnnBackward[float32], rnnBackward[float64]), typedForward(rnnForward[float32], rnnForward[float64]))
	register("GRU", typed(rnnBackward[float32], rnnBackward[float64]), typedForward(rnnForward[float32], rnnForward[float64]))
	register("RNN", typed(rnnBackward[float32], rnnBackward[float64]), typedForward(rnnForward[float32], rnnForward[float64]))
}

func typedForward(f32, f64 Forward) Forward {
	return func(c *Ctx) ([]*tensor.Tensor, any, error) {
		switch c.In[0].DType {
		case tensor.Float32:
			return f32(c)
		case tensor.Float64:
			return f64(c)
		}
		return nil, nil, errDType
	}
}

type rnnSpec struct {
	lstm       bool
	rnn        bool // plain RNN: h = tanh(X·Wᵀ + H·Rᵀ + Wb + Rb)
	lbr        bool // GRU linear_before_reset
	dirs       int
	reverse    []bool // per direction
	T, B, I, H int
	G          int // gates: 4 for LSTM, 3 for GRU, 1 for RNN
	layout     int
	lens       []int
	acts       []*gateActs // per direction; nil entries (all of them) for the default functions
}

// gateActs are a direction's activation functions when the node does not
// use the defaults (sigmoid gates, tanh candidate and output), indexed by
// actF (the gates: LSTM i, o, f; GRU z, r; RNN's only one), actG (the
// candidate: LSTM c~, GRU h~) and actH (LSTM's output). The rules take
// each derivative from the function's output (rnn.Activation.Slope), as
// they take the defaults' from the activated gates the tape keeps.
type gateActs [3]rnn.Activation

const (
	actF = iota
	actG
	actH
)

// activate applies function which of ga to x in place, or dflt (the
// default function) when ga is nil (the node uses the defaults).
func activate[T tensor.Float](ga *gateActs, which int, x []T, dflt func([]T)) {
	if ga == nil {
		dflt(x)
		return
	}
	rnn.ApplyActivation(ga[which], x)
}

// slope is a's derivative where its output is y, in T.
func slope[T tensor.Float](a rnn.Activation, y T) T { return T(a.Slope(float64(y))) }

// specOf checks that training supports the traced node and returns its
// sizes and layout.
func specOf[T tensor.Float](tr *rnn.Trace[T]) (*rnnSpec, error) {
	switch {
	case tr.Clip:
		return nil, fmt.Errorf("training does not support the clip attribute")
	case tr.InputForget:
		return nil, fmt.Errorf("training does not support input_forget")
	case tr.Cell != "LSTM" && tr.Cell != "GRU" && tr.Cell != "RNN":
		return nil, fmt.Errorf("training does not support %s", tr.Cell)
	}
	s := &rnnSpec{lstm: tr.Cell == "LSTM", rnn: tr.Cell == "RNN", lbr: tr.LinearBeforeReset, dirs: tr.Dirs(), reverse: tr.Reverse,
		T: tr.Seq, B: tr.Batch, I: tr.Input, H: tr.Hidden, layout: tr.Layout, lens: tr.Lens, G: 3}
	switch {
	case s.lstm:
		s.G = 4
	case s.rnn:
		s.G = 1
	}
	s.acts = make([]*gateActs, s.dirs)
	if !tr.DefaultActivations {
		for d, fs := range tr.Activations {
			for _, f := range fs {
				if !f.SlopeFromOutput() {
					return nil, fmt.Errorf("training does not support the activation %v: its derivative is not a function of its output", f)
				}
			}
			var ga gateActs
			copy(ga[:], fs)
			s.acts[d] = &ga
		}
	}
	if s.lens == nil {
		s.lens = make([]int, s.B)
		for b := range s.lens {
			s.lens[b] = s.T
		}
	}
	return s, nil
}

// gru reports whether the cell is a GRU (whose candidate's recurrent part
// is applied with the reset gate).
func (s *rnnSpec) gru() bool { return !s.lstm && !s.rnn }

// timeOf is the time index row b handles at processing step k, or -1.
func (s *rnnSpec) timeOf(dir, k, b int) int {
	if k >= s.lens[b] {
		return -1
	}
	if s.reverse[dir] {
		return s.lens[b] - 1 - k
	}
	return k
}

// xAt returns the offset of X[t, b, :] for the layout.
func (s *rnnSpec) xAt(t, b int) int {
	if s.layout == 0 {
		return (t*s.B + b) * s.I
	}
	return (b*s.T + t) * s.I
}

// yAt returns the offset of Y[t, d, b, :] (layout 0) or Y[b, t, d, :].
func (s *rnnSpec) yAt(t, d, b int) int {
	if s.layout == 0 {
		return ((t*s.dirs+d)*s.B + b) * s.H
	}
	return ((b*s.T+t)*s.dirs + d) * s.H
}

// stateAt returns the offset of Y_h[d, b, :] (layout 0) or Y_h[b, d, :].
func (s *rnnSpec) stateAt(d, b int) int {
	if s.layout == 0 {
		return (d*s.B + b) * s.H
	}
	return (b*s.dirs + d) * s.H
}

// The tape keeps, per direction, one row per (time, batch row) in the order
// t·B+b of the trace's state slabs (rnn.Trace.Hs; an LSTM's gates and
// tanh of its cell states are the trace's own, rnn.Trace.Gates, when the
// traced run kept them), so every product that
// does not feed the recurrence runs once over all T·B rows: the recurrent
// part of the gates in the forward pass, and the weight, bias and input
// gradients in the backward pass. Only dh_prev = da·R is left per step.
// Rows past a sequence's length hold harmless values and get zero
// gradients.
type rnnTape[T tensor.Float] struct {
	spec *rnnSpec
	tr   *rnn.Trace[T]
	// [dir] → [T·B, G·H] activated gates (LSTM i,o,f,c~; GRU z,r,h~; RNN h)
	gates [][]T
	// [dir] → [T·B, H] LSTM: tanh of the cell state after the step, and
	// (with peepholes) that state itself
	tanhC, cNext [][]T
	// [dir] → [T·B, H] GRU: H·Rhᵀ + Rbh (linear_before_reset=1) or r⊙H (0)
	hr [][]T
	// [dir] → [T·B, H+I+1]: each row's starting state, input and a 1
	// (rnnInputs), or, when zPacked, the same rows packed for the weight
	// gradients' products (rnnInputsPacked)
	z       [][]T
	zPacked bool
}

// rnnInputs lays out, for every step of a direction, what the gates are a
// linear function of: row t·B+b is [H(t, b) | X(t, b) | 1], so one product
// with [R | W | bias] gives every pre-activation, and one product of its
// transpose with da every weight and bias gradient.
func rnnInputs[T tensor.Float](s *rnnSpec, Hs, X, z []T) []T {
	H, I := s.H, s.I
	zw := H + I + 1
	z = grow(z, s.T*s.B*zw)
	for t := 0; t < s.T; t++ {
		for b := 0; b < s.B; b++ {
			r := t*s.B + b
			zr := z[r*zw : (r+1)*zw]
			copy(zr, Hs[r*H:(r+1)*H])
			copy(zr[H:], X[s.xAt(t, b):][:I])
			zr[H+I] = 1
		}
	}
	return z
}

// gradBlockSteps is how many steps of B rows form a block of the
// weight-gradient product (gradBlockRows rows, at least one step).
func gradBlockSteps(B int) int { return max(1, gradBlockRows/max(B, 1)) }

// packedZ reports whether the tape keeps direction d's [H | X | 1] packed
// (rnnInputsPacked): when the backward pass multiplies it a block of steps
// at a time (stepwiseGrad) and the traced run kept the gates, so nothing
// else reads it.
func packedZ[T tensor.Float](s *rnnSpec, tr *rnn.Trace[T], d int) bool {
	return stepwiseGrad[T](s, tr) && tr.Gates(d) != nil
}

// stepwiseGrad reports whether the backward pass multiplies the weight
// gradients during its loop, a block of steps at a time, from each step's
// da packed while it is in cache: an LSTM or RNN over full sequences in
// float32.
func stepwiseGrad[T tensor.Float](s *rnnSpec, tr *rnn.Trace[T]) bool {
	var z T
	_, f32 := any(z).(float32)
	return f32 && !s.gru() && tr.Lens == nil
}

// rnnInputsPacked is rnnInputs for a float32 tape whose weight gradients
// are multiplied a block of gradBlockSteps steps at a time: block i (its
// steps' rows, in row order) is stored from row i·gradBlockSteps·B on as
// the left-hand matrix [H | X | 1]ᵀ of that block's product, packed
// (linalg.PackAColumn), so the product packs nothing.
func rnnInputsPacked(s *rnnSpec, Hs, X, z []float32) []float32 {
	H, I, B := s.H, s.I, s.B
	zw := H + I + 1
	z = grow(z, s.T*B*zw)
	bs := gradBlockSteps(B)
	col := make([]float32, zw)
	col[H+I] = 1
	for t := 0; t < s.T; t++ {
		t0 := t - t%bs
		blk := z[t0*B*zw:]
		kb := min(bs, s.T-t0) * B
		for b := 0; b < B; b++ {
			r := t*B + b
			copy(col, Hs[r*H:(r+1)*H])
			copy(col[H:], X[s.xAt(t, b):][:I])
			linalg.PackAColumn(blk, zw, kb, (t-t0)*B+b, col)
		}
	}
	return z
}

// rnnForward runs the node's inference kernel with a trace and builds the
// tape from it.
func rnnForward[T tensor.Float](c *Ctx) ([]*tensor.Tensor, any, error) {
	tp := &rnnTape[T]{tr: new(rnn.Trace[T])}
	if q, ok := tapePool.Get().(*rnnTape[T]); ok {
		tp = q // buffers of a released tape, overwritten below
	}
	// Y (every step's hidden state, 400 KB a pass in the seed model) is
	// not computed when nothing reads it: the backward pass needs only the
	// states the trace records
	tp.tr.OmitY(len(c.Unread) > 0 && c.Unread[0])
	outs, err := rnn.RunTraced(c.Kernel, c.In, tp.tr)
	if err != nil {
		return nil, nil, err
	}
	s, err := specOf(tp.tr)
	if err != nil {
		return nil, nil, err
	}
	tp.spec = s
	rnnTapeOf(c, tp)
	return outs, tp, nil
}

// tapePool keeps released tapes (Tape.Release), so a training step reuses
// the previous step's buffers instead of allocating and zeroing megabytes.
var tapePool sync.Pool

// release hands the tape to the pool; Backward fails on it afterwards
// (Tape.Release drops the reference).
func (tp *rnnTape[T]) release() { tapePool.Put(tp) }

// grow returns s resized to n, reusing its memory when it is large enough
// (then its contents are stale, not zero).
func grow[T tensor.Float](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// slot returns (*ss)[d] resized to n, adding the slot when needed.
func slot[T tensor.Float](ss *[][]T, d, n int) []T {
	for len(*ss) <= d {
		*ss = append(*ss, nil)
	}
	(*ss)[d] = grow((*ss)[d], n)
	return (*ss)[d]
}

// rnnBiases returns direction d's input and recurrent biases (nil without B).
func rnnBiases[T tensor.Float](c *Ctx, d, GH int) (wb, rb []T) {
	if len(c.In) > 3 && c.In[3] != nil {
		b := data[T](c.In[3])[d*2*GH : (d+1)*2*GH]
		return b[:GH], b[GH:]
	}
	return nil, nil
}

// rnnTapeOf lays out the weight-gradient operand [H | X | 1] and, unless
// the traced run kept them, recomputes what the backward pass needs from
// the states the kernel recorded: each step's gate activations and, for
// LSTM, tanh of the cell state after it; for GRU the recurrent part of the
// h gate. All steps at once, since every starting state is known.
func rnnTapeOf[T tensor.Float](c *Ctx, tp *rnnTape[T]) {
	s, tr := tp.spec, tp.tr
	X, W, R := data[T](c.In[0]), data[T](c.In[1]), data[T](c.In[2])
	G, H, I := s.G, s.H, s.I
	GH, TB := G*H, s.T*s.B
	var peep []T
	if s.lstm && len(c.In) > 7 && c.In[7] != nil {
		peep = data[T](c.In[7])
	}
	for d := 0; d < s.dirs; d++ {
		Wd, Rd := W[d*GH*I:(d+1)*GH*I], R[d*GH*H:(d+1)*GH*H]
		Hs := tr.Hs(d)
		// every step's pre-activations at once: [H | X | 1]·[R | W | b]ᵀ,
		// with GRU's h~ rows of R zero (its recurrent part sees the reset
		// gate) and its Rbh only where it is added before that
		// (linear_before_reset=0)
		tp.zPacked = packedZ(s, tr, d)
		var z []T
		if tp.zPacked {
			z32 := rnnInputsPacked(s, any(Hs).([]float32), any(X).([]float32), any(at(tp.z, d)).([]float32))
			z = any(z32).([]T)
		} else {
			z = rnnInputs(s, Hs, X, at(tp.z, d))
		}
		slot(&tp.z, d, 0)
		tp.z[d] = z
		if tr.Gates(d) != nil {
			// the traced run kept the activated gates and tanh of the
			// new cell states (tp.gatesOf)
			continue
		}
		zw := H + I + 1
		wcat := make([]T, GH*zw)
		wb, rb := rnnBiases[T](c, d, GH)
		for j := 0; j < GH; j++ {
			row := wcat[j*zw : (j+1)*zw]
			if !s.gru() || j < 2*H {
				copy(row, Rd[j*H:(j+1)*H])
			}
			copy(row[H:], Wd[j*I:(j+1)*I])
			if wb != nil {
				row[H+I] = wb[j]
				if !s.gru() || j < 2*H || !s.lbr {
					row[H+I] += rb[j]
				}
			}
		}
		a := slot(&tp.gates, d, TB*GH)
		clear(a)
		gemmS(false, true, TB, GH, zw, z, zw, wcat, zw, a, GH)
		ga := s.acts[d]
		switch {
		case s.rnn:
			activate(ga, actF, a, tanhVec)
		case s.lstm && peep == nil:
			for r := 0; r < TB; r++ {
				activate(ga, actF, a[r*GH:r*GH+3*H], sigmoidVec)
				activate(ga, actG, a[r*GH+3*H:(r+1)*GH], tanhVec)
			}
			tc := slot(&tp.tanhC, d, TB*H)
			lstmState(TB, H, a, tr.Cs(d), tc)
			activate(ga, actH, tc, tanhVec)
		case s.lstm:
			// peepholes: the gates see the cell state, scalar float64
			Cs := tr.Cs(d)
			pd := peep[d*3*H : (d+1)*3*H]
			tc, cnAll := slot(&tp.tanhC, d, TB*H), slot(&tp.cNext, d, TB*H)
			gateFn, candFn, outFn := sig, math.Tanh, math.Tanh
			if ga != nil {
				gateFn, candFn, outFn = ga[actF].Apply, ga[actG].Apply, ga[actH].Apply
			}
			for r := 0; r < TB; r++ {
				g, cp := a[r*GH:(r+1)*GH], Cs[r*H:(r+1)*H]
				for j := 0; j < H; j++ {
					ai, ao, af, ac := float64(g[j]), float64(g[H+j]), float64(g[2*H+j]), float64(g[3*H+j])
					ai += float64(pd[j] * cp[j])
					af += float64(pd[2*H+j] * cp[j])
					i, f, gg := gateFn(ai), gateFn(af), candFn(ac)
					cn := f*float64(cp[j]) + i*gg
					o := gateFn(ao + float64(pd[H+j])*cn)
					g[j], g[H+j], g[2*H+j], g[3*H+j] = T(i), T(o), T(f), T(gg)
					cnAll[r*H+j] = T(cn)
					tc[r*H+j] = T(outFn(cn))
				}
			}
		default: // GRU
			for r := 0; r < TB; r++ {
				activate(ga, actF, a[r*GH:r*GH+2*H], sigmoidVec)
			}
			Rh := Rd[2*H*H:]
			hr := slot(&tp.hr, d, TB*H)
			if s.lbr {
				// h~ = tanh(X·Whᵀ + Wbh + r⊙(H·Rhᵀ + Rbh))
				if rb != nil {
					for r := 0; r < TB; r++ {
						copy(hr[r*H:(r+1)*H], rb[2*H:])
					}
				} else {
					clear(hr)
				}
				gemmS(false, true, TB, H, H, Hs, H, Rh, H, hr, H)
				for r := 0; r < TB; r++ {
					g, q := a[r*GH:(r+1)*GH], hr[r*H:(r+1)*H]
					for j := range q {
						g[2*H+j] += g[H+j] * q[j]
					}
				}
			} else {
				// h~ = tanh(X·Whᵀ + Wbh + Rbh + (r⊙H)·Rhᵀ)
				for r := 0; r < TB; r++ {
					g, q, h := a[r*GH:(r+1)*GH], hr[r*H:(r+1)*H], Hs[r*H:(r+1)*H]
					for j := range q {
						q[j] = g[H+j] * h[j]
					}
				}
				gemmS(false, true, TB, H, H, hr, H, Rh, H, a[2*H:], GH)
			}
			for r := 0; r < TB; r++ {
				activate(ga, actG, a[r*GH+2*H:(r+1)*GH], tanhVec)
			}
		}
	}
}

// at is ss[d], or nil past its end.
func at[T tensor.Float](ss [][]T, d int) []T {
	if d < len(ss) {
		return ss[d]
	}
	return nil
}

// lstmState writes the new cell states f⊙c + i⊙g of n rows: ops/linalg's
// LSTMCellState for float32.
func lstmState[T tensor.Float](n, H int, g, c, cn []T) {
	if g32, ok := any(g).([]float32); ok {
		linalg.LSTMCellState(n, H, g32, any(c).([]float32), any(cn).([]float32))
		return
	}
	for r := 0; r < n; r++ {
		gr, cr, nr := g[r*4*H:(r+1)*4*H], c[r*H:(r+1)*H], cn[r*H:(r+1)*H]
		for j := range nr {
			nr[j] = gr[2*H+j]*cr[j] + gr[j]*gr[3*H+j]
		}
	}
}

func sig(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// sigmoidVec and tanhVec apply the activations in place: ops/linalg's
// vector kernels for float32 (those the inference kernels use), math's
// float64 functions otherwise.
func sigmoidVec[T tensor.Float](x []T) {
	if x32, ok := any(x).([]float32); ok {
		linalg.Sigmoid(x32)
		return
	}
	for i, v := range x {
		x[i] = T(sig(float64(v)))
	}
}

func tanhVec[T tensor.Float](x []T) {
	if x32, ok := any(x).([]float32); ok {
		linalg.Tanh(x32)
		return
	}
	for i, v := range x {
		x[i] = T(math.Tanh(float64(v)))
	}
}

// gatesOf returns direction d's activated gates and (LSTM) tanh of the
// new cell states: those the traced run kept, else the recomputed ones.
func (tp *rnnTape[T]) gatesOf(d int) (gates, tanhC []T) {
	if g := tp.tr.Gates(d); g != nil {
		return g, tp.tr.TanhC(d)
	}
	if d < len(tp.tanhC) {
		tanhC = tp.tanhC[d]
	}
	return tp.gates[d], tanhC
}

func rnnBackward[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	tp, ok := c.Saved.(*rnnTape[T])
	if !ok {
		return nil, fmt.Errorf("missing forward state")
	}
	s, tr := tp.spec, tp.tr
	X, W, R := data[T](c.In[0]), data[T](c.In[1]), data[T](c.In[2])
	G, H, B, I := s.G, s.H, s.B, s.I
	GH, TB := G*H, s.T*s.B
	var peep []T
	if s.lstm && len(c.In) > 7 && c.In[7] != nil {
		peep = data[T](c.In[7])
	}
	var gY, gYh, gYc []T
	if c.GradOut[0] != nil {
		gY = data[T](c.GradOut[0])
	}
	if len(c.GradOut) > 1 && c.GradOut[1] != nil {
		gYh = data[T](c.GradOut[1])
	}
	if len(c.GradOut) > 2 && c.GradOut[2] != nil {
		gYc = data[T](c.GradOut[2])
	}
	var gX []T
	if len(c.Need) == 0 || c.Need[0] {
		gX = make([]T, len(X))
	}
	gW, gR := make([]T, len(W)), make([]T, len(R))
	var gBias, gH0, gC0, gP []T
	if len(c.In) > 3 && c.In[3] != nil {
		gBias = make([]T, c.In[3].Len())
	}
	if len(c.In) > 5 && c.In[5] != nil {
		gH0 = make([]T, c.In[5].Len())
	}
	if s.lstm && len(c.In) > 6 && c.In[6] != nil {
		gC0 = make([]T, c.In[6].Len())
	}
	if peep != nil {
		gP = make([]T, len(peep))
	}
	// K of the per-step product dh_prev += da·R: GRU with
	// linear_before_reset=0 multiplies only z and r's rows of R there (h~'s
	// recurrent input is r⊙H, handled apart)
	recK := GH
	if s.gru() && !s.lbr {
		recK = 2 * H
	}
	// per-step buffers from the scratch pool: each is cleared or written
	// in full before it is read
	dh, dc := getScratch[T](B*H), getScratch[T](B*H)
	defer putScratch(dh)
	defer putScratch(dc)
	// LSTM and RNN reach X only through da·W, so the per-step product
	// gives dX too: da·[R | W] (a GRU's per-step operand differs from da
	// in the h~ part, dhr or nothing, so its dX is one product after the
	// loop)
	// (skipped, with the GRU's product after the loop, when X needs no
	// gradient: a graph input of data, as in the seed model)
	needX := len(c.Need) == 0 || c.Need[0]
	xw := 0
	if !s.gru() && needX {
		xw = I
	}
	nw := H + xw
	dhNew := getScratch[T](B * nw)
	defer putScratch(dhNew)
	var sc []T // a step's recurrent gradients, gathered (rows not contiguous, or GRU)
	var dsrc, dhr []T
	if s.gru() {
		dsrc = make([]T, B*H)
		if s.lbr {
			dhr = make([]T, TB*H)
		}
	}
	rows := make([]int, B) // tape row of each batch row at a step, -1 when idle
	for d := 0; d < s.dirs; d++ {
		Wd, Rd := W[d*GH*I:(d+1)*GH*I], R[d*GH*H:(d+1)*GH*H]
		Hs := tr.Hs(d)
		gates, tanhC := tp.gatesOf(d)
		ga := s.acts[d]
		var Cs, cNext, hr, pd, gPd []T
		if s.lstm {
			Cs = tr.Cs(d)
			if peep != nil {
				cNext, pd, gPd = tp.cNext[d], peep[d*3*H:(d+1)*3*H], gP[d*3*H:(d+1)*3*H]
			}
		}
		if s.gru() {
			hr = tp.hr[d]
		}
		clear(dh)
		clear(dc)
		for b := 0; b < B; b++ {
			if gYh != nil {
				copy(dh[b*H:(b+1)*H], gYh[s.stateAt(d, b):])
			}
			if gYc != nil {
				copy(dc[b*H:(b+1)*H], gYc[s.stateAt(d, b):])
			}
		}
		// da of every step, [T·B, G·H]: the pre-activation gradients (every
		// row is written at its step, except rows past a sequence length).
		// An LSTM or RNN over full sequences in float32 keeps only one step's
		// rows (dr maps a tape row to its row there) and packs them, still in
		// cache, into a block of the weight-gradient product's right-hand
		// matrix (daPack, gradBlockRows rows, in L2); a full block is
		// multiplied at once, so the 1.6 MB of the seed model's da are never
		// stored and packed from memory.
		z, zw := tp.z[d], H+I+1
		out := getScratch[T](zw * GH)
		defer putScratch(out)
		clear(out)
		var daPack *linalg.PackedB
		var blkBuf []float32
		stepRows, blkSteps, blkLo := false, 0, 0
		if stepwiseGrad(s, tr) {
			stepRows = true
			blkSteps = gradBlockSteps(B)
			blkBuf = getScratch[float32](linalg.PackedSize(blkSteps*B, GH))
			defer putScratch(blkBuf)
			daPack = &linalg.PackedB{}
		}
		var da []T
		if stepRows {
			da = getScratch[T](B * GH)
		} else {
			da = getScratch[T](TB * GH)
		}
		defer putScratch(da)
		if tr.Lens != nil {
			clear(da)
		}
		r0 := 0
		dr := func(r int) int {
			if stepRows {
				return r - r0
			}
			return r
		}
		var rPack *packedMat[T]
		if xw > 0 {
			rw := getScratch[T](GH * nw)
			for j := 0; j < GH; j++ {
				copy(rw[j*nw:], Rd[j*H:(j+1)*H])
				copy(rw[j*nw+H:], Wd[j*I:(j+1)*I])
			}
			rPack = packMat(false, GH, nw, rw, nw)
			defer putScratch(rw)
		} else {
			rPack = packMat(false, recK, H, Rd, H)
		}
		defer rPack.release()
		var rhPack *packedMat[T]
		if s.gru() && !s.lbr {
			rhPack = packMat(false, H, H, Rd[2*H*H:], H)
			defer rhPack.release()
		}
		for k := s.T - 1; k >= 0; k-- {
			// rows of this step; contiguous when every row is at the same time
			contig, live := true, false
			for b := range rows {
				rows[b] = -1
				if t := s.timeOf(d, k, b); t >= 0 {
					rows[b] = t*B + b
					live = true
					if gY != nil {
						hb, y := dh[b*H:(b+1)*H], gY[s.yAt(t, d, b):]
						for j := range hb {
							hb[j] += y[j]
						}
					}
				}
				contig = contig && rows[b] == rows[0]+b
			}
			if !live {
				continue
			}
			r0 = rows[0]
			// the element-wise part, per run of rows
			each := func(f func(n, r, b int)) {
				if contig {
					f(B, r0, 0)
					return
				}
				for b, r := range rows {
					if r >= 0 {
						f(1, r, b)
					}
				}
			}
			// a step of a weight-gradient block: the first step of a block
			// (the last in time) sizes it
			packed := false
			if stepRows && contig {
				if k == s.T-1 || k%blkSteps == blkSteps-1 {
					blkLo = k - k%blkSteps
					linalg.PackBRowsInit(daPack, blkBuf, (k-blkLo+1)*B, GH)
				}
				packed = s.lstm && peep == nil && ga == nil
			}
			switch {
			case packed:
				// da also straight into the block, in the same pass
				f := func(v []T) []float32 { return any(v).([]float32) }
				linalg.LSTMCellGradPack(B, H, f(dh), f(dc), f(gates[r0*GH:]), f(Cs[r0*H:]), f(tanhC[r0*H:]), f(da), daPack, (k-blkLo)*B)
			case s.lstm && peep == nil:
				each(func(n, r, b int) {
					lstmGradRows(n, H, dh[b*H:], dc[b*H:], gates[r*GH:], Cs[r*H:], tanhC[r*H:], da[dr(r)*GH:], ga)
				})
			case s.lstm:
				each(func(n, r, b int) {
					lstmPeepGradRows(n, H, dh[b*H:], dc[b*H:], gates[r*GH:], Cs[r*H:], cNext[r*H:], tanhC[r*H:], pd, gPd, da[dr(r)*GH:], ga)
				})
			case s.rnn:
				each(func(n, r, b int) {
					for q := 0; q < n*H; q++ {
						g := gates[r*GH+q]
						sl := 1 - g*g
						if ga != nil {
							sl = slope(ga[actF], g)
						}
						da[dr(r)*GH+q] = dh[b*H+q] * sl
					}
				})
			default:
				each(func(n, r, b int) {
					for m := 0; m < n; m++ {
						var dhrm []T
						if dhr != nil {
							dhrm = dhr[(r+m)*H : (r+m+1)*H]
						}
						gruGradRow(s.lbr, H, dh[(b+m)*H:(b+m+1)*H], gates[(r+m)*GH:(r+m+1)*GH], Hs[(r+m)*H:(r+m+1)*H], hr[(r+m)*H:(r+m+1)*H], da[(r+m)*GH:(r+m+1)*GH], dhrm, ga)
					}
				})
			}
			// the step's gradients w.r.t. the recurrent input, as a B×recK
			// matrix (lda GH); idle rows zero
			var rec []T
			if contig && !s.gru() {
				rec = da[dr(r0)*GH : (dr(r0)+B)*GH]
				if stepRows {
					// steps [blkLo, k] form the block
					if !packed {
						linalg.PackBRows(daPack, (k-blkLo)*B, B, any(rec).([]float32), GH)
					}
					if k == blkLo {
						zb, o32 := any(z).([]float32)[blkLo*B*zw:], any(out).([]float32)
						if tp.zPacked {
							linalg.SgemmPackedA(zw, zb, daPack, o32, GH)
						} else {
							linalg.SgemmPacked(true, zw, 1, zb, zw, daPack, 1, o32, GH)
						}
					}
				}
			} else {
				if sc == nil {
					sc = getScratch[T](B * GH)
					defer putScratch(sc)
				}
				rec = sc
				clear(sc)
				for b, r := range rows {
					if r >= 0 {
						copy(sc[b*GH:(b+1)*GH], da[r*GH:(r+1)*GH])
						if dhr != nil {
							copy(sc[b*GH+2*H:(b+1)*GH], dhr[r*H:(r+1)*H])
						}
					}
				}
			}
			if rhPack != nil {
				// GRU, linear_before_reset=0: through (r⊙H)·Rhᵀ to r and H
				clear(dsrc)
				rhPack.mulAcc(B, rec[2*H:], GH, dsrc)
				for b, r := range rows {
					if r < 0 {
						continue
					}
					g, hp, ds := gates[r*GH:(r+1)*GH], Hs[r*H:(r+1)*H], dsrc[b*H:(b+1)*H]
					dar, scr, hb := da[r*GH+H:r*GH+2*H], sc[b*GH+H:b*GH+2*H], dh[b*H:(b+1)*H]
					for j := 0; j < H; j++ {
						rr := g[H+j]
						sr := rr * (1 - rr)
						if ga != nil {
							sr = slope(ga[actF], rr)
						}
						dar[j] = ds[j] * hp[j] * sr
						scr[j] = dar[j]
						hb[j] += ds[j] * rr
					}
				}
			}
			clear(dhNew)
			rPack.mulAcc(B, rec, GH, dhNew)
			for b, r := range rows {
				if r < 0 {
					continue
				}
				hb, nb := dh[b*H:(b+1)*H], dhNew[b*nw:b*nw+H]
				if xw > 0 {
					gx, nx := gX[s.xAt(r/B, b):][:I], dhNew[b*nw+H:(b+1)*nw]
					for i := range gx {
						gx[i] += nx[i]
					}
				}
				if s.gru() {
					for j := range hb {
						hb[j] += nb[j]
					}
				} else {
					copy(hb, nb) // LSTM and RNN reach h_prev only through R
				}
			}
		}
		// weight and bias gradients of all steps at once: [H | X | 1]ᵀ·da
		// gives R's, W's and the bias' (transposed)
		if !stepRows {
			gemmS(true, false, zw, GH, TB, z, zw, da, GH, out, GH)
		}
		gWd, gRd := gW[d*GH*I:(d+1)*GH*I], gR[d*GH*H:(d+1)*GH*H]
		var gWb, gRb []T
		if gBias != nil {
			gWb, gRb = gBias[d*2*GH:d*2*GH+GH], gBias[d*2*GH+GH:(d+1)*2*GH]
		}
		for j := 0; j < GH; j++ {
			for i := 0; i < I; i++ {
				gWd[j*I+i] = out[(H+i)*GH+j]
			}
			if gWb != nil {
				gWb[j] = out[(H+I)*GH+j]
			}
			if j < 2*H || !s.gru() {
				for p := 0; p < H; p++ {
					gRd[j*H+p] = out[p*GH+j]
				}
				if gRb != nil {
					gRb[j] = out[(H+I)*GH+j]
				}
			}
		}
		if s.gru() {
			gRh := gRd[2*H*H:]
			if s.lbr {
				// Rh and Rbh see dhr = da_h~ ⊙ r
				out2 := make([]T, zw*H)
				gemmS(true, false, zw, H, TB, z, zw, dhr, H, out2, H)
				for j := 0; j < H; j++ {
					for p := 0; p < H; p++ {
						gRh[j*H+p] = out2[p*H+j]
					}
					if gRb != nil {
						gRb[2*H+j] = out2[(H+I)*H+j]
					}
				}
			} else {
				// Rh multiplies r⊙H; Rbh is added with Wbh
				gemmS(true, false, H, H, TB, da[2*H:], GH, hr, H, gRh, H)
				if gRb != nil {
					copy(gRb[2*H:], gWb[2*H:])
				}
			}
		}
		// GRU: gX += da·W, rows back in X's layout
		switch {
		case xw > 0 || gX == nil:
		case s.layout == 0:
			gemmS(false, false, TB, I, GH, da, GH, Wd, I, gX, I)
		default:
			for t := 0; t < s.T; t++ {
				gemmS(false, false, B, I, GH, da[t*B*GH:], GH, Wd, I, gX[t*I:], s.T*I)
			}
		}
		for b := 0; b < B; b++ {
			if gH0 != nil {
				copy(gH0[s.stateAt(d, b):], dh[b*H:(b+1)*H])
			}
			if gC0 != nil {
				copy(gC0[s.stateAt(d, b):], dc[b*H:(b+1)*H])
			}
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	out[1], out[2] = like(c.In[1], gW), like(c.In[2], gR)
	if gX != nil {
		out[0] = like(c.In[0], gX)
	}
	if gBias != nil {
		out[3] = like(c.In[3], gBias)
	}
	if gH0 != nil {
		out[5] = like(c.In[5], gH0)
	}
	if gC0 != nil {
		out[6] = like(c.In[6], gC0)
	}
	if gP != nil {
		out[7] = like(c.In[7], gP)
	}
	return out, nil
}

// lstmGradRows is the element-wise LSTM backward step (no peepholes) of n
// consecutive rows: from dh (the gradient w.r.t. the step's output h) and
// dc (w.r.t. its cell state) it writes the gate pre-activation gradients
// da (i, o, f, c~; row stride 4H) and leaves in dc the gradient w.r.t.
// the cell state the step started from. g are the activated gates, cp the
// starting cell states, tc tanh (ga's h) of the new ones (row stride H);
// ga is nil for the default functions. For float32 with those it is
// ops/linalg's LSTMCellGrad (vector kernels).
func lstmGradRows[T tensor.Float](n, H int, dh, dc, g, cp, tc, da []T, ga *gateActs) {
	if dh32, ok := any(dh).([]float32); ok && ga == nil {
		f := func(s []T) []float32 { return any(s).([]float32) }
		linalg.LSTMCellGrad(n, H, dh32, f(dc), f(g), f(cp), f(tc), f(da))
		return
	}
	for m := 0; m < n; m++ {
		dhm, dcm, cpm, tcm := dh[m*H:(m+1)*H], dc[m*H:(m+1)*H], cp[m*H:(m+1)*H], tc[m*H:(m+1)*H]
		gm, dam := g[m*4*H:(m+1)*4*H], da[m*4*H:(m+1)*4*H]
		gi, gO, gf, gc := gm[:H], gm[H:2*H], gm[2*H:3*H], gm[3*H:]
		di, dO, df, dcc := dam[:H], dam[H:2*H], dam[2*H:3*H], dam[3*H:]
		for j := 0; j < H; j++ {
			i, o, f, gg, t, y := gi[j], gO[j], gf[j], gc[j], tcm[j], dhm[j]
			si, so, sf, sg, st := lstmSlopes(ga, i, o, f, gg, t)
			dO[j] = y * t * so
			dC := dcm[j] + y*o*st
			di[j] = dC * gg * si
			df[j] = dC * cpm[j] * sf
			dcc[j] = dC * i * sg
			dcm[j] = dC * f
		}
	}
}

// lstmSlopes are the derivatives of an LSTM step's activations where they
// gave the gates i, o, f, the candidate gg and the output function's t.
func lstmSlopes[T tensor.Float](ga *gateActs, i, o, f, gg, t T) (si, so, sf, sg, st T) {
	if ga == nil {
		return i * (1 - i), o * (1 - o), f * (1 - f), 1 - gg*gg, 1 - t*t
	}
	return slope(ga[actF], i), slope(ga[actF], o), slope(ga[actF], f), slope(ga[actG], gg), slope(ga[actH], t)
}

// lstmPeepGradRows is lstmGradRows with peepholes p (i, o, f; 3H), whose
// gradients it adds to gp; cn are the new cell states.
func lstmPeepGradRows[T tensor.Float](n, H int, dh, dc, g, cp, cn, tc, p, gp, da []T, ga *gateActs) {
	for m := 0; m < n; m++ {
		for j := 0; j < H; j++ {
			q, e := m*H+j, m*4*H+j
			i, o, f, gg, t, y := g[e], g[e+H], g[e+2*H], g[e+3*H], tc[q], dh[q]
			si, so, sf, sg, st := lstmSlopes(ga, i, o, f, gg, t)
			dao := y * t * so
			dC := dc[q] + y*o*st + dao*p[H+j]
			gp[H+j] += dao * cn[q]
			c := cp[q]
			dai := dC * gg * si
			daf := dC * c * sf
			da[e], da[e+H], da[e+2*H], da[e+3*H] = dai, dao, daf, dC*i*sg
			dc[q] = dC*f + dai*p[j] + daf*p[2*H+j]
			gp[j] += dai * c
			gp[2*H+j] += daf * c
		}
	}
}

// gruGradRow is the element-wise GRU backward step of one row: from dh it
// writes da (z, r, h~ pre-activations; r only with linear_before_reset=1,
// else it needs dh~'s product with Rh first), dhr = da_h~ ⊙ r (lbr=1),
// and leaves in dh the direct part of the gradient w.r.t. the starting
// state, dh ⊙ z. hp is that state, hr the tape's H·Rhᵀ + Rbh (lbr=1); ga
// the functions, nil for the defaults.
func gruGradRow[T tensor.Float](lbr bool, H int, dh, g, hp, hr, da, dhr []T, ga *gateActs) {
	z, r, hh := g[:H], g[H:2*H], g[2*H:3*H]
	for j := 0; j < H; j++ {
		y := dh[j]
		sz, sr, sh := z[j]*(1-z[j]), r[j]*(1-r[j]), 1-hh[j]*hh[j]
		if ga != nil {
			sz, sr, sh = slope(ga[actF], z[j]), slope(ga[actF], r[j]), slope(ga[actG], hh[j])
		}
		da[j] = y * (hp[j] - hh[j]) * sz
		dah := y * (1 - z[j]) * sh
		da[2*H+j] = dah
		if lbr {
			da[H+j] = dah * hr[j] * sr
			dhr[j] = dah * r[j]
		}
		dh[j] = y * z[j]
	}
}

// gemmKBlock is the k block of gemmS: ops/linalg's SGEMM k block, whose
// packed B block of up to G·H columns stays in L2.
const gemmKBlock = 384

// gradBlockRows is the row block (time steps × batch) in which a recurrent
// backward pass packs its gate gradients and multiplies them into the
// weight gradients: 192 rows of the seed model's 256 columns are 196 KB.
const gradBlockRows = 192

// gemmS adds op(A)·op(B) to C (m×n), row-major with leading dimensions:
// ops/linalg's SGEMM for float32, a plain loop for float64.
func gemmS[T tensor.Float](ta, tb bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	if m == 0 || n == 0 || k == 0 {
		return
	}
	if a32, ok := any(a).([]float32); ok {
		// B packed into pooled scratch a block of k at a time, so a B of
		// T·B rows is multiplied while its packed block is in cache
		b32, c32 := any(b).([]float32), any(c).([]float32)
		kb := min(k, gemmKBlock)
		buf := getScratch[float32](linalg.PackedSize(kb, n))
		var pb linalg.PackedB
		for k0 := 0; k0 < k; k0 += kb {
			kk := min(kb, k-k0)
			ao, bo := k0, k0*ldb
			if ta {
				ao = k0 * lda
			}
			if tb {
				bo = k0
			}
			linalg.PackBInto(&pb, buf, tb, kk, n, b32[bo:], ldb)
			linalg.SgemmPacked(ta, m, 1, a32[ao:], lda, &pb, 1, c32, ldc)
		}
		putScratch(buf)
		return
	}
	gemmLoop(ta, tb, m, n, k, a, lda, b, ldb, c, ldc)
}

// gemmLoop is the plain product loop of gemmS and gemmAcc (float64, and
// what has no SIMD kernel): c += op(a)·op(b), skipping zero entries of a.
func gemmLoop[T tensor.Float](ta, tb bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		for p := 0; p < k; p++ {
			var av T
			if ta {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			if av == 0 {
				continue
			}
			if tb {
				for j := range ci {
					ci[j] += av * b[j*ldb+p]
				}
			} else {
				for j, v := range b[p*ldb : p*ldb+n] {
					ci[j] += av * v
				}
			}
		}
	}
}

// packedMat is the right-hand matrix of repeated products c += a·op(B)
// (op(B) k×n), packed once for ops/linalg's SGEMM when T is float32 rather
// than on every call.
type packedMat[T tensor.Float] struct {
	b         []T
	trans     bool
	k, n, ldb int
	p         *linalg.PackedB
	buf       []float32 // p's pooled storage
}

func packMat[T tensor.Float](trans bool, k, n int, b []T, ldb int) *packedMat[T] {
	q := &packedMat[T]{b: b, trans: trans, k: k, n: n, ldb: ldb}
	if b32, ok := any(b).([]float32); ok {
		q.buf = getScratch[float32](linalg.PackedSize(k, n))
		q.p = new(linalg.PackedB)
		linalg.PackBInto(q.p, q.buf, trans, k, n, b32, ldb)
	}
	return q
}

// release returns the packed copy's pooled buffer; q is unusable after.
func (q *packedMat[T]) release() {
	if q.buf != nil {
		putScratch(q.buf)
		q.buf, q.p = nil, nil
	}
}

// mulAcc adds a·op(B) into c (m×n, row-major), a being m×k with row
// stride lda.
func (q *packedMat[T]) mulAcc(m int, a []T, lda int, c []T) {
	if q.p != nil {
		linalg.SgemmPacked(false, m, 1, any(a).([]float32), lda, q.p, 1, any(c).([]float32), q.n)
		return
	}
	for i := 0; i < m; i++ {
		ci := c[i*q.n : (i+1)*q.n]
		for p := 0; p < q.k; p++ {
			av := a[i*lda+p]
			if av == 0 {
				continue
			}
			if q.trans {
				for j := range ci {
					ci[j] += av * q.b[j*q.ldb+p]
				}
			} else {
				row := q.b[p*q.ldb : p*q.ldb+q.n]
				for j, v := range row {
					ci[j] += av * v
				}
			}
		}
	}
}

// scratchPools keep the recurrent backward pass's buffers between calls,
// one pool per power-of-two capacity, so a request for a large buffer is
// not handed (and made to drop) a small one.
var scratchPools [64]sync.Pool

// getScratch returns a slice of n elements, stale, not zeroed.
func getScratch[T tensor.Float](n int) []T {
	c := bits.Len(uint(max(n, 1) - 1)) // the class whose buffers hold ≥ n
	if p, ok := scratchPools[c].Get().(*[]T); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]T, n, 1<<c)
}

// putScratch hands s back for getScratch to reuse.
func putScratch[T tensor.Float](s []T) {
	if cap(s) == 0 {
		return
	}
	c := bits.Len(uint(cap(s))) - 1 // the largest class s can serve
	scratchPools[c].Put(&s)
}
