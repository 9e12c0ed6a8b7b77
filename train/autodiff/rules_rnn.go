package autodiff

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/ops/rnn"
	"github.com/mtlrun/mtlrun/tensor"
)

// LSTM and GRU are differentiated by full backpropagation through time.
// The forward pass is the inference kernel of ops/rnn itself (fused where
// it is), run with a trace (rnn.RunTraced) that records the node's parsed
// configuration and the state every step started from; so training's
// outputs are bitwise inference's, and there is one attribute parser, the
// kernel's. From the recorded states the tape recomputes each step's gate
// activations (gate orders iofc and zrh; directions; sequence_lens;
// initial states; peepholes; layout 0 and 1; GRU linear_before_reset 0 and
// 1), which the backward pass needs.

func init() {
	register("LSTM", typed(rnnBackward[float32], rnnBackward[float64]), typedForward(rnnForward[float32], rnnForward[float64]))
	register("GRU", typed(rnnBackward[float32], rnnBackward[float64]), typedForward(rnnForward[float32], rnnForward[float64]))
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
	lbr        bool // GRU linear_before_reset
	dirs       int
	reverse    []bool // per direction
	T, B, I, H int
	G          int // gates: 4 for LSTM, 3 for GRU
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
	case tr.Cell != "LSTM" && tr.Cell != "GRU":
		return nil, fmt.Errorf("training does not support %s", tr.Cell)
	}
	s := &rnnSpec{lstm: tr.Cell == "LSTM", lbr: tr.LinearBeforeReset, dirs: tr.Dirs(), reverse: tr.Reverse,
		T: tr.Seq, B: tr.Batch, I: tr.Input, H: tr.Hidden, layout: tr.Layout, lens: tr.Lens, G: 3}
	if s.lstm {
		s.G = 4
	}
	if s.lens == nil {
		s.lens = make([]int, s.B)
		for b := range s.lens {
			s.lens[b] = s.T
		}
	}
	return s, nil
}

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
		xk := make([]T, B*I)
		for k := 0; k < s.T; k++ {
			a := make([]T, B*GH)
			for b := 0; b < B; b++ {
				row := xk[b*I : (b+1)*I]
				if t := s.timeOf(d, k, b); t >= 0 {
					copy(row, X[s.xAt(t, b):s.xAt(t, b)+I])
					// the state the kernel started this step from
					copy(h[b*H:(b+1)*H], tr.H(d, t, b))
					if s.lstm {
						copy(cs[b*H:(b+1)*H], tr.C(d, t, b))
					}
				} else {
					clear(row)
				}
				if bias != nil {
					wb, rb := bias[d*2*GH:d*2*GH+GH], bias[d*2*GH+GH:(d+1)*2*GH]
					for j := 0; j < GH; j++ {
						a[b*GH+j] = wb[j]
						if s.lstm || j < 2*H { // GRU's Rbh is applied with the reset gate below
							a[b*GH+j] += rb[j]
						}
					}
				}
			}
			gemmAcc(false, true, B, GH, I, xk, Wd, a)
			hPrev := append([]T(nil), h...)
			cPrev := append([]T(nil), cs...)
			var hrk []T
			if s.lstm {
				gemmAcc(false, true, B, GH, H, h, Rd, a)
			} else {
				// z and r see H·R directly; h~ depends on the reset mode
				zr := make([]T, B*2*H)
				gemmAcc(false, true, B, 2*H, H, h, Rd[:2*H*H], zr)
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
			if !s.lstm {
				// h~ pre-activation: X·Whᵀ + Wbh already in a[2H:]; add the
				// recurrent part per reset mode
				Rh := Rd[2*H*H:]
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
				gemmAcc(false, true, B, H, H, src, Rh, hrk)
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
			recurrentCols := GH
			if !s.lstm {
				recurrentCols = 2 * H // h~'s recurrent part was handled above
			}
			gemmAcc(true, false, GH, I, B, da, xk, gWd)
			hPrevAll := hPrev
			gemmAccCols(da, B, GH, recurrentCols, hPrevAll, H, gRd)
			clear(dxk)
			gemmAcc(false, false, B, I, GH, da, Wd, dxk)
			dhNew := make([]T, B*H)
			gemmAccRows(da, B, GH, recurrentCols, Rd, H, dhNew)
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

// gemmAccRows adds da[:, :cols]·R[:cols, :] into dh.
func gemmAccRows[T tensor.Float](da []T, B, stride, cols int, R []T, H int, dh []T) {
	if d32, ok := any(da).([]float32); ok {
		linalg.Sgemm(false, false, B, H, cols, 1, d32, stride, any(R).([]float32), H, 1, any(dh).([]float32), H)
		return
	}
	for b := 0; b < B; b++ {
		out := dh[b*H : (b+1)*H]
		for j := 0; j < cols; j++ {
			a := da[b*stride+j]
			if a == 0 {
				continue
			}
			row := R[j*H : (j+1)*H]
			for p := range out {
				out[p] += a * row[p]
			}
		}
	}
}
