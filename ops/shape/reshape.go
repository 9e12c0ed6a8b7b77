package shape

import (
	"fmt"
	"slices"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Reshape, Flatten, Squeeze and Unsqueeze return views: the output shares
// the input's Data.

func init() {
	ops.Define(ops.Desc{Type: "Reshape", Since: 1, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: newReshape})
	ops.Define(ops.Desc{Type: "Flatten", Since: 1, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: newFlatten})
	ops.Define(ops.Desc{Type: "Squeeze", Since: 1, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: newSqueeze})
	ops.Define(ops.Desc{Type: "Unsqueeze", Since: 1, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: newUnsqueeze})
}

type reshapeOp struct {
	attrShape []int64 // opset < 5
	hasAttr   bool
	allowZero bool
}

func newReshape(c *ops.Config) (ops.Op, error) {
	r := &reshapeOp{allowZero: c.Attrs.Int("allowzero", 0) != 0}
	if c.Opset < 5 || c.Attrs.Has("shape") {
		r.attrShape, r.hasAttr = c.Attrs.Ints("shape"), c.Attrs.Has("shape")
	}
	return r, nil
}

// Run is RunWith(nil, in).
func (r *reshapeOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return r.RunWith(nil, in) }

// RunWith returns a view of the input from ar.
func (r *reshapeOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	spec, ok, err := intsInput(ar, in, 1, "shape")
	if err != nil {
		return nil, err
	}
	if !ok {
		if !r.hasAttr {
			return nil, ops.BadInput(1, "Reshape needs a shape input")
		}
		spec = r.attrShape
	}
	shape, err := reshapeTarget(ar, x.Shape, spec, r.allowZero)
	if err != nil {
		return nil, ops.BadInput(1, "Reshape of %v: %v", x, err)
	}
	return viewOf(ar, x, shape)
}

// reshapeTarget resolves a Reshape shape spec against the input shape.
func reshapeTarget(ar *ops.Arena, in []int, spec []int64, allowZero bool) ([]int, error) {
	shape := ar.Ints(len(spec))
	infer := -1
	known := 1
	zero := false
	for i, v := range spec {
		switch {
		case v == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("shape %v has more than one -1", spec)
			}
			infer = i
			continue
		case v == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("shape %v copies dim %d (0) but the input has rank %d", spec, i, len(in))
			}
			shape[i] = in[i]
		case v < 0:
			return nil, fmt.Errorf("shape %v has invalid dim %d", spec, v)
		default:
			if v > tensor.MaxElements {
				return nil, fmt.Errorf("shape %v has too large dim %d", spec, v)
			}
			shape[i] = int(v)
		}
		if shape[i] == 0 {
			zero = true
		} else {
			known *= shape[i]
			if known > tensor.MaxElements {
				return nil, fmt.Errorf("shape %v has too many elements", spec)
			}
		}
	}
	n := prod(in)
	if infer >= 0 {
		if allowZero && zero {
			return nil, fmt.Errorf("shape %v has both -1 and 0 with allowzero=1", spec)
		}
		if zero {
			if n != 0 {
				return nil, fmt.Errorf("cannot infer -1 in %v: %d elements into a zero-size shape", spec, n)
			}
			shape[infer] = 0 // ambiguous; ONNX runtimes pick 0... or 1
			return shape, nil
		}
		if n%known != 0 {
			return nil, fmt.Errorf("cannot reshape %d elements to %v: %d is not a multiple of %d", n, spec, n, known)
		}
		shape[infer] = n / known
		return shape, nil
	}
	if zero {
		known = 0
	}
	if known != n {
		return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v (%d elements)", in, n, shape, known)
	}
	return shape, nil
}

type flattenOp struct{ axis int64 }

func newFlatten(c *ops.Config) (ops.Op, error) {
	return &flattenOp{axis: c.Attrs.Int("axis", 1)}, nil
}

// Run is RunWith(nil, in).
func (f *flattenOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return f.RunWith(nil, in) }

// RunWith returns a view of the input from ar.
func (f *flattenOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	r := int64(x.Rank())
	a := f.axis
	if a < -r || a > r {
		return nil, ops.BadInput(0, "Flatten axis %d out of range [%d, %d] for %v", f.axis, -r, r, x)
	}
	if a < 0 {
		a += r
	}
	shape := [2]int{prod(x.Shape[:a]), prod(x.Shape[a:])}
	return viewOf(ar, x, shape[:])
}

type squeezeOp struct {
	fromInput bool
	axes      []int64
}

func newSqueeze(c *ops.Config) (ops.Op, error) {
	return &squeezeOp{fromInput: c.Opset >= 13, axes: c.Attrs.Ints("axes")}, nil
}

// Run is RunWith(nil, in).
func (s *squeezeOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return s.RunWith(nil, in) }

// RunWith returns a view of the input from ar.
func (s *squeezeOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	axes := s.axes
	if v, ok, err := intsInput(ar, in, 1, "axes"); err != nil {
		return nil, err
	} else if ok {
		axes = v
	}
	r := x.Rank()
	drop := ar.Ints(r) // 1 where the axis goes
	if len(axes) == 0 {
		for i, d := range x.Shape {
			if d == 1 {
				drop[i] = 1
			}
		}
	} else {
		ax, err := normAxes(ar, axes, r)
		if err != nil {
			return nil, ops.BadInput(1, "Squeeze axes of %v: %v", x, err)
		}
		for _, a := range ax {
			if x.Shape[a] != 1 {
				return nil, ops.BadInput(1, "Squeeze axis %d of %v has size %d, not 1", a, x, x.Shape[a])
			}
			drop[a] = 1
		}
	}
	shape := ar.Ints(r)[:0]
	for i, d := range x.Shape {
		if drop[i] == 0 {
			shape = append(shape, d)
		}
	}
	return viewOf(ar, x, shape)
}

type unsqueezeOp struct {
	fromInput bool
	axes      []int64
}

func newUnsqueeze(c *ops.Config) (ops.Op, error) {
	u := &unsqueezeOp{fromInput: c.Opset >= 13, axes: c.Attrs.Ints("axes")}
	if !u.fromInput && !c.Attrs.Has("axes") {
		return nil, ops.BadAttr("axes", "required before opset 13")
	}
	return u, nil
}

// Run is RunWith(nil, in).
func (u *unsqueezeOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return u.RunWith(nil, in) }

// RunWith returns a view of the input from ar.
func (u *unsqueezeOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	axes := u.axes
	v, ok, err := intsInput(ar, in, 1, "axes")
	if err != nil {
		return nil, err
	}
	if ok {
		axes = v
	} else if u.fromInput {
		return nil, ops.BadInput(1, "Unsqueeze needs an axes input from opset 13")
	}
	r := x.Rank() + len(axes)
	ax, err := normAxes(ar, axes, r)
	if err != nil {
		return nil, ops.BadInput(1, "Unsqueeze axes of %v: %v", x, err)
	}
	slices.Sort(ax)
	shape := ar.Ints(r)[:0]
	k, j := 0, 0
	for i := 0; i < r; i++ {
		if k < len(ax) && ax[k] == i {
			shape = append(shape, 1)
			k++
			continue
		}
		shape = append(shape, x.Shape[j])
		j++
	}
	return viewOf(ar, x, shape)
}

// viewOf returns the single output: a view of x under shape from ar.
func viewOf(ar *ops.Arena, x *tensor.Tensor, shape []int) ([]*tensor.Tensor, error) {
	v, err := ar.View(x, shape)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	return ar.Outputs(v), nil
}
