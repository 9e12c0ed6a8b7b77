package autodiff

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/tensor"
)

// DFT and STFT are linear in the signal: the gradient is the adjoint
// transform of the output gradient (complex g_k → Σ_k g_k·conj(w^{kt}),
// scaled as the forward was), folded back through the zero padding or
// truncation to dft_length, the conjugate-symmetric completion of a
// one-sided inverse, and STFT's framing and window. The window and the
// lengths are constants of training (flow.go's gradInputs).

func init() {
	register("DFT", gradDFT, nil)
	register("STFT", gradSTFT, nil)
}

// dftAdjoint sets gz (N complex points, interleaved re/im) to the adjoint
// of the first len(gr) outputs of a length-N (inverse) DFT applied to gr/gi.
func dftAdjoint(gr, gi []float64, N int, inverse bool, gz []float64) {
	sign := 1.0 // the conjugate of the forward kernel's e^(−2πi·kt/N)
	if inverse {
		sign = -1
	}
	scale := 1.0
	if inverse {
		scale = 1 / float64(N)
	}
	for t := 0; t < N; t++ {
		var sr, si float64
		for k := range gr {
			a := sign * 2 * math.Pi * float64((k*t)%N) / float64(N)
			c, s := math.Cos(a), math.Sin(a)
			sr += gr[k]*c - gi[k]*s
			si += gr[k]*s + gi[k]*c
		}
		gz[2*t], gz[2*t+1] = sr*scale, si*scale
	}
}

func gradDFT(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil || !c.Need[0] {
		return out, nil
	}
	x, y := c.In[0], c.Out[0]
	r := x.Rank()
	inverse, onesided := c.Attrs.Int("inverse", 0) != 0, c.Attrs.Int("onesided", 0) != 0
	axis := c.Attrs.Int("axis", 1)
	if c.Opset >= 20 {
		axis = -2
		if len(c.In) > 2 && c.In[2] != nil && c.In[2].Len() > 0 {
			v, err := tensor.AsInt64(c.In[2])
			if err != nil || len(v) != 1 {
				return nil, fmt.Errorf("DFT axis %v", c.In[2])
			}
			axis = v[0]
		}
	}
	if axis < 0 {
		axis += int64(r)
	}
	ax := int(axis)
	if ax < 0 || ax >= r-1 {
		return nil, fmt.Errorf("DFT axis %d for input %v", axis, x.Shape)
	}
	n, m := x.Shape[ax], y.Shape[ax]
	N := n
	if onesided && inverse {
		N = 2 * (n - 1)
	}
	if len(c.In) > 1 && c.In[1] != nil && c.In[1].Len() > 0 {
		v, err := tensor.AsInt64(c.In[1])
		if err != nil || len(v) != 1 {
			return nil, fmt.Errorf("DFT dft_length %v", c.In[1])
		}
		N = int(v[0])
	}
	cw, outC := x.Shape[r-1], y.Shape[r-1]
	outer, inner := prod(x.Shape[:ax]), prod(x.Shape[ax+1:r-1])
	gy, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	gx := make([]float64, x.Len())
	gr, gi, gz := make([]float64, m), make([]float64, m), make([]float64, 2*N)
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			for k := 0; k < m; k++ {
				p := ((o*m+k)*inner + i) * outC
				gr[k], gi[k] = gy[p], 0
				if outC == 2 {
					gi[k] = gy[p+1]
				}
			}
			dftAdjoint(gr, gi, N, inverse, gz)
			if onesided && inverse {
				// z_k = conj(z_{N−k}) for k ≥ n: fold those back
				for k := N - 1; k >= n; k-- {
					if j := N - k; j >= 0 && j < n {
						gz[2*j] += gz[2*k]
						gz[2*j+1] -= gz[2*k+1]
					}
				}
			}
			for t := 0; t < min(n, N); t++ {
				p := ((o*n+t)*inner + i) * cw
				gx[p] = gz[2*t]
				if cw == 2 {
					gx[p+1] = gz[2*t+1]
				}
			}
		}
	}
	out[0], err = asDType(x, x.Shape, gx)
	return out, err
}

func gradSTFT(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil || !c.Need[0] {
		return out, nil
	}
	x, y := c.In[0], c.Out[0]
	sv, err := tensor.AsInt64(c.In[1])
	if err != nil || len(sv) != 1 {
		return nil, fmt.Errorf("STFT frame_step %v", c.In[1])
	}
	step := int(sv[0])
	var win []float64
	if len(c.In) > 2 && c.In[2] != nil {
		if win, err = tensor.AsFloat64(c.In[2]); err != nil {
			return nil, err
		}
	}
	B, L, cw := x.Shape[0], x.Shape[1], x.Shape[2]
	frames, bins := y.Shape[1], y.Shape[2]
	F := len(win)
	if len(c.In) > 3 && c.In[3] != nil && c.In[3].Len() > 0 {
		v, err := tensor.AsInt64(c.In[3])
		if err != nil || len(v) != 1 {
			return nil, fmt.Errorf("STFT frame_length %v", c.In[3])
		}
		F = int(v[0])
	}
	gy, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	gx := make([]float64, x.Len())
	gr, gi, gz := make([]float64, bins), make([]float64, bins), make([]float64, 2*F)
	for b := 0; b < B; b++ {
		for f := 0; f < frames; f++ {
			for k := 0; k < bins; k++ {
				p := ((b*frames+f)*bins + k) * 2
				gr[k], gi[k] = gy[p], gy[p+1]
			}
			dftAdjoint(gr, gi, F, false, gz)
			for t := 0; t < F; t++ {
				w := 1.0
				if win != nil {
					w = win[t]
				}
				p := (b*L + f*step + t) * cw
				gx[p] += gz[2*t] * w
				if cw == 2 {
					gx[p+1] += gz[2*t+1] * w
				}
			}
		}
	}
	out[0], err = asDType(x, x.Shape, gx)
	return out, err
}
