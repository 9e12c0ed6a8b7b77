package autodiff

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/ops/linalg"

	"github.com/mtlrun/mtlrun/tensor"
)

// LSTM, GRU and RNN are differentiated by full backpropagation through time.
// Their forward pass here is a plain, state-keeping implementation of the
// ONNX formulas (gate orders iofc and zrh; directions; sequence_lens;
// initial states; peepholes; layout 0 and 1; GRU linear_before_reset 0 and
// 1); inference uses the fused kernels of ops/rnn instead.

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
	G          int // gates: 4 for LSTM, 3 for GRU
	layout     int
	lens       []int
}

func parseRNN(c *Ctx) (*rnnSpec, error) {
	s := &rnnSpec{lstm: c.Node.OpType == "LSTM", rnn: c.Node.OpType == "RNN", layout: int(c.Attrs.Int("layout", 0))}
	if acts := c.Attrs.Strings("activations"); len(acts) > 0 {
		def := []string{"Sigmoid", "Tanh", "Tanh"}
		switch {
		case s.rnn:
			def = []string{"Tanh"}
		case !s.lstm:
			def = def[:2]
		}
		for i, a := range acts {
			if a != def[i%len(def)] {
				return nil, fmt.Errorf("training supports only the default activations, got %v", acts)
			}
		}
	}
	if c.Attrs.Has("clip") {
		return nil, fmt.Errorf("training does not support the clip attribute")
	}
	if c.Attrs.Int("input_forget", 0) != 0 {
		return nil, fmt.Errorf("training does not support input_forget")
	}
	s.lbr = c.Attrs.Int("linear_before_reset", 0) != 0
	s.G = 3
	switch {
	case s.lstm:
		s.G = 4
	case s.rnn:
		s.G = 1
	}
	switch dir := c.Attrs.String("direction", "forward"); dir {
	case "forward":
		s.reverse = []bool{false}
	case "reverse":
		s.reverse = []bool{true}
	case "bidirectional":
		s.reverse = []bool{false, true}
	default:
		return nil, fmt.Errorf("unknown direction %q", dir)
	}
	s.dirs = len(s.reverse)
	x := c.In[0]
	if x.Rank() != 3 {
		return nil, fmt.Errorf("X must be rank 3, got %v", x.Shape)
	}
	if s.layout == 0 {
		s.T, s.B, s.I = x.Shape[0], x.Shape[1], x.Shape[2]
	} else {
		s.B, s.T, s.I = x.Shape[0], x.Shape[1], x.Shape[2]
	}
	s.H = c.In[2].Shape[2]
	s.lens = make([]int, s.B)
	for b := range s.lens {
		s.lens[b] = s.T
	}
	if len(c.In) > 4 && c.In[4] != nil {
		l, err := tensor.AsInt64(c.In[4])
		if err != nil {
			return nil, err
		}
		for b := range s.lens {
			s.lens[b] = int(min(max(l[b], 0), int64(s.T)))
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

func rnnForward[T tensor.Float](c *Ctx) ([]*tensor.Tensor, any, error) {
	s, err := parseRNN(c)
	if err != nil {
		return nil, nil, err
	}
	X, W, R := data[T](c.In[0]), data[T](c.In[1]), data[T](c.In[2])
	G, H, B, I := s.G, s.H, s.B, s.I
	GH := G * H
	var bias []T
	if len(c.In) > 3 && c.In[3] != nil {
		bias = data[T](c.In[3])
	}
	var h0, c0, peep []T
	if len(c.In) > 5 && c.In[5] != nil {
		h0 = data[T](c.In[5])
	}
	if s.lstm && len(c.In) > 6 && c.In[6] != nil {
		c0 = data[T](c.In[6])
	}
	if s.lstm && len(c.In) > 7 && c.In[7] != nil {
		peep = data[T](c.In[7])
	}
	ys := []int{s.T, s.dirs, B, H}
	hs := []int{s.dirs, B, H}
	if s.layout == 1 {
		ys = []int{B, s.T, s.dirs, H}
		hs = []int{B, s.dirs, H}
	}
	Y, Yh, Yc := make([]T, prod(ys)), make([]T, prod(hs)), make([]T, prod(hs))
	tp := &rnnTape[T]{spec: s}
	for d := 0; d < s.dirs; d++ {
		Wd, Rd := W[d*GH*I:(d+1)*GH*I], R[d*GH*H:(d+1)*GH*H]
		h, cs := make([]T, B*H), make([]T, B*H)
		for b := 0; b < B; b++ {
			if h0 != nil {
				copy(h[b*H:(b+1)*H], h0[s.stateAt(d, b):])
			}
			if c0 != nil {
				copy(cs[b*H:(b+1)*H], c0[s.stateAt(d, b):])
			}
		}
		var gatesD, hPrevD, cPrevD, cNextD, hrD [][]T
		xk := make([]T, B*I)
		for k := 0; k < s.T; k++ {
			a := make([]T, B*GH)
			for b := 0; b < B; b++ {
				row := xk[b*I : (b+1)*I]
				if t := s.timeOf(d, k, b); t >= 0 {
					copy(row, X[s.xAt(t, b):s.xAt(t, b)+I])
				} else {
					clear(row)
				}
				if bias != nil {
					wb, rb := bias[d*2*GH:d*2*GH+GH], bias[d*2*GH+GH:(d+1)*2*GH]
					for j := 0; j < GH; j++ {
						a[b*GH+j] = wb[j]
						if !s.gru() || j < 2*H { // GRU's Rbh is applied with the reset gate below
							a[b*GH+j] += rb[j]
						}
					}
				}
			}
			gemmAcc(false, true, B, GH, I, xk, Wd, a)
			hPrev := append([]T(nil), h...)
			cPrev := append([]T(nil), cs...)
			var hrk []T
			if !s.gru() {
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
				} else if s.rnn {
					for j := 0; j < H; j++ {
						ab[j] = T(math.Tanh(float64(ab[j])))
						hb[j] = ab[j]
					}
				}
			}
			if s.gru() {
				// h~ pre-activation: X·Whᵀ + Wbh already in a[2H:]; add the
				// recurrent part per reset mode
				Rh := Rd[2*H*H:]
				var rbh []T
				if bias != nil {
					rbh = bias[d*2*GH+GH+2*H : (d+1)*2*GH]
				}
				hrk = make([]T, B*H)
				for b := 0; b < B; b++ {
					if s.timeOf(d, k, b) < 0 {
						continue
					}
					ab := a[b*GH : (b+1)*GH]
					hb := hPrev[b*H : (b+1)*H]
					for j := 0; j < 2*H; j++ {
						ab[j] = T(sig(float64(ab[j])))
					}
					r := ab[H : 2*H]
					for j := 0; j < H; j++ {
						var acc T
						for p := 0; p < H; p++ {
							if s.lbr {
								acc += hb[p] * Rh[j*H+p]
							} else {
								acc += r[p] * hb[p] * Rh[j*H+p]
							}
						}
						if rbh != nil {
							acc += rbh[j]
						}
						hrk[b*H+j] = acc
						pre := ab[2*H+j]
						if s.lbr {
							pre += r[j] * acc
						} else {
							pre += acc
						}
						ab[2*H+j] = T(math.Tanh(float64(pre)))
					}
					z := ab[:H]
					for j := 0; j < H; j++ {
						h[b*H+j] = (1-z[j])*ab[2*H+j] + z[j]*hb[j]
					}
				}
			}
			for b := 0; b < B; b++ {
				if t := s.timeOf(d, k, b); t >= 0 {
					copy(Y[s.yAt(t, d, b):s.yAt(t, d, b)+H], h[b*H:(b+1)*H])
				}
			}
			gatesD = append(gatesD, a)
			hPrevD = append(hPrevD, hPrev)
			cPrevD = append(cPrevD, cPrev)
			cNextD = append(cNextD, append([]T(nil), cs...))
			hrD = append(hrD, hrk)
		}
		for b := 0; b < B; b++ {
			copy(Yh[s.stateAt(d, b):s.stateAt(d, b)+H], h[b*H:(b+1)*H])
			copy(Yc[s.stateAt(d, b):s.stateAt(d, b)+H], cs[b*H:(b+1)*H])
		}
		tp.gates = append(tp.gates, gatesD)
		tp.hPrev = append(tp.hPrev, hPrevD)
		tp.cPrev = append(tp.cPrev, cPrevD)
		tp.cNext = append(tp.cNext, cNextD)
		tp.hr = append(tp.hr, hrD)
	}
	outs := []*tensor.Tensor{tensor.From(ys, Y), tensor.From(hs, Yh)}
	if s.lstm {
		outs = append(outs, tensor.From(hs, Yc))
	}
	for i := range outs {
		outs[i].DType = c.In[0].DType
	}
	return outs[:min(len(outs), max(len(c.Node.Outputs), 1))], tp, nil
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
			recurrentCols := GH
			if s.gru() {
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
