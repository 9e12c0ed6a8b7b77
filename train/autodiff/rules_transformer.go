package autodiff

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops/nn"
	"github.com/mtlrun/mtlrun/tensor"
)

// Backward rules of the transformer-era ops: Attention, RMSNormalization
// and RotaryEmbedding (opset 23+), SwiGLU (opset 28), and CastLike (mixed
// precision exports). Computed in float64 whatever the tensors' float
// dtype, as their kernels are.

func init() {
	register("Attention", gradAttention, nil)
	register("RMSNormalization", gradRMSNorm, nil)
	register("RotaryEmbedding", gradRotary, nil)
	register("SwiGLU", gradSwiGLU, nil)
	register("CastLike", gradCastLike, nil)
}

// floats reads a gradient or input as float64 (nil stays nil).
func floats(t *tensor.Tensor) ([]float64, error) {
	if t == nil {
		return nil, nil
	}
	return tensor.AsFloat64(t)
}

// asDType makes a tensor of x's dtype and the given shape from v.
func asDType(x *tensor.Tensor, shape []int, v []float64) (*tensor.Tensor, error) {
	return elems.FromFloats(x.DType, append([]int{}, shape...), v)
}

// gradRMSNorm: with r = (mean(x²) + ε)^-½ over a row of m elements and
// y = x·r·s, dx = r·s·dy − x·r³/m·Σ(dy·s·x) and ds = Σ_rows dy·x·r.
func gradRMSNorm(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil {
		return out, nil
	}
	x, scale := c.In[0], c.In[1]
	axis, err := axisOf(c.Attrs.Int("axis", -1), x.Rank())
	if err != nil {
		return nil, err
	}
	eps := float64(c.Attrs.Float("epsilon", 1e-5))
	norm := x.Shape[axis:]
	m := prod(norm)
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, err
	}
	sv, err := tensor.AsFloat64(scale)
	if err != nil {
		return nil, err
	}
	s := bcast(sv, scale.Shape, norm)
	gy, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	gx, gs := make([]float64, len(xv)), make([]float64, m)
	for o := 0; o*m < len(xv); o++ {
		row, g := xv[o*m:(o+1)*m], gy[o*m:(o+1)*m]
		sq, dot := 0.0, 0.0
		for j, f := range row {
			sq += f * f
			dot += g[j] * s[j] * f
		}
		r := 1 / math.Sqrt(sq/float64(m)+eps)
		k := r * r * r / float64(m) * dot
		for j, f := range row {
			gx[o*m+j] = r*s[j]*g[j] - f*k
			gs[j] += g[j] * f * r
		}
	}
	if c.Need[0] {
		if out[0], err = asDType(x, x.Shape, gx); err != nil {
			return nil, err
		}
	}
	if c.Need[1] {
		if out[1], err = asDType(scale, scale.Shape, sumTo(gs, norm, scale.Shape)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// gradAttention differentiates softmax(softcap(scale·QKᵀ) + bias)·V per
// query row: dV += p·dY, dP = dY·Vᵀ, dZ = p⊙(dP − Σp·dP), through the
// softcap's tanh to dQ = scale·dRaw·K and dK = scale·dRawᵀ·Q. Key and value
// heads shared by several query heads (GQA, MQA) sum their gradients; the
// past KV cache gets the first Past positions, and the present_key/value
// outputs' gradients add in. An additive float mask gets dZ summed over
// the axes it broadcasts along. The qk_matmul_output output's gradient
// enters at the point its mode reads (0, 1: the capped scores; 2: the
// masked scores; 3: the probabilities). softmax_precision rounding is
// treated as the identity.
func gradAttention(c *Ctx) ([]*tensor.Tensor, error) {
	r, err := nn.PlanAttention(c.Kernel, c.In)
	if err != nil {
		return nil, err
	}
	B, Hq, Sq, D, Hkv, T, Dv, P := r.B, r.Hq, r.Sq, r.D, r.Hkv, r.T, r.Dv, r.Past
	reps := Hq / Hkv
	gOut := make([][]float64, 4)
	for i := range gOut {
		if i < len(c.GradOut) {
			if gOut[i], err = floats(c.GradOut[i]); err != nil {
				return nil, err
			}
		}
	}
	gY, gQK := gOut[0], gOut[3]
	// the float mask, if any, and its broadcast strides over [B, Hq, Sq, T]
	var mask *tensor.Tensor
	var mst [4]int
	var mlen int
	if len(c.In) > 3 && c.In[3] != nil && c.In[3].DType.IsFloat() && c.Need[3] {
		mask = c.In[3]
		ms := make([]int, 4)
		for i := range ms {
			ms[i] = 1
		}
		copy(ms[4-mask.Rank():], mask.Shape)
		st := tensor.Strides(ms)
		for d := 0; d < 4; d++ {
			if ms[d] == 1 {
				st[d] = 0
			}
			mst[d] = st[d]
		}
		mlen = ms[3]
	}
	var gMask []float64
	if mask != nil {
		gMask = make([]float64, mask.Len())
	}
	gQ := make([]float64, len(r.Q))
	gK := make([]float64, len(r.K))
	gV := make([]float64, len(r.V))
	raw, z, dp := make([]float64, T), make([]float64, T), make([]float64, T)
	for b := 0; b < B; b++ {
		for h := 0; h < Hq; h++ {
			hk := h / reps
			for i := 0; i < Sq; i++ {
				row := (b*Hq+h)*Sq + i
				qrow := r.Q[row*D:][:D]
				brow := r.Bias[row*T:][:T]
				allMasked := true
				for j := 0; j < T; j++ {
					krow := r.K[((b*Hkv+hk)*T+j)*D:][:D]
					s := 0.0
					for e, x := range qrow {
						s += x * krow[e]
					}
					raw[j] = s * r.Scale
					cj := raw[j]
					if r.Softcap > 0 {
						cj = r.Softcap * math.Tanh(cj/r.Softcap)
					}
					z[j] = cj + brow[j]
					if !math.IsInf(brow[j], -1) {
						allMasked = false
					}
				}
				// probabilities into z
				if allMasked {
					for j := range z {
						z[j] = 0
					}
				} else {
					mx := math.Inf(-1)
					for _, v := range z {
						mx = math.Max(mx, v)
					}
					sum := 0.0
					for j, v := range z {
						z[j] = math.Exp(v - mx)
						sum += z[j]
					}
					for j := range z {
						z[j] /= sum
					}
				}
				p := z
				for j := range dp {
					dp[j] = 0
				}
				if gY != nil {
					var gyrow []float64
					if r.ThreeD {
						gyrow = gY[((b*Sq+i)*Hq+h)*Dv:][:Dv]
					} else {
						gyrow = gY[row*Dv:][:Dv]
					}
					for j := 0; j < T; j++ {
						vrow := r.V[((b*Hkv+hk)*T+j)*Dv:][:Dv]
						gvrow := gV[((b*Hkv+hk)*T+j)*Dv:][:Dv]
						s := 0.0
						for e, g := range gyrow {
							s += g * vrow[e]
							gvrow[e] += p[j] * g
						}
						dp[j] = s
					}
				}
				var gqk []float64
				if gQK != nil {
					gqk = gQK[row*T:][:T]
				}
				if r.Mode == 3 && gqk != nil {
					for j := range dp {
						dp[j] += gqk[j]
					}
				}
				dot := 0.0
				for j := range dp {
					dot += p[j] * dp[j]
				}
				for j := 0; j < T; j++ {
					dz := p[j] * (dp[j] - dot)
					if r.Mode == 2 && gqk != nil {
						dz += gqk[j]
					}
					if gMask != nil && j < mlen {
						gMask[b*mst[0]+h*mst[1]+i*mst[2]+j*mst[3]] += dz
					}
					dc := dz
					if r.Mode <= 1 && gqk != nil {
						dc += gqk[j]
					}
					if r.Softcap > 0 {
						t := math.Tanh(raw[j] / r.Softcap)
						dc *= 1 - t*t
					}
					if dc == 0 {
						continue
					}
					dc *= r.Scale
					krow := r.K[((b*Hkv+hk)*T+j)*D:][:D]
					gkrow := gK[((b*Hkv+hk)*T+j)*D:][:D]
					gqrow := gQ[row*D:][:D]
					for e := range qrow {
						gqrow[e] += dc * krow[e]
						gkrow[e] += dc * qrow[e]
					}
				}
			}
		}
	}
	for i, g := range [][]float64{gK, gV} {
		if pres := gOut[1+i]; pres != nil {
			if len(pres) != len(g) {
				return nil, fmt.Errorf("present output %d gradient has %d elements, want %d", 1+i, len(pres), len(g))
			}
			for e, v := range pres {
				g[e] += v
			}
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	put := func(i int, shape []int, v []float64) error {
		if i >= len(c.In) || c.In[i] == nil || !c.Need[i] {
			return nil
		}
		t, err := asDType(c.In[i], shape, v)
		out[i] = t
		return err
	}
	// Q back to its layout
	if r.ThreeD {
		if err := put(0, c.In[0].Shape, fromHeads(gQ, B, Hq, Sq, D)); err != nil {
			return nil, err
		}
	} else if err := put(0, c.In[0].Shape, gQ); err != nil {
		return nil, err
	}
	// K, V: the current part and the past
	for i, g := range [][]float64{gK, gV} {
		d := D
		if i == 1 {
			d = Dv
		}
		cur, past := splitSeq(g, B*Hkv, P, T-P, d)
		if r.ThreeD {
			cur = fromHeads(cur, B, Hkv, T-P, d)
		}
		if err := put(1+i, c.In[1+i].Shape, cur); err != nil {
			return nil, err
		}
		if P > 0 {
			if err := put(4+i, c.In[4+i].Shape, past); err != nil {
				return nil, err
			}
		}
	}
	if gMask != nil {
		if err := put(3, mask.Shape, gMask); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fromHeads turns [B, H, S, D] into [B, S, H*D].
func fromHeads(v []float64, B, H, S, D int) []float64 {
	out := make([]float64, len(v))
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			for s := 0; s < S; s++ {
				copy(out[((b*S+s)*H+h)*D:][:D], v[((b*H+h)*S+s)*D:][:D])
			}
		}
	}
	return out
}

// splitSeq splits [BH, P+S, D] into the current [BH, S, D] and the past
// [BH, P, D].
func splitSeq(v []float64, bh, p, s, d int) (cur, past []float64) {
	cur, past = make([]float64, bh*s*d), make([]float64, bh*p*d)
	for i := 0; i < bh; i++ {
		copy(past[i*p*d:(i+1)*p*d], v[i*(p+s)*d:])
		copy(cur[i*s*d:(i+1)*s*d], v[(i*(p+s)+p)*d:])
	}
	return cur, past
}

// gradRotary: RotaryEmbedding rotates pairs of features by fixed angles, a
// linear map whose transpose is the rotation by the opposite angles; the
// node's own kernel applies it to the output gradient with the sin cache
// negated. The caches are constants of training (flow.go's gradInputs).
func gradRotary(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil || !c.Need[0] {
		return out, nil
	}
	sv, err := tensor.AsFloat64(c.In[2])
	if err != nil {
		return nil, err
	}
	for i := range sv {
		sv[i] = -sv[i]
	}
	neg, err := asDType(c.In[2], c.In[2].Shape, sv)
	if err != nil {
		return nil, err
	}
	in := append([]*tensor.Tensor{}, c.In...)
	in[0], in[2] = c.GradOut[0], neg
	if c.GradOut[0].DType != c.In[0].DType {
		return nil, errDType
	}
	g, err := c.Kernel.Run(in)
	if err != nil {
		return nil, fmt.Errorf("rotating the gradient back: %w", err)
	}
	out[0] = g[0]
	return out, nil
}

// gradSwiGLU: y = a·σ(αa)·b, so da = g·b·(σ + αa·σ·(1−σ)) and
// db = g·a·σ(αa).
func gradSwiGLU(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil {
		return out, nil
	}
	alpha := float64(c.Attrs.Float("alpha", 1))
	a, err := tensor.AsFloat64(c.In[0])
	if err != nil {
		return nil, err
	}
	b, err := tensor.AsFloat64(c.In[1])
	if err != nil {
		return nil, err
	}
	g, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	ga, gb := make([]float64, len(a)), make([]float64, len(b))
	for i, x := range a {
		s := 1 / (1 + math.Exp(-alpha*x))
		ga[i] = g[i] * b[i] * (s + alpha*x*s*(1-s))
		gb[i] = g[i] * x * s
	}
	for i, v := range [][]float64{ga, gb} {
		if c.Need[i] {
			if out[i], err = asDType(c.In[i], c.In[i].Shape, v); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// gradCastLike: the gradient is cast back to the input's float type; the
// second input only names the target type.
func gradCastLike(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil || !c.In[0].DType.IsFloat() || !c.Out[0].DType.IsFloat() {
		return out, nil
	}
	g, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	out[0], err = asDType(c.In[0], c.In[0].Shape, g)
	return out, err
}
