package nn

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Attention (opsets 23 and 24): scaled dot-product attention with MHA, GQA
// and MQA head layouts, 3-D or 4-D inputs, boolean or additive masks (the
// key axis padded with -inf when short), bottom-right causal masking, an
// internal past/present KV cache or an external one described by
// nonpad_kv_seqlen, softcap and the four qk_matmul_output modes. Computed in
// float64; a query row with no attendable key gives zeros.

func init() {
	// gradient: train/autodiff/rules_transformer.go (from PlanAttention)
	ops.Define(ops.Desc{Type: "Attention", Since: 23, Grad: ops.GradRule{}, Kernel: newAttention})
}

type attentionOp struct {
	causal           bool
	qHeads, kvHeads  int
	mode             int
	scale            float64
	hasScale         bool
	softcap          float64
	softmaxPrecision tensor.DType
}

func newAttention(c *ops.Config) (ops.Op, error) {
	a := &attentionOp{
		causal:   c.Attrs.Int("is_causal", 0) != 0,
		qHeads:   int(c.Attrs.Int("q_num_heads", 0)),
		kvHeads:  int(c.Attrs.Int("kv_num_heads", 0)),
		mode:     int(c.Attrs.Int("qk_matmul_output_mode", 0)),
		scale:    float64(c.Attrs.Float("scale", 0)),
		hasScale: c.Attrs.Has("scale"),
		softcap:  float64(c.Attrs.Float("softcap", 0)),
	}
	if a.mode < 0 || a.mode > 3 {
		return nil, ops.BadAttr("qk_matmul_output_mode", "must be 0..3, got %d", a.mode)
	}
	if c.Attrs.Has("softmax_precision") {
		a.softmaxPrecision = tensor.DType(c.Attrs.Int("softmax_precision", 1))
	}
	return a, nil
}

// heads4 views a [B, S, H*D] input as [B, H, S, D] (copying), or checks a
// 4-D one.
func heads4(t *tensor.Tensor, heads int, i int) ([]float64, [4]int, error) {
	v, err := tensor.AsFloat64(t)
	if err != nil || !t.DType.IsFloat() {
		return nil, [4]int{}, ops.BadInput(i, "Attention needs float tensors, got %v", t)
	}
	switch t.Rank() {
	case 4:
		return v, [4]int{t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]}, nil
	case 3:
		if heads <= 0 || t.Shape[2]%heads != 0 {
			return nil, [4]int{}, ops.BadInput(i, "Attention: 3-D input %v needs a head count dividing its last dim (got %d)", t, heads)
		}
		b, s, d := t.Shape[0], t.Shape[1], t.Shape[2]/heads
		out := make([]float64, len(v))
		for bi := 0; bi < b; bi++ {
			for si := 0; si < s; si++ {
				for h := 0; h < heads; h++ {
					copy(out[((bi*heads+h)*s+si)*d:][:d], v[((bi*s+si)*heads+h)*d:][:d])
				}
			}
		}
		return out, [4]int{b, heads, s, d}, nil
	}
	return nil, [4]int{}, ops.BadInput(i, "Attention inputs must be 3-D or 4-D, got %v", t)
}

// concatSeq joins past [B,H,P,D] and cur [B,H,S,D] along the sequence axis.
func concatSeq(past []float64, ps [4]int, cur []float64, cs [4]int) ([]float64, [4]int) {
	b, h, d := cs[0], cs[1], cs[3]
	p, s := ps[2], cs[2]
	out := make([]float64, b*h*(p+s)*d)
	for bh := 0; bh < b*h; bh++ {
		copy(out[bh*(p+s)*d:], past[bh*p*d:(bh+1)*p*d])
		copy(out[(bh*(p+s)+p)*d:], cur[bh*s*d:(bh+1)*s*d])
	}
	return out, [4]int{b, h, p + s, d}
}

// AttentionRun is what an Attention kernel computes from, resolved from
// its inputs: Q [B,Hq,Sq,D], K [B,Hkv,T,D] and V [B,Hkv,T,Dv] in 4-D head
// layout with any past keys and values first along T, and the additive
// bias [B,Hq,Sq,T] (mask, causal and padding terms, -Inf where masked).
// Query head h reads key/value head h/(Hq/Hkv).
type AttentionRun struct {
	Q, K, V                        []float64
	B, Hq, Sq, D, Hkv, T, Dv, Past int
	Bias                           []float64
	Scale, Softcap                 float64
	Mode                           int  // qk_matmul_output_mode
	ThreeD                         bool // Q, K, V and Y are [B, S, H*D]
}

