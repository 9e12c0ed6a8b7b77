package autodiff

import (
	"fmt"

	"github.com/mtlrun/mtlrun/tensor"
)

// ConvTranspose backward, any number of spatial dims: the forward pass adds
// x[n, c, i]·w[c, m, k] into y[n, g·M/G+m, i·s − pad + k·d]; the rule walks
// the same (input position, kernel tap) → output position pairs and sends
// the output gradient back to x, w and the bias.

func init() {
	register("ConvTranspose", typed(gradConvTranspose[float32], gradConvTranspose[float64]), nil)
}

func gradConvTranspose[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	x, w, y := c.In[0], c.In[1], c.Out[0]
	nd := x.Rank() - 2
	if nd < 1 || w.Rank() != x.Rank() || y.Rank() != x.Rank() {
		return nil, fmt.Errorf("ConvTranspose shapes X %v, W %v, Y %v", x.Shape, w.Shape, y.Shape)
	}
	attr := func(name string, i, def int) int {
		if v := c.Attrs.Ints(name); i < len(v) {
			return int(v[i])
		}
		return def
	}
	in, k, out := x.Shape[2:], w.Shape[2:], y.Shape[2:]
	s, d, pb := make([]int, nd), make([]int, nd), make([]int, nd)
	autoPad := c.Attrs.String("auto_pad", "NOTSET")
	for i := 0; i < nd; i++ {
		s[i], d[i] = attr("strides", i, 1), attr("dilations", i, 1)
		full := s[i]*(in[i]-1) + attr("output_padding", i, 0) + (k[i]-1)*d[i] + 1
		switch total := full - out[i]; {
		case len(c.Attrs.Ints("output_shape")) > 0 || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER":
			pb[i] = total / 2
			if autoPad == "SAME_LOWER" {
				pb[i] = total - total/2
			}
		case autoPad == "NOTSET" || autoPad == "":
			pb[i] = attr("pads", i, 0)
		}
	}
	// (input offset, kernel offset, output offset) of every tap that lands
	inSize, kSize, oSize := prod(in), prod(k), prod(out)
	oStr := tensor.Strides(out)
	var taps [][3]int
	ii, ki := make([]int, nd), make([]int, nd)
	for a := 0; a < inSize; a++ {
		rem := a
		for j := nd - 1; j >= 0; j-- {
			ii[j], rem = rem%in[j], rem/in[j]
		}
		for b := 0; b < kSize; b++ {
			rem := b
			for j := nd - 1; j >= 0; j-- {
				ki[j], rem = rem%k[j], rem/k[j]
			}
			off, ok := 0, true
			for j := 0; j < nd && ok; j++ {
				p := ii[j]*s[j] - pb[j] + ki[j]*d[j]
				ok = p >= 0 && p < out[j]
				off += p * oStr[j]
			}
			if ok {
				taps = append(taps, [3]int{a, b, off})
			}
		}
	}
	N, C, M := x.Shape[0], x.Shape[1], y.Shape[1]
	group := int(c.Attrs.Int("group", 1))
	cg, mg := C/group, w.Shape[1]
	xv, wv, gy := data[T](x), data[T](w), gradOr[T](c, 0)
	gx, gw := make([]T, len(xv)), make([]T, len(wv))
	for n := 0; n < N; n++ {
		for ch := 0; ch < C; ch++ {
			gi := ch / cg
			xrow, gxrow := xv[(n*C+ch)*inSize:][:inSize], gx[(n*C+ch)*inSize:][:inSize]
			for m := 0; m < mg; m++ {
				gyrow := gy[(n*M+gi*mg+m)*oSize:][:oSize]
				wrow, gwrow := wv[(ch*mg+m)*kSize:][:kSize], gw[(ch*mg+m)*kSize:][:kSize]
				for _, t := range taps {
					g := gyrow[t[2]]
					gxrow[t[0]] += g * wrow[t[1]]
					gwrow[t[1]] += g * xrow[t[0]]
				}
			}
		}
	}
	res := make([]*tensor.Tensor, len(c.In))
	res[0], res[1] = like(x, gx), like(w, gw)
	if len(c.In) > 2 && c.In[2] != nil {
		gb := make([]T, M)
		for n := 0; n < N; n++ {
			for m := 0; m < M; m++ {
				for _, g := range gy[(n*M+m)*oSize:][:oSize] {
					gb[m] += g
				}
			}
		}
		res[2] = like(c.In[2], gb)
	}
	return res, nil
}
