package nn

import (
	"math"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// The opset-27 state-carrying ops of linear-attention and state-space
// models: CausalConvWithState (depthwise causal 1-D convolution with a carry
// state) and LinearAttention (the linear, gated, delta and gated-delta
// recurrences, run token by token). Computed in float64.

func init() {
	// gradients: train/autodiff/rules_recurrent_attention.go
	ops.Define(ops.Desc{Type: "CausalConvWithState", Since: 27, Grad: ops.GradRule{}, Kernel: newCausalConv})
	ops.Define(ops.Desc{Type: "LinearAttention", Since: 27, Grad: ops.GradRule{}, Kernel: newLinearAttention})
}

func newCausalConv(c *ops.Config) (ops.Op, error) {
	act := c.Attrs.String("activation", "none")
	switch act {
	case "none", "silu", "swish":
	default:
		return nil, ops.BadAttr("activation", "unknown activation %q (want none, silu or swish)", act)
	}
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		x, w := in[0], in[1]
		if x.Rank() != 3 || w.Rank() != 3 || w.Shape[0] != x.Shape[1] || w.Shape[1] != 1 || !x.DType.IsFloat() {
			return nil, ops.BadInput(1, "CausalConvWithState needs input [B, C, L] and weight [C, 1, k], got %v and %v", x, w)
		}
		B, C, L, K := x.Shape[0], x.Shape[1], x.Shape[2], w.Shape[2]
		xv, _ := tensor.AsFloat64(x)
		wv, _ := tensor.AsFloat64(w)
		var bias, past []float64
		if len(in) > 2 && in[2] != nil {
			if in[2].Len() != C {
				return nil, ops.BadInput(2, "CausalConvWithState bias must be [C=%d], got %v", C, in[2])
			}
			bias, _ = tensor.AsFloat64(in[2])
		}
		if len(in) > 3 && in[3] != nil {
			if !tensor.SameShape(in[3].Shape, []int{B, C, K - 1}) {
				return nil, ops.BadInput(3, "CausalConvWithState past_state must be [%d, %d, %d], got %v", B, C, K-1, in[3])
			}
			past, _ = tensor.AsFloat64(in[3])
		}
		P := K - 1 + L
		out := make([]float64, B*C*L)
		state := make([]float64, B*C*(K-1))
		padded := make([]float64, P)
		for b := 0; b < B; b++ {
			for ch := 0; ch < C; ch++ {
				for i := range padded[:K-1] {
					padded[i] = 0
					if past != nil {
						padded[i] = past[(b*C+ch)*(K-1)+i]
					}
				}
				copy(padded[K-1:], xv[(b*C+ch)*L:][:L])
				for t := 0; t < L; t++ {
					s := 0.0
					if bias != nil {
						s = bias[ch]
					}
					for j := 0; j < K; j++ {
						s += wv[ch*K+j] * padded[t+j]
					}
					if act != "none" {
						s /= 1 + math.Exp(-s)
					}
					out[(b*C+ch)*L+t] = s
				}
				copy(state[(b*C+ch)*(K-1):][:K-1], padded[P-(K-1):])
			}
		}
		y, err := elems.FromFloats(x.DType, x.Shape, out)
		if err != nil {
			return nil, err
		}
		st, err := elems.FromFloats(x.DType, []int{B, C, K - 1}, state)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{y, st}, nil
	}), nil
}

type linearAttention struct {
	qHeads, kvHeads int
	scale           float64
	rule            string
}

func newLinearAttention(c *ops.Config) (ops.Op, error) {
	a := &linearAttention{
		qHeads: int(c.Attrs.Int("q_num_heads", 0)), kvHeads: int(c.Attrs.Int("kv_num_heads", 0)),
		scale: float64(c.Attrs.Float("scale", 0)), rule: c.Attrs.String("update_rule", "gated_delta"),
	}
	switch a.rule {
	case "linear", "gated", "delta", "gated_delta":
	default:
		return nil, ops.BadAttr("update_rule", "unknown rule %q", a.rule)
	}
	if a.qHeads <= 0 || a.kvHeads <= 0 || a.qHeads%a.kvHeads != 0 {
		return nil, ops.BadAttr("q_num_heads", "q_num_heads %d must be a positive multiple of kv_num_heads %d", a.qHeads, a.kvHeads)
	}
	return ops.OpFunc(a.run), nil
}

