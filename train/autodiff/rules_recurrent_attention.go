package autodiff

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/tensor"
)

// Backward rules of the opset-27 state-carrying ops: CausalConvWithState
// and LinearAttention (backpropagation through its token-by-token state
// recurrence). Computed in float64 like their kernels.

func init() {
	register("CausalConvWithState", gradCausalConv, nil)
	register("LinearAttention", gradLinearAttention, nil)
}

// gradCausalConv: over the padded line p = [past | x], out_t =
// act(bias + Σ_j w_j·p_{t+j}) and the new state is p's last K−1 entries;
// the rule sends both outputs' gradients back to p, then splits p's into
// the past state's and x's.
func gradCausalConv(c *Ctx) ([]*tensor.Tensor, error) {
	x, w := c.In[0], c.In[1]
	B, C, L, K := x.Shape[0], x.Shape[1], x.Shape[2], w.Shape[2]
	act := c.Attrs.String("activation", "none")
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, err
	}
	wv, err := tensor.AsFloat64(w)
	if err != nil {
		return nil, err
	}
	opt := func(i int) []float64 {
		if i < len(c.In) && c.In[i] != nil {
			v, _ := tensor.AsFloat64(c.In[i])
			return v
		}
		return nil
	}
	bias, past := opt(2), opt(3)
	var gy, gst []float64
	if c.GradOut[0] != nil {
		if gy, err = tensor.AsFloat64(c.GradOut[0]); err != nil {
			return nil, err
		}
	}
	if len(c.GradOut) > 1 && c.GradOut[1] != nil {
		if gst, err = tensor.AsFloat64(c.GradOut[1]); err != nil {
			return nil, err
		}
	}
	P := K - 1 + L
	gx, gw, gb, gpast := make([]float64, len(xv)), make([]float64, len(wv)), make([]float64, C), make([]float64, B*C*(K-1))
	p, gp := make([]float64, P), make([]float64, P)
	for b := 0; b < B; b++ {
		for ch := 0; ch < C; ch++ {
			row := b*C + ch
			for i := 0; i < K-1; i++ {
				p[i] = 0
				if past != nil {
					p[i] = past[row*(K-1)+i]
				}
			}
			copy(p[K-1:], xv[row*L:][:L])
			for i := range gp {
				gp[i] = 0
			}
			if gst != nil {
				for i := 0; i < K-1; i++ {
					gp[P-(K-1)+i] += gst[row*(K-1)+i]
				}
			}
			if gy != nil {
				for t := 0; t < L; t++ {
					g := gy[row*L+t]
					if act != "none" {
						s := 0.0
						if bias != nil {
							s = bias[ch]
						}
						for j := 0; j < K; j++ {
							s += wv[ch*K+j] * p[t+j]
						}
						sg := 1 / (1 + math.Exp(-s))
						g *= sg * (1 + s*(1-sg))
					}
					gb[ch] += g
					for j := 0; j < K; j++ {
						gw[ch*K+j] += g * p[t+j]
						gp[t+j] += g * wv[ch*K+j]
					}
				}
			}
			copy(gpast[row*(K-1):][:K-1], gp[:K-1])
			copy(gx[row*L:][:L], gp[K-1:])
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	for i, v := range [][]float64{gx, gw, gb, gpast} {
		if i < len(c.In) && c.In[i] != nil && c.Need[i] {
			if out[i], err = asDType(c.In[i], c.In[i].Shape, v); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// gradLinearAttention replays the recurrence backwards. Per key/value head
// and token the state S (dk×dv) is decayed, D = diag(e^decay)·S, then
// updated, S' = D + k·vᵀ, or with the delta rule S' = D + β·k·uᵀ with
// u = v − Dᵀk; each query head reads o = scale·Sᵀq. The forward states are
// recomputed and kept per token; the gradient of S' (from the outputs and
// the present_state output) flows to q, k, v, β, the decay and the state
// before, and finally to past_state.
func gradLinearAttention(c *Ctx) ([]*tensor.Tensor, error) {
	q, v := c.In[0], c.In[2]
	Hq, Hk := int(c.Attrs.Int("q_num_heads", 0)), int(c.Attrs.Int("kv_num_heads", 0))
	if Hq <= 0 || Hk <= 0 || Hq%Hk != 0 {
		return nil, fmt.Errorf("LinearAttention heads %d/%d", Hq, Hk)
	}
	rule := c.Attrs.String("update_rule", "gated_delta")
	gated := rule == "gated" || rule == "gated_delta"
	delta := rule == "delta" || rule == "gated_delta"
	B, T := q.Shape[0], q.Shape[1]
	dk, dv := q.Shape[2]/Hq, v.Shape[2]/Hk
	reps := Hq / Hk
	scale := float64(c.Attrs.Float("scale", 0))
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(dk))
	}
	get := func(i int) ([]float64, error) {
		if i < len(c.In) && c.In[i] != nil {
			return tensor.AsFloat64(c.In[i])
		}
		return nil, nil
	}
	ins := make([][]float64, 6)
	for i := range ins {
		var err error
		if ins[i], err = get(i); err != nil {
			return nil, err
		}
	}
	qv, kv, vv, past, decay, beta := ins[0], ins[1], ins[2], ins[3], ins[4], ins[5]
	perKey := gated && c.In[4].Shape[2] == Hk*dk
	betaW := 0
	if delta {
		betaW = c.In[5].Shape[2]
	}
	var gy, gS []float64
	var err error
	if c.GradOut[0] != nil {
		if gy, err = tensor.AsFloat64(c.GradOut[0]); err != nil {
			return nil, err
		}
	}
	if len(c.GradOut) > 1 && c.GradOut[1] != nil {
		if gS, err = tensor.AsFloat64(c.GradOut[1]); err != nil {
			return nil, err
		}
	}
	eg := func(b, t, h, i int) float64 {
		switch {
		case !gated:
			return 1
		case perKey:
			return math.Exp(decay[((b*T+t)*Hk+h)*dk+i])
		}
		return math.Exp(decay[(b*T+t)*Hk+h])
	}
	bidx := func(b, t, h int) int { return (b*T+t)*betaW + min(h, betaW-1) }
	sz := dk * dv
	g := make([][]float64, 6)
	for i := range g {
		if ins[i] != nil {
			g[i] = make([]float64, len(ins[i]))
		}
	}
	gq, gk, gv, gpast, gdecay, gbeta := g[0], g[1], g[2], g[3], g[4], g[5]
	if gpast == nil {
		gpast = make([]float64, B*Hk*sz) // the zero initial state's, dropped
	}
	states := make([]float64, (T+1)*sz) // S before token 0, then after each
	dS, dD, D, u, du := make([]float64, sz), make([]float64, sz), make([]float64, sz), make([]float64, dv), make([]float64, dv)
	for b := 0; b < B; b++ {
		for h := 0; h < Hk; h++ {
			// forward: the states of this head
			if past != nil {
				copy(states[:sz], past[(b*Hk+h)*sz:][:sz])
			} else {
				for i := range states[:sz] {
					states[i] = 0
				}
			}
			for t := 0; t < T; t++ {
				prev, next := states[t*sz:][:sz], states[(t+1)*sz:][:sz]
				kt := kv[((b*T+t)*Hk+h)*dk:][:dk]
				vt := vv[((b*T+t)*Hk+h)*dv:][:dv]
				for i := 0; i < dk; i++ {
					e := eg(b, t, h, i)
					for j := 0; j < dv; j++ {
						next[i*dv+j] = prev[i*dv+j] * e
					}
				}
				if delta {
					bt := beta[bidx(b, t, h)]
					for j := 0; j < dv; j++ {
						s := 0.0
						for i := 0; i < dk; i++ {
							s += next[i*dv+j] * kt[i]
						}
						u[j] = vt[j] - s
					}
					for i := 0; i < dk; i++ {
						for j := 0; j < dv; j++ {
							next[i*dv+j] += bt * kt[i] * u[j]
						}
					}
				} else {
					for i := 0; i < dk; i++ {
						for j := 0; j < dv; j++ {
							next[i*dv+j] += kt[i] * vt[j]
						}
					}
				}
			}
			// backward
			for i := range dS {
				dS[i] = 0
				if gS != nil {
					dS[i] = gS[(b*Hk+h)*sz+i]
				}
			}
			for t := T - 1; t >= 0; t-- {
				prev, cur := states[t*sz:][:sz], states[(t+1)*sz:][:sz]
				if gy != nil {
					for r := 0; r < reps; r++ {
						hq := h*reps + r
						qt := qv[((b*T+t)*Hq+hq)*dk:][:dk]
						gqt := gq[((b*T+t)*Hq+hq)*dk:][:dk]
						go_ := gy[((b*T+t)*Hq+hq)*dv:][:dv]
						for i := 0; i < dk; i++ {
							s := 0.0
							for j := 0; j < dv; j++ {
								s += cur[i*dv+j] * go_[j]
								dS[i*dv+j] += scale * qt[i] * go_[j]
							}
							gqt[i] += scale * s
						}
					}
				}
				kt := kv[((b*T+t)*Hk+h)*dk:][:dk]
				vt := vv[((b*T+t)*Hk+h)*dv:][:dv]
				gkt := gk[((b*T+t)*Hk+h)*dk:][:dk]
				gvt := gv[((b*T+t)*Hk+h)*dv:][:dv]
				for i := 0; i < dk; i++ {
					e := eg(b, t, h, i)
					for j := 0; j < dv; j++ {
						D[i*dv+j] = prev[i*dv+j] * e
					}
				}
				copy(dD, dS)
				if delta {
					bt := beta[bidx(b, t, h)]
					for j := 0; j < dv; j++ {
						s, sd := 0.0, 0.0
						for i := 0; i < dk; i++ {
							s += D[i*dv+j] * kt[i]
							sd += dS[i*dv+j] * kt[i]
						}
						u[j] = vt[j] - s
						du[j] = bt * sd
						gvt[j] += du[j]
					}
					gb := 0.0
					for i := 0; i < dk; i++ {
						sk, su := 0.0, 0.0
						for j := 0; j < dv; j++ {
							dD[i*dv+j] -= kt[i] * du[j]
							sk += D[i*dv+j] * du[j]
							su += dS[i*dv+j] * u[j]
						}
						gkt[i] += bt*su - sk
						gb += kt[i] * su
					}
					gbeta[bidx(b, t, h)] += gb
				} else {
					for i := 0; i < dk; i++ {
						for j := 0; j < dv; j++ {
							gkt[i] += dS[i*dv+j] * vt[j]
							gvt[j] += dS[i*dv+j] * kt[i]
						}
					}
				}
				// through the decay to the state before
				for i := 0; i < dk; i++ {
					e := eg(b, t, h, i)
					ge := 0.0
					for j := 0; j < dv; j++ {
						ge += dD[i*dv+j] * prev[i*dv+j]
						dS[i*dv+j] = dD[i*dv+j] * e
					}
					if gated {
						if perKey {
							gdecay[((b*T+t)*Hk+h)*dk+i] += ge * e
						} else {
							gdecay[(b*T+t)*Hk+h] += ge * e
						}
					}
				}
			}
			copy(gpast[(b*Hk+h)*sz:][:sz], dS)
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	for i := range c.In {
		if c.In[i] != nil && c.Need[i] && g[i] != nil {
			if out[i], err = asDType(c.In[i], c.In[i].Shape, g[i]); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