// PlanAttention resolves the inputs of the Attention kernel k (training
// differentiates a run from it).
func PlanAttention(k ops.Op, in []*tensor.Tensor) (*AttentionRun, error) {
	a, ok := k.(*attentionOp)
	if !ok {
		return nil, fmt.Errorf("nn: PlanAttention needs an Attention kernel, got %T", k)
	}
	return a.plan(in)
}

func (a *attentionOp) plan(in []*tensor.Tensor) (*AttentionRun, error) {
	if err := ops.NeedInputs(in, 3); err != nil {
		return nil, err
	}
	opt := func(i int) *tensor.Tensor {
		if i < len(in) {
			return in[i]
		}
		return nil
	}
	qT := in[0]
	if qT.Rank() != in[1].Rank() || qT.Rank() != in[2].Rank() {
		return nil, ops.BadInput(1, "Attention Q %v, K %v and V %v must have one rank", qT, in[1], in[2])
	}
	q, qs, err := heads4(qT, a.qHeads, 0)
	if err != nil {
		return nil, err
	}
	k, ks, err := heads4(in[1], a.kvHeads, 1)
	if err != nil {
		return nil, err
	}
	v, vs, err := heads4(in[2], a.kvHeads, 2)
	if err != nil {
		return nil, err
	}
	pastLen := 0
	if pk, pv := opt(4), opt(5); pk != nil || pv != nil {
		if pk == nil || pv == nil || pk.Rank() != 4 || pv.Rank() != 4 {
			return nil, ops.BadInput(4, "Attention past_key and past_value go together, 4-D")
		}
		pkv, pks, _ := heads4(pk, 0, 4)
		pvv, pvs, _ := heads4(pv, 0, 5)
		pastLen = pks[2]
		k, ks = concatSeq(pkv, pks, k, ks)
		v, vs = concatSeq(pvv, pvs, v, vs)
	}
	B, Hq, Sq, D := qs[0], qs[1], qs[2], qs[3]
	Hkv, T, Dv := ks[1], ks[2], vs[3]
	if ks[0] != B || vs[0] != B || ks[3] != D || vs[1] != Hkv || vs[2] != T || Hkv == 0 || Hq%Hkv != 0 {
		return nil, ops.BadInput(1, "Attention shapes do not fit: Q %v, K %v, V %v (after any past)", qs, ks, vs)
	}
	var nonpad []int64
	if np := opt(6); np != nil {
		if nonpad, err = tensor.AsInt64(np); err != nil || len(nonpad) != B {
			return nil, ops.BadInput(6, "Attention nonpad_kv_seqlen must be [batch=%d] integers, got %v", B, np)
		}
	}
	// the additive bias, [B, Hq, Sq, T]
	bias := make([]float64, B*Hq*Sq*T)
	if m := opt(3); m != nil {
		mv, err := tensor.AsFloat64(m)
		if err != nil || m.Rank() == 0 || m.Rank() > 4 {
			return nil, ops.BadInput(3, "Attention attn_mask %v not supported", m)
		}
		isBool := m.DType == tensor.Bool
		ms := append(make([]int, 4-m.Rank()), m.Shape...)
		for i := 0; i < 4-m.Rank(); i++ {
			ms[i] = 1
		}
		full := [4]int{B, Hq, Sq, T}
		st := tensor.Strides(ms)
		for d := 0; d < 3; d++ {
			if ms[d] != 1 && ms[d] != full[d] {
				return nil, ops.BadInput(3, "Attention attn_mask %v does not broadcast to %v", m, full)
			}
			if ms[d] == 1 {
				st[d] = 0
			}
		}
		if ms[3] > T {
			return nil, ops.BadInput(3, "Attention attn_mask %v is longer than the %d keys", m, T)
		}
		for b := 0; b < B; b++ {
			for h := 0; h < Hq; h++ {
				for i := 0; i < Sq; i++ {
					row := bias[((b*Hq+h)*Sq+i)*T:][:T]
					for j := 0; j < T; j++ {
						if j >= ms[3] {
							row[j] = math.Inf(-1)
							continue
						}
						x := mv[b*st[0]+h*st[1]+i*st[2]+j*st[3]]
						if isBool {
							if x == 0 {
								x = math.Inf(-1)
							} else {
								x = 0
							}
						}
						row[j] = x
					}
				}
			}
		}
	}
	for b := 0; b < B; b++ {
		for h := 0; h < Hq; h++ {
			for i := 0; i < Sq; i++ {
				row := bias[((b*Hq+h)*Sq+i)*T:][:T]
				for j := range row {
					if a.causal {
						off := pastLen
						if pastLen == 0 && nonpad != nil {
							off = int(nonpad[b]) - Sq
						}
						if j > i+off {
							row[j] += math.Inf(-1)
						}
					}
					if nonpad != nil && int64(j) >= nonpad[b] {
						row[j] += math.Inf(-1)
					}
				}
			}
		}
	}
	scale := 1 / math.Sqrt(float64(D))
	if a.hasScale {
		scale = a.scale
	}
	return &AttentionRun{Q: q, K: k, V: v, B: B, Hq: Hq, Sq: Sq, D: D, Hkv: Hkv, T: T, Dv: Dv, Past: pastLen,
		Bias: bias, Scale: scale, Softcap: a.softcap, Mode: a.mode, ThreeD: qT.Rank() == 3}, nil
}