func (a *linearAttention) run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 3); err != nil {
		return nil, err
	}
	q, k, v := in[0], in[1], in[2]
	if q.Rank() != 3 || k.Rank() != 3 || v.Rank() != 3 || !q.DType.IsFloat() {
		return nil, ops.BadInput(0, "LinearAttention needs 3-D float query, key, value, got %v, %v, %v", q, k, v)
	}
	B, T := q.Shape[0], q.Shape[1]
	Hq, Hk := a.qHeads, a.kvHeads
	dk, dv := q.Shape[2]/Hq, v.Shape[2]/Hk
	if q.Shape[2]%Hq != 0 || k.Shape[2] != Hk*dk || v.Shape[2]%Hk != 0 || k.Shape[0] != B || v.Shape[0] != B || k.Shape[1] != T || v.Shape[1] != T {
		return nil, ops.BadInput(1, "LinearAttention shapes do not fit: %v, %v, %v with %d/%d heads", q, k, v, Hq, Hk)
	}
	opt := func(i int) *tensor.Tensor {
		if i < len(in) {
			return in[i]
		}
		return nil
	}
	qv, _ := tensor.AsFloat64(q)
	kv, _ := tensor.AsFloat64(k)
	vv, _ := tensor.AsFloat64(v)
	S := make([]float64, B*Hk*dk*dv)
	stateDT := q.DType
	if p := opt(3); p != nil {
		if !tensor.SameShape(p.Shape, []int{B, Hk, dk, dv}) {
			return nil, ops.BadInput(3, "LinearAttention past_state must be [%d, %d, %d, %d], got %v", B, Hk, dk, dv, p)
		}
		S, _ = tensor.AsFloat64(p)
		stateDT = p.DType
	}
	gated := a.rule == "gated" || a.rule == "gated_delta"
	delta := a.rule == "delta" || a.rule == "gated_delta"
	var decay, beta []float64
	perKey := false
	if gated {
		g := opt(4)
		if g == nil || g.Rank() != 3 || (g.Shape[2] != Hk && g.Shape[2] != Hk*dk) {
			return nil, ops.BadInput(4, "LinearAttention %s needs decay [B, T, %d] or [B, T, %d]", a.rule, Hk, Hk*dk)
		}
		decay, _ = tensor.AsFloat64(g)
		perKey = g.Shape[2] == Hk*dk
	}
	betaW := 0
	if delta {
		bt := opt(5)
		if bt == nil || bt.Rank() != 3 || (bt.Shape[2] != Hk && bt.Shape[2] != 1) {
			return nil, ops.BadInput(5, "LinearAttention %s needs beta [B, T, %d] or [B, T, 1]", a.rule, Hk)
		}
		beta, _ = tensor.AsFloat64(bt)
		betaW = bt.Shape[2]
	}
	scale := a.scale
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(dk))
	}
	out := make([]float64, B*T*Hq*dv)
	eg := make([]float64, dk)
	sk := make([]float64, dv)
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			for h := 0; h < Hk; h++ {
				st := S[(b*Hk+h)*dk*dv:][:dk*dv]
				kt := kv[((b*T+t)*Hk+h)*dk:][:dk]
				vt := vv[((b*T+t)*Hk+h)*dv:][:dv]
				for i := range eg {
					eg[i] = 1
					if gated {
						if perKey {
							eg[i] = math.Exp(decay[((b*T+t)*Hk+h)*dk+i])
						} else {
							eg[i] = math.Exp(decay[(b*T+t)*Hk+h])
						}
					}
				}
				for i := 0; i < dk; i++ { // decay the state
					for j := 0; j < dv; j++ {
						st[i*dv+j] *= eg[i]
					}
				}
				if delta {
					bt := beta[(b*T+t)*betaW+min(h, betaW-1)]
					for j := range sk { // S^T k with the decayed state
						sk[j] = 0
						for i := 0; i < dk; i++ {
							sk[j] += st[i*dv+j] * kt[i]
						}
					}
					for i := 0; i < dk; i++ {
						for j := 0; j < dv; j++ {
							st[i*dv+j] += bt * kt[i] * (vt[j] - sk[j])
						}
					}
				} else {
					for i := 0; i < dk; i++ {
						for j := 0; j < dv; j++ {
							st[i*dv+j] += kt[i] * vt[j]
						}
					}
				}
			}
			for h := 0; h < Hq; h++ {
				st := S[(b*Hk+h/(Hq/Hk))*dk*dv:][:dk*dv]
				qt := qv[((b*T+t)*Hq+h)*dk:][:dk]
				o := out[((b*T+t)*Hq+h)*dv:][:dv]
				for i := 0; i < dk; i++ {
					for j := 0; j < dv; j++ {
						o[j] += qt[i] * st[i*dv+j]
					}
				}
				for j := range o {
					o[j] *= scale
				}
			}
		}
	}
	y, err := elems.FromFloats(q.DType, []int{B, T, Hq * dv}, out)
	if err != nil {
		return nil, err
	}
	ps, err := elems.FromFloats(stateDT, []int{B, Hk, dk, dv}, S)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{y, ps}, nil
}
