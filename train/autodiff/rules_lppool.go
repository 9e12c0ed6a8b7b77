package autodiff

import (
	"math"

	"github.com/mtlrun/mtlrun/tensor"
)

// LpPool and GlobalLpPool: y = (Σ_window |x|^p)^(1/p), so each window
// passes g·sign(x)·|x|^(p−1)·y^(1−p) to its elements (nothing where y is
// 0). LpPool's windows are the pools' geometry (rules_pool.go).

func init() {
	register("LpPool", gradLpPool, nil)
	register("GlobalLpPool", gradLpPool, nil)
}

func gradLpPool(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	if c.GradOut[0] == nil {
		return out, nil
	}
	x := c.In[0]
	p := float64(c.Attrs.Int("p", 2))
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, err
	}
	yv, err := tensor.AsFloat64(c.Out[0])
	if err != nil {
		return nil, err
	}
	gy, err := tensor.AsFloat64(c.GradOut[0])
	if err != nil {
		return nil, err
	}
	sp := x.Rank() - 2
	var g *poolGeom
	if c.Node.OpType == "GlobalLpPool" {
		ones := make([]int, sp)
		for i := range ones {
			ones[i] = 1
		}
		g = &poolGeom{in: x.Shape[2:], out: ones, kernel: x.Shape[2:], strides: ones, dil: ones, padBegin: make([]int, sp), padEnd: make([]int, sp)}
	} else if g, err = poolGeometry(c); err != nil {
		return nil, err
	}
	inSize, outSize, win := prod(g.in), prod(g.out), prod(g.kernel)
	planes := x.Shape[0] * x.Shape[1]
	gx := make([]float64, len(xv))
	oIdx, kIdx := make([]int, sp), make([]int, sp)
	for o := 0; o < outSize; o++ {
		rem := o
		for d := sp - 1; d >= 0; d-- {
			oIdx[d], rem = rem%g.out[d], rem/g.out[d]
		}
		var offs []int
		for k := 0; k < win; k++ {
			rem := k
			for d := sp - 1; d >= 0; d-- {
				kIdx[d], rem = rem%g.kernel[d], rem/g.kernel[d]
			}
			off, inside := 0, true
			for d := 0; d < sp; d++ {
				pos := oIdx[d]*g.strides[d] - g.padBegin[d] + kIdx[d]*g.dil[d]
				inside = inside && pos >= 0 && pos < g.in[d]
				off = off*g.in[d] + pos
			}
			if inside {
				offs = append(offs, off)
			}
		}
		for pl := 0; pl < planes; pl++ {
			y := yv[pl*outSize+o]
			if y == 0 {
				continue
			}
			s := gy[pl*outSize+o] * math.Pow(y, 1-p)
			for _, off := range offs {
				v := xv[pl*inSize+off]
				if v == 0 {
					continue
				}
				d := math.Pow(math.Abs(v), p-1)
				if v < 0 {
					d = -d
				}
				gx[pl*inSize+off] += s * d
			}
		}
	}
	out[0], err = asDType(x, x.Shape, gx)
	return out, err
}
