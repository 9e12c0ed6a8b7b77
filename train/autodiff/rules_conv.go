package autodiff

import (
	"fmt"

	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	register("Conv", typed(gradConv[float32], gradConv[float64]), nil)
}

// convGeom is a 1-D or 2-D convolution's geometry, 1-D seen as height 1.
type convGeom struct {
	n, c, m, group         int
	ih, iw, kh, kw, oh, ow int
	sh, sw, dh, dw, ph, pw int
}

func convGeometry(c *Ctx) (*convGeom, error) {
	x, w, y := c.In[0], c.In[1], c.Out[0]
	sp := x.Rank() - 2
	if sp != 1 && sp != 2 {
		return nil, fmt.Errorf("training supports 1-D and 2-D convolutions, got %d-D", sp)
	}
	ints := func(name string, def int64) []int {
		v := c.Attrs.Ints(name)
		out := make([]int, sp)
		for i := range out {
			out[i] = int(def)
			if i < len(v) {
				out[i] = int(v[i])
			}
		}
		return out
	}
	strides, dil := ints("strides", 1), ints("dilations", 1)
	g := &convGeom{n: x.Shape[0], c: x.Shape[1], m: w.Shape[0], group: int(c.Attrs.Int("group", 1))}
	pads := make([]int, sp)
	kernel := w.Shape[2:]
	in := x.Shape[2:]
	out := y.Shape[2:]
	switch ap := c.Attrs.String("auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
		p := c.Attrs.Ints("pads")
		for i := range pads {
			if i < len(p) {
				pads[i] = int(p[i])
			}
		}
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
		for i := range pads {
			total := max(0, (out[i]-1)*strides[i]+(kernel[i]-1)*dil[i]+1-in[i])
			pads[i] = total / 2
			if ap == "SAME_LOWER" {
				pads[i] = total - total/2
			}
		}
	default:
		return nil, fmt.Errorf("unknown auto_pad %q", ap)
	}
	if sp == 1 {
		g.ih, g.iw, g.kh, g.kw, g.oh, g.ow = 1, in[0], 1, kernel[0], 1, out[0]
		g.sh, g.sw, g.dh, g.dw, g.ph, g.pw = 1, strides[0], 1, dil[0], 0, pads[0]
	} else {
		g.ih, g.iw, g.kh, g.kw, g.oh, g.ow = in[0], in[1], kernel[0], kernel[1], out[0], out[1]
		g.sh, g.sw, g.dh, g.dw, g.ph, g.pw = strides[0], strides[1], dil[0], dil[1], pads[0], pads[1]
	}
	return g, nil
}

func gradConv[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	g, err := convGeometry(c)
	if err != nil {
		return nil, err
	}
	x, w := data[T](c.In[0]), data[T](c.In[1])
	gy := gradOr[T](c, 0)
	gx, gw := make([]T, len(x)), make([]T, len(w))
	var gb []T
	if len(c.In) > 2 && c.In[2] != nil {
		gb = make([]T, g.m)
	}
	cg, mg := g.c/g.group, g.m/g.group
	for n := 0; n < g.n; n++ {
		for m := 0; m < g.m; m++ {
			grp := m / mg
			for oy := 0; oy < g.oh; oy++ {
				for ox := 0; ox < g.ow; ox++ {
					dy := gy[((n*g.m+m)*g.oh+oy)*g.ow+ox]
					if dy == 0 {
						continue
					}
					if gb != nil {
						gb[m] += dy
					}
					for ci := 0; ci < cg; ci++ {
						ch := grp*cg + ci
						for ky := 0; ky < g.kh; ky++ {
							iy := oy*g.sh - g.ph + ky*g.dh
							if iy < 0 || iy >= g.ih {
								continue
							}
							for kx := 0; kx < g.kw; kx++ {
								ix := ox*g.sw - g.pw + kx*g.dw
								if ix < 0 || ix >= g.iw {
									continue
								}
								xi := ((n*g.c+ch)*g.ih+iy)*g.iw + ix
								wi := ((m*cg+ci)*g.kh+ky)*g.kw + kx
								gx[xi] += dy * w[wi]
								gw[wi] += dy * x[xi]
							}
						}
					}
				}
			}
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	out[0], out[1] = like(c.In[0], gx), like(c.In[1], gw)
	if gb != nil {
		out[2] = like(c.In[2], gb)
	}
	return out, nil
}
