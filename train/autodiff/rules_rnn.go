package autodiff

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/ops/rnn"
	"github.com/mtlrun/mtlrun/tensor"
)

// LSTM, GRU and RNN are differentiated by full backpropagation through time.
// The forward pass is the inference kernel of ops/rnn itself (fused where
// it is), run with a trace (rnn.RunTraced) that records the node's parsed
// configuration and the state every step started from; so training's
// outputs are bitwise inference's, and there is one attribute parser, the
// kernel's. From the recorded states the tape recomputes each step's gate
// activations (gate orders iofc and zrh, RNN's single tanh; directions; sequence_lens;
// initial states; peepholes; layout 0 and 1; GRU linear_before_reset 0 and
// 1), which the backward pass needs.

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
}

// specOf checks that training supports the traced node and returns its
// sizes and layout.
func specOf[T tensor.Float](tr *rnn.Trace[T]) (*rnnSpec, error) {
	switch {
	case !tr.DefaultActivations:
		return nil, fmt.Errorf("training supports only the default activations")
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

// rnnTape keeps per direction and step what backward needs.
type rnnTape[T tensor.Float] struct {
	spec *rnnSpec
	// [dir][step] → [B, G*H] activated gates (LSTM i,o,f,c~; GRU z,r,h~)
	gates [][][]T
	// [dir][step] → hidden/cell state before the step [B, H]
	hPrev, cPrev [][][]T
	// [dir][step] → cell state after the step (LSTM)
	cNext [][][]T
	// [dir][step] → H_{t-1}·Rhᵀ + Rbh (GRU, linear_before_reset=1)
	hr [][][]T
}

func sig(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// rnnForward runs the node's inference kernel with a trace and builds the
// tape from it.
func rnnForward[T tensor.Float](c *Ctx) ([]*tensor.Tensor, any, error) {
	var tr rnn.Trace[T]
	outs, err := rnn.RunTraced(c.Kernel, c.In, &tr)
	if err != nil {
		return nil, nil, err
	}
	s, err := specOf(&tr)
	if err != nil {
		return nil, nil, err
	}
	return outs, rnnTapeOf(c, s, &tr), nil
}

// rnnTapeOf recomputes what the backward pass needs from the states the
// kernel recorded: each step's gate activations and, for LSTM, the cell
// state after it; for GRU the recurrent part of the h gate.
func rnnTapeOf[T tensor.Float](c *Ctx, s *rnnSpec, tr *rnn.Trace[T]) *rnnTape[T] {
	X, W, R := data[T](c.In[0]), data[T](c.In[1]), data[T](c.In[2])
	G, H, B, I := s.G, s.H, s.B, s.I
	GH := G * H
	var bias []T
	if len(c.In) > 3 && c.In[3] != nil {
		bias = data[T](c.In[3])
	}
	var peep []T
	if s.lstm && len(c.In) > 7 && c.In[7] != nil {
		peep = data[T](c.In[7])
	}
	tp := &rnnTape[T]{spec: s}
	for d := 0; d < s.dirs; d++ {
		Wd, Rd := W[d*GH*I:(d+1)*GH*I], R[d*GH*H:(d+1)*GH*H]
		h, cs := make([]T, B*H), make([]T, B*H)
		var gatesD, hPrevD, cPrevD, cNextD, hrD [][]T
		// the input projection X·Wᵀ of every step at once (row r of xw is
		// row r of X, in either layout); R packed once for the steps
		xw := make([]T, s.T*B*GH)
		gemmAcc(false, true, s.T*B, GH, I, X, Wd, xw)
		var rAll, rZR, rH *packedMat[T]
		if s.gru() {
			rZR, rH = packMat(true, H, 2*H, Rd, H), packMat(true, H, H, Rd[2*H*H:], H)
		} else {
			rAll = packMat(true, H, GH, Rd, H)
		}
		for k := 0; k < s.T; k++ {
			a := make([]T, B*GH)
			for b := 0; b < B; b++ {
				ab := a[b*GH : (b+1)*GH]
				if bias != nil {
					wb, rb := bias[d*2*GH:d*2*GH+GH], bias[d*2*GH+GH:(d+1)*2*GH]
					for j := 0; j < GH; j++ {
						ab[j] = wb[j]
						if !s.gru() || j < 2*H { // GRU's Rbh is applied with the reset gate below
							ab[j] += rb[j]
						}
					}
				}
				if t := s.timeOf(d, k, b); t >= 0 {
					xr := xw[s.xAt(t, b)/I*GH:][:GH]
					for j := range ab {
						ab[j] += xr[j]
					}
					// the state the kernel started this step from
					copy(h[b*H:(b+1)*H], tr.H(d, t, b))
					if s.lstm {
						copy(cs[b*H:(b+1)*H], tr.C(d, t, b))
					}
				}
			}
			hPrev := append([]T(nil), h...)
			cPrev := append([]T(nil), cs...)
			var hrk []T
			if !s.gru() {
				rAll.mulAcc(B, h, H, a)
			} else {
				// z and r see H·R directly; h~ depends on the reset mode
				zr := make([]T, B*2*H)
				rZR.mulAcc(B, h, H, zr)
				for b := 0; b < B; b++ {
					for j := 0; j < 2*H; j++ {
						a[b*GH+j] += zr[b*2*H+j]
					}
				}
			}
			for b := 0; b < B; b++ {
				if s.timeOf(d, k, b) < 0 {
					continue // state frozen past this row's length
				}
				ab := a[b*GH : (b+1)*GH]
				hb, cb := h[b*H:(b+1)*H], cs[b*H:(b+1)*H]
				if s.rnn {
					// the state after the step is the next traced one;
					// only the activation is kept
					if a32, ok := any(ab).([]float32); ok {
						linalg.Tanh(a32)
						continue
					}
					for j := range ab {
						ab[j] = T(math.Tanh(float64(ab[j])))
					}
					continue
				}
				if a32, ok := any(ab).([]float32); ok && s.lstm && peep == nil {
					// float32 without peepholes: the vector activations
					// of ops/linalg, as the inference kernel applies them
					linalg.Sigmoid(a32[:3*H])
					linalg.Tanh(a32[3*H : 4*H])
					for j := 0; j < H; j++ {
						cb[j] = ab[2*H+j]*cb[j] + ab[j]*ab[3*H+j]
					}
					continue // the next step starts from the traced state
				}
				if s.lstm {
					for j := 0; j < H; j++ {
						ai, ao, af, ac := float64(ab[j]), float64(ab[H+j]), float64(ab[2*H+j]), float64(ab[3*H+j])
						if peep != nil {
							ai += float64(peep[d*3*H+j] * cb[j])
							af += float64(peep[d*3*H+2*H+j] * cb[j])
						}
						i, f, g := sig(ai), sig(af), math.Tanh(ac)
						cn := f*float64(cb[j]) + i*g
						if peep != nil {
							ao += float64(peep[d*3*H+H+j]) * cn
						}
						o := sig(ao)
						ab[j], ab[H+j], ab[2*H+j], ab[3*H+j] = T(i), T(o), T(f), T(g)
						cb[j] = T(cn)
						hb[j] = T(o * math.Tanh(cn))
					}
				}
			}
			if s.gru() {
				// h~ pre-activation: X·Whᵀ + Wbh already in a[2H:]; add the
				// recurrent part per reset mode
				var rbh []T
				if bias != nil {
					rbh = bias[d*2*GH+GH+2*H : (d+1)*2*GH]
				}
				hrk = make([]T, B*H)
				// z and r
				for b := 0; b < B; b++ {
					if s.timeOf(d, k, b) < 0 {
						continue
					}
					zr := a[b*GH : b*GH+2*H]
					if z32, ok := any(zr).([]float32); ok {
						linalg.Sigmoid(z32)
						continue
					}
					for j := range zr {
						zr[j] = T(sig(float64(zr[j])))
					}
				}
				// the recurrent part of h~: H·Rhᵀ (linear_before_reset=1)
				// or (r ⊙ H)·Rhᵀ, plus Rbh, for all rows at once
				src := hPrev
				if !s.lbr {
					src = make([]T, B*H)
					for b := 0; b < B; b++ {
						r := a[b*GH+H : b*GH+2*H]
						for p := 0; p < H; p++ {
							src[b*H+p] = r[p] * hPrev[b*H+p]
						}
					}
				}
				rH.mulAcc(B, src, H, hrk)
				for b := 0; b < B; b++ {
					if s.timeOf(d, k, b) < 0 {
						continue
					}
					ab := a[b*GH : (b+1)*GH]
					hr := hrk[b*H : (b+1)*H]
					if rbh != nil {
						for j := range hr {
							hr[j] += rbh[j]
						}
					}
					r, hh := ab[H:2*H], ab[2*H:3*H]
					for j := range hh {
						if s.lbr {
							hh[j] += r[j] * hr[j]
						} else {
							hh[j] += hr[j]
						}
					}
					if h32, ok := any(hh).([]float32); ok {
						linalg.Tanh(h32)
						continue
					}
					for j := range hh {
						hh[j] = T(math.Tanh(float64(hh[j])))
					}
				}
			}
			gatesD = append(gatesD, a)
			hPrevD = append(hPrevD, hPrev)
			cPrevD = append(cPrevD, cPrev)
			cNextD = append(cNextD, append([]T(nil), cs...))
			hrD = append(hrD, hrk)
		}
		tp.gates = append(tp.gates, gatesD)
		tp.hPrev = append(tp.hPrev, hPrevD)
		tp.cPrev = append(tp.cPrev, cPrevD)
		tp.cNext = append(tp.cNext, cNextD)
		tp.hr = append(tp.hr, hrD)
	}
	return tp
}

func rnnBackward[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	tp, ok := c.Saved.(*rnnTape[T])
	if !ok {
		return nil, fmt.Errorf("missing forward state")
	}
	s := tp.spec
	X, W, R := data[T](c.In[0]), data[T](c.In[1]), data[T](c.In[2])
	G, H, B, I := s.G, s.H, s.B, s.I
	GH := G * H
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
	gX, gW, gR := make([]T, len(X)), make([]T, len(W)), make([]T, len(R))
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
	for d := 0; d < s.dirs; d++ {
		Wd, Rd := W[d*GH*I:(d+1)*GH*I], R[d*GH*H:(d+1)*GH*H]
		gWd, gRd := gW[d*GH*I:(d+1)*GH*I], gR[d*GH*H:(d+1)*GH*H]
		dh, dc := make([]T, B*H), make([]T, B*H)
		for b := 0; b < B; b++ {
			if gYh != nil {
				copy(dh[b*H:(b+1)*H], gYh[s.stateAt(d, b):])
			}
			if gYc != nil {
				copy(dc[b*H:(b+1)*H], gYc[s.stateAt(d, b):])
			}
		}
		da := make([]T, B*GH)
		xk := make([]T, B*I)
		recurrentCols := GH
		if s.gru() {
			recurrentCols = 2 * H // h~'s recurrent part is handled per row
		}
		// W and R's gate rows multiply da on every step: packed once
		wNN, rRows := packMat(false, GH, I, Wd, I), packMat(false, recurrentCols, H, Rd, H)
		dxk := make([]T, B*I)
		for k := s.T - 1; k >= 0; k-- {
			gates, hPrev, cPrev, cNext := tp.gates[d][k], tp.hPrev[d][k], tp.cPrev[d][k], tp.cNext[d][k]
			clear(da)
			valid := false
			for b := 0; b < B; b++ {
				t := s.timeOf(d, k, b)
				row := xk[b*I : (b+1)*I]
				if t < 0 {
					clear(row)
					continue
				}
				valid = true
				copy(row, X[s.xAt(t, b):s.xAt(t, b)+I])
				hb := dh[b*H : (b+1)*H]
				if gY != nil {
					y := gY[s.yAt(t, d, b):]
					for j := range hb {
						hb[j] += y[j]
					}
				}
				g := gates[b*GH : (b+1)*GH]
				ab := da[b*GH : (b+1)*GH]
				if s.lstm {
					cb := dc[b*H : (b+1)*H]
					for j := 0; j < H; j++ {
						i, o, f, gg := g[j], g[H+j], g[2*H+j], g[3*H+j]
						cn := cNext[b*H+j]
						tc := T(math.Tanh(float64(cn)))
						dao := hb[j] * tc * o * (1 - o)
						dC := cb[j] + hb[j]*o*(1-tc*tc)
						if peep != nil {
							dC += dao * peep[d*3*H+H+j]
							gP[d*3*H+H+j] += dao * cn
						}
						cp := cPrev[b*H+j]
						dai := dC * gg * i * (1 - i)
						daf := dC * cp * f * (1 - f)
						dac := dC * i * (1 - gg*gg)
						ab[j], ab[H+j], ab[2*H+j], ab[3*H+j] = dai, dao, daf, dac
						cb[j] = dC * f
						if peep != nil {
							cb[j] += dai*peep[d*3*H+j] + daf*peep[d*3*H+2*H+j]
							gP[d*3*H+j] += dai * cp
							gP[d*3*H+2*H+j] += daf * cp
						}
					}
					clear(hb) // refilled from da·R below
				} else if s.rnn {
					for j := 0; j < H; j++ {
						ab[j] = hb[j] * (1 - g[j]*g[j])
					}
					clear(hb)
				} else {
					hp := hPrev[b*H : (b+1)*H]
					hr := tp.hr[d][k][b*H : (b+1)*H]
					z, r, hh := g[:H], g[H:2*H], g[2*H:]
					dhp := make([]T, H)
					for j := 0; j < H; j++ {
						dz := hb[j] * (hp[j] - hh[j]) * z[j] * (1 - z[j])
						dah := hb[j] * (1 - z[j]) * (1 - hh[j]*hh[j])
						ab[j], ab[2*H+j] = dz, dah
						dhp[j] = hb[j] * z[j]
					}
					Rh := Rd[2*H*H:]
					gRh := gRd[2*H*H:]
					if s.lbr {
						for j := 0; j < H; j++ {
							dahj := ab[2*H+j]
							ab[H+j] = dahj * hr[j] * r[j] * (1 - r[j])
							dhr := dahj * r[j]
							for p := 0; p < H; p++ {
								gRh[j*H+p] += dhr * hp[p]
								dhp[p] += dhr * Rh[j*H+p]
							}
							if gBias != nil {
								gBias[d*2*GH+GH+2*H+j] += dhr
							}
						}
					} else {
						drh := make([]T, H)
						for j := 0; j < H; j++ {
							dahj := ab[2*H+j]
							for p := 0; p < H; p++ {
								gRh[j*H+p] += dahj * r[p] * hp[p]
								drh[p] += dahj * Rh[j*H+p]
							}
							if gBias != nil {
								gBias[d*2*GH+GH+2*H+j] += dahj
							}
						}
						for p := 0; p < H; p++ {
							ab[H+p] = drh[p] * hp[p] * r[p] * (1 - r[p])
							dhp[p] += drh[p] * r[p]
						}
					}
					copy(hb, dhp)
				}
			}
			if !valid {
				continue
			}
			// parameter and input gradients of this step
			gemmAcc(true, false, GH, I, B, da, xk, gWd)
			hPrevAll := hPrev
			gemmAccCols(da, B, GH, recurrentCols, hPrevAll, H, gRd)
			clear(dxk)
			wNN.mulAcc(B, da, GH, dxk)
			dhNew := make([]T, B*H)
			rRows.mulAcc(B, da, GH, dhNew)
			for b := 0; b < B; b++ {
				t := s.timeOf(d, k, b)
				if t < 0 {
					continue
				}
				gx := gX[s.xAt(t, b) : s.xAt(t, b)+I]
				for p := range gx {
					gx[p] += dxk[b*I+p]
				}
				for j := 0; j < H; j++ {
					dh[b*H+j] += dhNew[b*H+j]
				}
				if gBias != nil {
					for j := 0; j < GH; j++ {
						gBias[d*2*GH+j] += da[b*GH+j]
						if j < recurrentCols {
							gBias[d*2*GH+GH+j] += da[b*GH+j]
						}
					}
				}
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
	out[0], out[1], out[2] = like(c.In[0], gX), like(c.In[1], gW), like(c.In[2], gR)
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

// gemmAccCols adds daᵀ·h to the first `cols` rows of gR (rows of R are gate
// units): gR[j, p] += Σ_b da[b, j]·h[b, p] for j < cols.
func gemmAccCols[T tensor.Float](da []T, B, stride, cols int, h []T, H int, gR []T) {
	if d32, ok := any(da).([]float32); ok {
		linalg.Sgemm(true, false, cols, H, B, 1, d32, stride, any(h).([]float32), H, 1, any(gR).([]float32), H)
		return
	}
	for b := 0; b < B; b++ {
		hb := h[b*H : (b+1)*H]
		for j := 0; j < cols; j++ {
			a := da[b*stride+j]
			if a == 0 {
				continue
			}
			row := gR[j*H : (j+1)*H]
			for p, v := range hb {
				row[p] += a * v
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
}

func packMat[T tensor.Float](trans bool, k, n int, b []T, ldb int) *packedMat[T] {
	q := &packedMat[T]{b: b, trans: trans, k: k, n: n, ldb: ldb}
	if b32, ok := any(b).([]float32); ok {
		q.p = linalg.PackB(trans, k, n, b32, ldb)
	}
	return q
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