// Run computes the attention outputs.
func (a *attentionOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	r, err := a.plan(in)
	if err != nil {
		return nil, err
	}
	qT := in[0]
	q, k, v, bias, scale := r.Q, r.K, r.V, r.Bias, r.Scale
	B, Hq, Sq, D, Hkv, T, Dv := r.B, r.Hq, r.Sq, r.D, r.Hkv, r.T, r.Dv
	reps := Hq / Hkv
	y := make([]float64, B*Hq*Sq*Dv)
	qk := make([]float64, B*Hq*Sq*T)
	p := make([]float64, T)
	for b := 0; b < B; b++ {
		for h := 0; h < Hq; h++ {
			hk := h / reps
			for i := 0; i < Sq; i++ {
				qrow := q[((b*Hq+h)*Sq+i)*D:][:D]
				brow := bias[((b*Hq+h)*Sq+i)*T:][:T]
				out := qk[((b*Hq+h)*Sq+i)*T:][:T]
				allMasked := true
				for j := 0; j < T; j++ {
					krow := k[((b*Hkv+hk)*T+j)*D:][:D]
					s := 0.0
					for e, x := range qrow {
						s += x * krow[e]
					}
					s *= scale
					if a.softcap > 0 {
						s = a.softcap * math.Tanh(s/a.softcap)
					}
					if a.mode <= 1 {
						out[j] = s
					}
					p[j] = s + brow[j]
					if a.mode == 2 {
						out[j] = p[j]
					}
					if !math.IsInf(brow[j], -1) {
						allMasked = false
					}
				}
				yrow := y[((b*Hq+h)*Sq+i)*Dv:][:Dv]
				if allMasked {
					for j := range p {
						p[j] = 0
					}
				} else {
					softmaxRow(p, a.softmaxPrecision)
					for j, w := range p {
						if w == 0 {
							continue
						}
						vrow := v[((b*Hkv+hk)*T+j)*Dv:][:Dv]
						for e, x := range vrow {
							yrow[e] += w * x
						}
					}
				}
				if a.mode == 3 {
					copy(out, p)
				}
			}
		}
	}
	dt := qT.DType
	var yT *tensor.Tensor
	if qT.Rank() == 3 {
		y3 := make([]float64, len(y))
		for b := 0; b < B; b++ {
			for h := 0; h < Hq; h++ {
				for i := 0; i < Sq; i++ {
					copy(y3[((b*Sq+i)*Hq+h)*Dv:][:Dv], y[((b*Hq+h)*Sq+i)*Dv:][:Dv])
				}
			}
		}
		yT, err = elems.FromFloats(dt, []int{B, Sq, Hq * Dv}, y3)
	} else {
		yT, err = elems.FromFloats(dt, []int{B, Hq, Sq, Dv}, y)
	}
	if err != nil {
		return nil, err
	}
	pk, err := elems.FromFloats(in[1].DType, []int{B, Hkv, T, D}, k)
	if err != nil {
		return nil, err
	}
	pv, err := elems.FromFloats(in[2].DType, []int{B, Hkv, T, Dv}, v)
	if err != nil {
		return nil, err
	}
	qkT, err := elems.FromFloats(dt, []int{B, Hq, Sq, T}, qk)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{yT, pk, pv, qkT}, nil
}

// softmaxRow turns scores into probabilities in place, rounding the scores
// to the softmax precision first when one is set.
func softmaxRow(p []float64, prec tensor.DType) {
	if prec == tensor.Float32 || prec == tensor.Float16 || prec == tensor.BFloat16 {
		for j, x := range p {
			p[j] = roundTo(prec, x)
		}
	}
	m := math.Inf(-1)
	for _, x := range p {
		m = math.Max(m, x)
	}
	s := 0.0
	for j, x := range p {
		p[j] = math.Exp(x - m)
		s += p[j]
	}
	for j := range p {
		p[j] /= s
	}
}

func roundTo(dt tensor.DType, x float64) float64 {
	switch dt {
	case tensor.Float16:
		return float64(tensor.Float16ToFloat32(tensor.Float32ToFloat16(float32(x))))
	case tensor.BFloat16:
		return float64(tensor.BFloat16ToFloat32(tensor.Float32ToBFloat16(float32(x))))
	}
	return float64(float32(x))
}
