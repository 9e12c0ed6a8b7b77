package shape

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Define(ops.Desc{Type: "Shape", Since: 1, Grad: ops.ZeroGradient("integer output: the input's shape"), Traits: ops.ShapeOnly, Kernel: newShape})
	ops.Define(ops.Desc{Type: "Size", Since: 1, Grad: ops.ZeroGradient("integer output: the input's element count"), Traits: ops.ShapeOnly, Kernel: func(*ops.Config) (ops.Op, error) { return kernel(runSize), nil }})
	ops.Define(ops.Desc{Type: "ConstantOfShape", Since: 9, Grad: ops.ZeroGradient("its input is a shape; the fill value is an attribute"), Traits: ops.ShapeOnly, Kernel: newConstantOfShape})
	ops.Define(ops.Desc{Type: "Constant", Since: 1, Grad: ops.ZeroGradient("no inputs"), Kernel: newConstant})
}

type shapeOp struct {
	start, end int64
	hasEnd     bool
}

func newShape(c *ops.Config) (ops.Op, error) {
	return &shapeOp{start: c.Attrs.Int("start", 0), end: c.Attrs.Int("end", 0), hasEnd: c.Attrs.Has("end")}, nil
}

// Run is RunWith(nil, in).
func (s *shapeOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return s.RunWith(nil, in) }

// RunWith writes the shape into an int64 tensor from ar.
func (s *shapeOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	r := int64(x.Rank())
	b, e := s.start, r
	if s.hasEnd {
		e = s.end
	}
	if b < 0 {
		b += r
	}
	if e < 0 {
		e += r
	}
	b, e = clamp(b, 0, r), clamp(e, 0, r)
	shape := [1]int{int(max(e-b, 0))}
	t, err := ar.Empty(tensor.Int64, shape[:])
	if err != nil {
		return nil, err
	}
	v := t.Data.([]int64)
	for i := range v {
		v[i] = int64(x.Shape[int(b)+i])
	}
	return one(ar, t)
}

func runSize(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	t, err := ar.Empty(tensor.Int64, nil)
	if err != nil {
		return nil, err
	}
	t.Data.([]int64)[0] = int64(in[0].Len())
	return one(ar, t)
}

type constantOfShapeOp struct {
	value *tensor.Tensor // one element
}

func newConstantOfShape(c *ops.Config) (ops.Op, error) {
	v := c.Attrs.Tensor("value")
	if v == nil {
		v = tensor.From([]int{1}, []float32{0})
	}
	if err := v.Validate(); err != nil {
		return nil, ops.BadAttr("value", "%v", err)
	}
	if v.Len() != 1 {
		return nil, ops.BadAttr("value", "must have one element, got %v", v)
	}
	return &constantOfShapeOp{value: v}, nil
}

// Run is RunWith(nil, in).
func (c *constantOfShapeOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return c.RunWith(nil, in)
}

// RunWith fills a tensor from ar.
func (c *constantOfShapeOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	spec, _, err := intsInput(ar, in, 0, "shape")
	if err != nil {
		return nil, err
	}
	shape := ar.Ints(len(spec))
	for i, d := range spec {
		if d < 0 || d > tensor.MaxElements {
			return nil, ops.BadInput(0, "ConstantOfShape dim %d invalid in shape %v", d, spec)
		}
		shape[i] = int(d)
	}
	out, dst, err := alloc(ar, c.value.DType, shape)
	if err != nil {
		return nil, ops.BadInput(0, "ConstantOfShape %v: %v", spec, err)
	}
	v, err := rawOf(c.value)
	if err != nil {
		return nil, err
	}
	fillRaw(dst, v)
	return one(ar, out)
}

// fillRaw sets every element of dst to v's first element.
func fillRaw(dst, v raw) {
	switch v.k {
	case k1:
		fillT(dst.b1, v.b1[0])
	case k2:
		fillT(dst.b2, v.b2[0])
	case k4:
		fillT(dst.b4, v.b4[0])
	case k8:
		fillT(dst.b8, v.b8[0])
	default:
		fillT(dst.s, v.s[0])
	}
}

func fillT[T word](dst []T, v T) {
	for i := range dst {
		dst[i] = v
	}
}

// constantOp returns its attribute value. The output is the attribute
// tensor itself (not arena memory), which nobody may write to.
type constantOp struct{ t *tensor.Tensor }

func newConstant(c *ops.Config) (ops.Op, error) {
	var t *tensor.Tensor
	n := 0
	for name, a := range c.Attrs {
		switch name {
		case "value":
			t = a.Tensor
			if t == nil {
				return nil, ops.BadAttr(name, "is not a tensor")
			}
		case "value_float":
			t = tensor.Scalar(a.Float)
		case "value_floats":
			t = tensor.From([]int{len(a.Floats)}, append([]float32{}, a.Floats...))
		case "value_int":
			t = tensor.Scalar(a.Int)
		case "value_ints":
			t = tensor.From([]int{len(a.Ints)}, append([]int64{}, a.Ints...))
		case "value_string":
			t = tensor.Scalar(a.String)
		case "value_strings":
			t = tensor.From([]int{len(a.Strings)}, append([]string{}, a.Strings...))
		case "sparse_value":
			return nil, ops.BadAttr(name, "sparse tensors are not supported")
		default:
			continue
		}
		n++
	}
	if n != 1 {
		return nil, fmt.Errorf("Constant needs exactly one value attribute, got %d", n)
	}
	if err := t.Validate(); err != nil {
		return nil, ops.BadAttr("value", "%v", err)
	}
	return &constantOp{t: t}, nil
}

// Run is RunWith(nil, in).
func (c *constantOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return c.RunWith(nil, in) }

// RunWith returns the attribute tensor in a result list from ar.
func (c *constantOp) RunWith(ar *ops.Arena, _ []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return one(ar, c.t)
}
