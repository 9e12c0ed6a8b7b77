package autodiff

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/tensor"
)

// Backward rules of the normalisations beyond Batch/Layer/Instance
// (rules_nn.go): GroupNormalization, MeanVarianceNormalization, LRN and
// LpNormalization. Computed in float64 like their kernels.

func init() {
	register("GroupNormalization", gradGroupNorm, nil)
	register("MeanVarianceNormalization", gradMVN, nil)
	register("LRN", gradLRN, nil)
	register("LpNormalization", gradLpNorm, nil)
}

// normBack is the gradient of x̂ = (x − mean)·inv over one group of n
// elements, given gh = ∂L/∂x̂: inv/n·(n·gh − Σgh − x̂·Σ(gh·x̂)).
func normBack(gx, gh, xhat []float64, inv float64) {
	n := float64(len(gh))
	var sg, sgx float64
	for j, g := range gh {
		sg += g
		sgx += g * xhat[j]
	}
	for j, g := range gh {
		gx[j] = inv / n * (n*g - sg - xhat[j]*sgx)
	}
}

// gradGroupNorm: each (n, group) segment is normalised, then scaled and
// shifted per group (opset 18) or per channel (opset 21).
func gradGroupNorm(c *Ctx) ([]*tensor.Tensor, error) {
	if c.GradOut[0] == nil {
		return make([]*tensor.Tensor, len(c.In)), nil
	}
	x := c.In[0]
	groups := int(c.Attrs.Int("num_groups", 1))
	eps := float64(c.Attrs.Float("epsilon", 1e-5))
	perChannel := c.Opset >= 21
	if x.Rank() < 2 || groups < 1 || x.Shape[1]%groups != 0 {
		return nil, fmt.Errorf("GroupNormalization input %v with %d groups", x.Shape, groups)
	}
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, err
	}
	sc, err := tensor.AsFloat64(c.In[1])
	if err != nil {
		return nil, err
	}
	gy, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	N, C, sp := x.Shape[0], x.Shape[1], prod(x.Shape[2:])
	cg := C / groups
	m := cg * sp
	gx, gs, gb := make([]float64, len(xv)), make([]float64, len(sc)), make([]float64, len(sc))
	xhat, gh := make([]float64, m), make([]float64, m)
	for n := 0; n < N; n++ {
		for g := 0; g < groups; g++ {
			off := (n*C + g*cg) * sp
			mean, inv := normStats(xv[off:off+m], eps)
			for i := 0; i < m; i++ {
				p := g
				if perChannel {
					p = g*cg + i/sp
				}
				xhat[i] = (xv[off+i] - mean) * inv
				gh[i] = gy[off+i] * sc[p]
				gs[p] += gy[off+i] * xhat[i]
				gb[p] += gy[off+i]
			}
			normBack(gx[off:off+m], gh, xhat, inv)
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	for i, v := range [][]float64{gx, gs, gb} {
		if c.Need[i] {
			if out[i], err = asDType(c.In[i], c.In[i].Shape, v); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// gradMVN differentiates y = (x − μ)/(σ + 1e-9) with σ the population
// deviation over the reduced axes: with d = σ + 1e-9 and the group's n
// elements, dx = g/d − Σg/(n·d) − Σ(g·(x−μ))·(x−μ)/(n·σ·d²) (no last term
// where σ = 0).
func gradMVN(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil {
		return out, nil
	}
	x := c.In[0]
	axes := c.Attrs.Ints("axes")
	if !c.Attrs.Has("axes") {
		axes = []int64{0, 2, 3}
	}
	kept := append([]int{}, x.Shape...)
	for _, a := range axes {
		ax, err := axisOf(a, x.Rank())
		if err != nil {
			return nil, err
		}
		kept[ax] = 1
	}
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, err
	}
	gy, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	nk := prod(kept)
	idx := tensor.BroadcastIndex(kept, x.Shape)
	mu, s2, cnt := make([]float64, nk), make([]float64, nk), make([]float64, nk)
	for i, j := range idx {
		mu[j] += xv[i]
		s2[j] += xv[i] * xv[i]
		cnt[j]++
	}
	sd := make([]float64, nk)
	for j := range mu {
		if cnt[j] > 0 {
			mu[j] /= cnt[j]
			sd[j] = math.Sqrt(math.Max(0, s2[j]/cnt[j]-mu[j]*mu[j]))
		}
	}
	sg, sgx := make([]float64, nk), make([]float64, nk)
	for i, j := range idx {
		sg[j] += gy[i]
		sgx[j] += gy[i] * (xv[i] - mu[j])
	}
	gx := make([]float64, len(xv))
	for i, j := range idx {
		d := sd[j] + 1e-9
		gx[i] = gy[i]/d - sg[j]/(cnt[j]*d)
		if sd[j] > 0 {
			gx[i] -= sgx[j] * (xv[i] - mu[j]) / (cnt[j] * sd[j] * d * d)
		}
	}
	if out[0], err = asDType(x, x.Shape, gx); err != nil {
		return nil, err
	}
	return out, nil
}

// gradLRN: y_c = x_c·D_c^−β with D_c = bias + α/size·Σ_{c' near c} x_c'²,
// so dx_k = g_k·D_k^−β − 2αβ/size·x_k·Σ_{c: k near c} g_c·x_c·D_c^(−β−1).
func gradLRN(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil {
		return out, nil
	}
	x := c.In[0]
	alpha, beta := float64(c.Attrs.Float("alpha", 1e-4)), float64(c.Attrs.Float("beta", 0.75))
	bias, size := float64(c.Attrs.Float("bias", 1)), int(c.Attrs.Int("size", 1))
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, err
	}
	gy, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	N, C, sp := x.Shape[0], x.Shape[1], prod(x.Shape[2:])
	lo, hi := (size-1)/2, (size-1)-(size-1)/2
	k := alpha / float64(size)
	gx := make([]float64, len(xv))
	t := make([]float64, C) // g_c·x_c·D_c^(−β−1)
	for n := 0; n < N; n++ {
		for i := 0; i < sp; i++ {
			at := func(ch int) int { return (n*C+ch)*sp + i }
			for ch := 0; ch < C; ch++ {
				s := 0.0
				for cc := max(0, ch-lo); cc <= min(C-1, ch+hi); cc++ {
					s += xv[at(cc)] * xv[at(cc)]
				}
				d := bias + k*s
				gx[at(ch)] = gy[at(ch)] * math.Pow(d, -beta)
				t[ch] = gy[at(ch)] * xv[at(ch)] * math.Pow(d, -beta-1)
			}
			// x_k is in the window of channel ch when ch−lo ≤ k ≤ ch+hi
			for kk := 0; kk < C; kk++ {
				s := 0.0
				for ch := max(0, kk-hi); ch <= min(C-1, kk+lo); ch++ {
					s += t[ch]
				}
				gx[at(kk)] -= 2 * k * beta * xv[at(kk)] * s
			}
		}
	}
	if out[0], err = asDType(x, x.Shape, gx); err != nil {
		return nil, err
	}
	return out, nil
}

// gradLpNorm: y = x/‖x‖ along the axis. p = 2: dx = (g − y·Σ(g·y))/‖x‖;
// p = 1: dx = g/s − sign(x)·Σ(g·x)/s² with s = Σ|x|. A zero vector (which
// the kernel maps to zero) passes g/… nothing back.
func gradLpNorm(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil {
		return out, nil
	}
	x := c.In[0]
	axis, err := axisOf(c.Attrs.Int("axis", -1), x.Rank())
	if err != nil {
		return nil, err
	}
	p := c.Attrs.Int("p", 2)
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, err
	}
	gy, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	outer, n, inner := prod(x.Shape[:axis]), x.Shape[axis], prod(x.Shape[axis+1:])
	gx := make([]float64, len(xv))
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			at := func(j int) int { return (o*n+j)*inner + i }
			s, gdx := 0.0, 0.0
			for j := 0; j < n; j++ {
				v := xv[at(j)]
				if p == 1 {
					s += math.Abs(v)
				} else {
					s += v * v
				}
				gdx += gy[at(j)] * v
			}
			if s == 0 {
				continue
			}
			if p == 2 {
				s = math.Sqrt(s)
			}
			for j := 0; j < n; j++ {
				v := xv[at(j)]
				if p == 1 {
					sg := 0.0
					if v > 0 {
						sg = 1
					} else if v < 0 {
						sg = -1
					}
					gx[at(j)] = gy[at(j)]/s - sg*gdx/(s*s)
				} else {
					gx[at(j)] = gy[at(j)]/s - v*gdx/(s*s*s)
				}
			}
		}
	}
	if out[0], err = asDType(x, x.Shape, gx); err != nil {
		return nil, err
	}
	return out, nil
}
