package autodiff

import (
	"fmt"

	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	register("MaxPool", typed(gradPool[float32], gradPool[float64]), nil)
	register("AveragePool", typed(gradPool[float32], gradPool[float64]), nil)
	register("GlobalMaxPool", typed(gradGlobalMaxPool[float32], gradGlobalMaxPool[float64]), nil)
}

// poolGeom is an N-D pooling window layout; the output's spatial sizes are
// taken from the forward output, so ceil_mode needs no separate handling.
type poolGeom struct {
	in, out, kernel, strides, dil, padBegin, padEnd []int
}

func poolGeometry(c *Ctx) (*poolGeom, error) {
	x, y := c.In[0], c.Out[0]
	sp := x.Rank() - 2
	if sp < 1 || y.Rank() != x.Rank() {
		return nil, fmt.Errorf("pooling needs N×C×spatial input, got %v → %v", x.Shape, y.Shape)
	}
	ints := func(name string, def, n int) []int {
		v := c.Attrs.Ints(name)
		out := make([]int, n)
		for i := range out {
			out[i] = def
			if i < len(v) {
				out[i] = int(v[i])
			}
		}
		return out
	}
	g := &poolGeom{in: x.Shape[2:], out: y.Shape[2:], kernel: ints("kernel_shape", 1, sp),
		strides: ints("strides", 1, sp), dil: ints("dilations", 1, sp)}
	if len(c.Attrs.Ints("kernel_shape")) != sp {
		return nil, fmt.Errorf("kernel_shape %v does not fit %d spatial dims", c.Attrs.Ints("kernel_shape"), sp)
	}
	g.padBegin, g.padEnd = make([]int, sp), make([]int, sp)
	switch ap := c.Attrs.String("auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
		p := ints("pads", 0, 2*sp)
		copy(g.padBegin, p[:sp])
		copy(g.padEnd, p[sp:])
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
		for i := range g.padBegin {
			total := max(0, (g.out[i]-1)*g.strides[i]+(g.kernel[i]-1)*g.dil[i]+1-g.in[i])
			g.padBegin[i] = total / 2
			if ap == "SAME_LOWER" {
				g.padBegin[i] = total - total/2
			}
			g.padEnd[i] = total - g.padBegin[i]
		}
	default:
		return nil, fmt.Errorf("unknown auto_pad %q", ap)
	}
	return g, nil
}

// gradPool routes each output's gradient to its window: all of it to the
// (first) largest element for MaxPool, evenly over the counted positions
// for AveragePool (count_include_pad counts padding inside the padded
// extent, as onnxruntime and PyTorch do).
func gradPool[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	g, err := poolGeometry(c)
	if err != nil {
		return nil, err
	}
	isMax := c.Node.OpType == "MaxPool"
	includePad := c.Attrs.Int("count_include_pad", 0) != 0
	x := data[T](c.In[0])
	gy := gradOr[T](c, 0)
	gx := make([]T, len(x))
	sp := len(g.in)
	inSize, outSize, win := prod(g.in), prod(g.out), prod(g.kernel)
	planes := c.In[0].Shape[0] * c.In[0].Shape[1]
	oIdx, kIdx := make([]int, sp), make([]int, sp)
	for o := 0; o < outSize; o++ {
		rem := o
		for d := sp - 1; d >= 0; d-- {
			oIdx[d] = rem % g.out[d]
			rem /= g.out[d]
		}
		// the window's valid input offsets, and how many positions count
		var offs []int
		padded := 0
		for k := 0; k < win; k++ {
			rem := k
			for d := sp - 1; d >= 0; d-- {
				kIdx[d] = rem % g.kernel[d]
				rem /= g.kernel[d]
			}
			off, inside, inPadded := 0, true, true
			for d := 0; d < sp; d++ {
				pos := oIdx[d]*g.strides[d] - g.padBegin[d] + kIdx[d]*g.dil[d]
				if pos < 0 || pos >= g.in[d] {
					inside = false
				}
				if pos < -g.padBegin[d] || pos >= g.in[d]+g.padEnd[d] {
					inPadded = false
				}
				off = off*g.in[d] + pos
			}
			if inPadded {
				padded++
			}
			if inside {
				offs = append(offs, off)
			}
		}
		if len(offs) == 0 {
			continue
		}
		for pl := 0; pl < planes; pl++ {
			gv := gy[pl*outSize+o]
			if gv == 0 {
				continue
			}
			base := pl * inSize
			if isMax {
				best := offs[0]
				for _, off := range offs[1:] {
					if x[base+off] > x[base+best] {
						best = off
					}
				}
				gx[base+best] += gv
				continue
			}
			count := len(offs)
			if includePad {
				count = padded
			}
			share := gv / T(count)
			for _, off := range offs {
				gx[base+off] += share
			}
		}
	}
	return []*tensor.Tensor{like(c.In[0], gx)}, nil
}

func gradGlobalMaxPool[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	x := c.In[0]
	if x.Rank() < 2 {
		return nil, fmt.Errorf("input rank %d", x.Rank())
	}
	spatial := prod(x.Shape[2:])
	xv, gy := data[T](x), gradOr[T](c, 0)
	gx := make([]T, len(xv))
	for pl := 0; pl < x.Shape[0]*x.Shape[1]; pl++ {
		row := xv[pl*spatial : (pl+1)*spatial]
		best := 0
		for i, v := range row {
			if v > row[best] {
				best = i
			}
		}
		gx[pl*spatial+best] = gy[pl]
	}
	return []*tensor.Tensor{like(x, gx)}, nil
}
