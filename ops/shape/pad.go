package shape

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Define(ops.Desc{Type: "Pad", Since: 1, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: newPad})
}

type padOp struct {
	attrs bool // pads and value are attributes (before opset 11)
	mode  string
	pads  []int64
	value float32
}

func newPad(c *ops.Config) (ops.Op, error) {
	p := &padOp{attrs: c.Opset < 11, mode: c.Attrs.String("mode", "constant")}
	switch p.mode {
	case "constant", "reflect", "edge", "wrap":
	default:
		return nil, ops.BadAttr("mode", "unsupported Pad mode %q", p.mode)
	}
	if p.attrs {
		p.pads = c.Attrs.Ints("pads")
		if !c.Attrs.Has("pads") {
			p.pads = c.Attrs.Ints("paddings") // opset 1 name
		}
		p.value = c.Attrs.Float("value", 0)
	}
	return p, nil
}

// Run is RunWith(nil, in).
func (p *padOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return p.RunWith(nil, in) }

// RunWith pads into a tensor from ar.
func (p *padOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	r := x.Rank()
	pads := p.pads
	var fill *tensor.Tensor
	var axes []int
	if p.attrs {
		if p.mode == "constant" && p.value != 0 {
			var err error
			if fill, err = scalarOf(ar, x.DType, float64(p.value)); err != nil {
				return nil, ops.BadInput(0, "Pad value for %v: %v", x, err)
			}
		}
	} else {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		var err error
		if pads, _, err = intsInput(ar, in, 1, "pads"); err != nil {
			return nil, err
		}
		if len(in) > 2 && in[2] != nil && p.mode == "constant" {
			c := in[2]
			if c.DType != x.DType {
				return nil, ops.BadInput(2, "Pad constant_value %v must have the dtype of data %v", c, x)
			}
			if c.Len() > 1 {
				return nil, ops.BadInput(2, "Pad constant_value %v must be a scalar", c)
			}
			if c.Len() == 1 {
				fill = c
			}
		}
		av, ok, err := intsInput(ar, in, 3, "axes")
		if err != nil {
			return nil, err
		}
		if ok {
			if axes, err = normAxes(ar, av, r); err != nil {
				return nil, ops.BadInput(3, "Pad axes for %v: %v", x, err)
			}
		}
	}
	if axes == nil {
		axes = ar.Ints(r)
		for i := range axes {
			axes[i] = i
		}
	}
	if len(pads) != 2*len(axes) {
		return nil, ops.BadInput(1, "Pad pads %v has %d values, want %d for %v", pads, len(pads), 2*len(axes), x)
	}
	for _, v := range pads {
		if v > tensor.MaxElements || v < -tensor.MaxElements {
			return nil, ops.BadInput(1, "Pad pads %v has out-of-range value %d", pads, v)
		}
	}
	if err := x.Validate(); err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	begin, end := ar.Ints(r), ar.Ints(r)
	for i, a := range axes {
		begin[a], end[a] = int(pads[i]), int(pads[i+len(axes)])
	}
	shape := ar.Ints(r)
	for a := range shape {
		shape[a] = x.Shape[a] + begin[a] + end[a]
		if shape[a] < 0 {
			return nil, ops.BadInput(1, "Pad pads %v give negative size on axis %d of %v", pads, a, x)
		}
		if x.Shape[a] == 0 && shape[a] > 0 && p.mode != "constant" {
			return nil, ops.BadInput(0, "Pad mode %q cannot pad empty axis %d of %v", p.mode, a, x)
		}
	}
	src, err := inputRaw(in, 0)
	if err != nil {
		return nil, err
	}
	out, dst, err := alloc(ar, x.DType, shape)
	if err != nil {
		return nil, err
	}
	st := strides(ar, x.Shape)
	maps := newAxisMaps(ar, shape)
	for a := 0; a < r; a++ {
		n := x.Shape[a]
		m := maps.axis(a)
		for o := range m {
			i := o - begin[a]
			if i < 0 || i >= n {
				switch p.mode {
				case "constant":
					m[o] = -1
					continue
				case "edge":
					i = min(max(i, 0), n-1)
				case "wrap":
					i = ((i % n) + n) % n
				case "reflect":
					i = reflectIndex(i, n)
				}
			}
			m[o] = i * st[a]
		}
	}
	var fr raw
	if fill != nil {
		if fr, err = rawOf(fill); err != nil {
			return nil, ops.BadInput(2, "%v", err)
		}
	}
	mappedCopy(ar, dst, src, shape, maps, fr)
	return one(ar, out)
}

// reflectIndex maps i into [0, n) by mirroring without repeating the edge.
func reflectIndex(i, n int) int {
	if n == 1 {
		return 0
	}
	period := 2 * (n - 1)
	i = ((i % period) + period) % period
	if i >= n {
		i = period - i
	}
	return i
}

// scalarOf builds a one-element tensor of dtype dt holding v, from ar.
func scalarOf(ar *ops.Arena, dt tensor.DType, v float64) (*tensor.Tensor, error) {
	t, err := ar.New(dt, nil)
	if err != nil {
		return nil, err
	}
	switch d := t.Data.(type) {
	case []float32:
		d[0] = float32(v)
	case []float64:
		d[0] = v
	case []int8:
		d[0] = int8(v)
	case []int16:
		d[0] = int16(v)
	case []int32:
		d[0] = int32(v)
	case []int64:
		d[0] = int64(v)
	case []uint8:
		d[0] = uint8(v)
	case []uint16:
		d[0] = uint16(v)
	case []uint32:
		d[0] = uint32(v)
	case []uint64:
		d[0] = uint64(v)
	case []bool:
		d[0] = v != 0
	case []tensor.Float16Bits:
		d[0] = tensor.Float32ToFloat16(float32(v))
	case []tensor.BFloat16Bits:
		d[0] = tensor.Float32ToBFloat16(float32(v))
	}
	return t, nil
}
