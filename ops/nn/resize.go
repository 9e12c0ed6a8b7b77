package nn

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Resize (opsets 10–19 semantics: nearest, linear and cubic modes, every
// coordinate transformation, antialias, axes, keep_aspect_ratio_policy,
// exclude_outside, tf_crop_and_resize with extrapolation) and its
// predecessor Upsample. Interpolation is separable, so the kernel resizes one
// axis at a time in float64: each output position along an axis is a fixed
// set of taps (input positions, edge-clamped) with weights.

func init() {
	// gradient: train/autodiff/rules_resize.go (the transpose of ResizePlan's taps)
	ops.Define(ops.Desc{Type: "Resize", Since: 10, Grad: ops.GradRule{}, Kernel: newResize})
	ops.Define(ops.Desc{Type: "Upsample", Since: 7, Grad: ops.GradRule{}, Kernel: newUpsample})
}

type resizeOp struct {
	opset          int
	mode           string // nearest, linear, cubic
	coord          string // coordinate_transformation_mode
	nearest        string // nearest_mode
	cubicA         float64
	excludeOutside bool
	extrapolation  float64
	antialias      bool
	axes           []int64
	policy         string // keep_aspect_ratio_policy
	upsample       bool   // Upsample: scales only, attribute before opset 9
	attrScales     []float32
}

func newResize(c *ops.Config) (ops.Op, error) {
	r := &resizeOp{
		opset:          c.Opset,
		mode:           c.Attrs.String("mode", "nearest"),
		coord:          c.Attrs.String("coordinate_transformation_mode", "half_pixel"),
		nearest:        c.Attrs.String("nearest_mode", "round_prefer_floor"),
		cubicA:         float64(c.Attrs.Float("cubic_coeff_a", -0.75)),
		excludeOutside: c.Attrs.Int("exclude_outside", 0) != 0,
		extrapolation:  float64(c.Attrs.Float("extrapolation_value", 0)),
		antialias:      c.Attrs.Int("antialias", 0) != 0,
		axes:           c.Attrs.Ints("axes"),
		policy:         c.Attrs.String("keep_aspect_ratio_policy", "stretch"),
	}
	if c.Opset < 11 {
		// Resize-10 maps output to input coordinates as x/scale and rounds
		// nearest down, as Upsample did
		r.coord, r.nearest = "asymmetric", "floor"
	}
	return r, r.check()
}

func newUpsample(c *ops.Config) (ops.Op, error) {
	r := &resizeOp{
		opset: c.Opset, mode: c.Attrs.String("mode", "nearest"), coord: "asymmetric", nearest: "floor",
		cubicA: -0.75, policy: "stretch", upsample: true, attrScales: c.Attrs.Floats("scales"),
	}
	if r.mode == "bilinear" {
		r.mode = "linear"
	}
	return r, r.check()
}

func (r *resizeOp) check() error {
	switch r.mode {
	case "nearest", "linear", "cubic":
	default:
		return ops.BadAttr("mode", "unknown mode %q (want nearest, linear or cubic)", r.mode)
	}
	switch r.coord {
	case "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize":
	case "tf_half_pixel_for_nn":
		// removed from the spec in opset 13: x/scale shifted by half a pixel, nearest only
	default:
		return ops.BadAttr("coordinate_transformation_mode", "unknown mode %q", r.coord)
	}
	switch r.nearest {
	case "round_prefer_floor", "round_prefer_ceil", "floor", "ceil":
	default:
		return ops.BadAttr("nearest_mode", "unknown mode %q", r.nearest)
	}
	switch r.policy {
	case "stretch", "not_larger", "not_smaller":
	default:
		return ops.BadAttr("keep_aspect_ratio_policy", "unknown policy %q", r.policy)
	}
	if r.antialias && r.mode == "nearest" {
		return ops.BadAttr("antialias", "antialias applies to linear and cubic modes only")
	}
	return nil
}

// ResizeStep is one axis of a Resize or Upsample run: output position y
// along Axis is Σ Weight[y][t]·input[Index[y][t]] over the InLen input
// positions, or the extrapolation value where Extrapolated[y]. A run applies
// its steps in order, each to the previous step's result.
type ResizeStep struct {
	Axis, InLen, OutLen int
	Index               [][]int
	Weight              [][]float64
	Extrapolated        []bool
	Extrapolation       float64
}

// ResizePlan returns the steps the Resize or Upsample kernel k applies to
// the inputs in (training differentiates a run through them: the map is
// linear in in[0]).
func ResizePlan(k ops.Op, in []*tensor.Tensor) ([]ResizeStep, error) {
	r, ok := k.(*resizeOp)
	if !ok {
		return nil, fmt.Errorf("nn: ResizePlan needs a Resize or Upsample kernel, got %T", k)
	}
	return r.plan(in)
}

// plan resolves the scales, sizes, roi and axes of a run into its steps.
func (r *resizeOp) plan(in []*tensor.Tensor) ([]ResizeStep, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	rank := x.Rank()
	get := func(i int) *tensor.Tensor {
		if i < len(in) && in[i] != nil && in[i].Len() > 0 {
			return in[i]
		}
		return nil
	}
	var roiT, scalesT, sizesT *tensor.Tensor
	switch {
	case r.upsample && r.opset < 9:
	case r.upsample || r.opset < 11:
		scalesT = get(1)
	default:
		roiT, scalesT, sizesT = get(1), get(2), get(3)
	}
	axes := make([]int, 0, rank)
	if len(r.axes) == 0 {
		for a := 0; a < rank; a++ {
			axes = append(axes, a)
		}
	} else {
		for _, a := range r.axes {
			n, err := ops.NormAxis(int(a), rank)
			if err != nil {
				return nil, ops.BadAttr("axes", "%v", err)
			}
			axes = append(axes, n)
		}
	}
	scale := make([]float64, rank)
	size := append([]int{}, x.Shape...)
	for a := range scale {
		scale[a] = 1
	}
	switch {
	case sizesT != nil:
		sv, err := tensor.AsInt64(sizesT)
		if err != nil || len(sv) != len(axes) {
			return nil, ops.BadInput(3, "Resize sizes must be %d integers, got %v", len(axes), sizesT)
		}
		for i, a := range axes {
			size[a] = int(sv[i])
			scale[a] = float64(sv[i]) / float64(x.Shape[a])
		}
		if r.policy != "stretch" {
			s := scale[axes[0]]
			for _, a := range axes[1:] {
				if r.policy == "not_larger" {
					s = math.Min(s, scale[a])
				} else {
					s = math.Max(s, scale[a])
				}
			}
			for _, a := range axes {
				scale[a] = s
				size[a] = int(s*float64(x.Shape[a]) + 0.5)
			}
		}
	default:
		var sv []float64
		if scalesT != nil {
			var err error
			if sv, err = tensor.AsFloat64(scalesT); err != nil {
				return nil, ops.BadInput(2, "Resize scales: %v", err)
			}
		} else if r.attrScales != nil {
			for _, f := range r.attrScales {
				sv = append(sv, float64(f))
			}
		} else {
			return nil, ops.BadInput(1, "Resize needs scales or sizes")
		}
		if len(sv) != len(axes) {
			return nil, ops.BadInput(2, "Resize has %d scales for %d axes", len(sv), len(axes))
		}
		for i, a := range axes {
			if sv[i] <= 0 {
				return nil, ops.BadInput(2, "Resize scale %v must be positive", sv[i])
			}
			scale[a] = sv[i]
			size[a] = int(math.Floor(sv[i] * float64(x.Shape[a])))
		}
	}
	roi := make([]float64, 2*rank) // start, end per axis in roi coordinates
	for a := 0; a < rank; a++ {
		roi[rank+a] = 1
	}
	if roiT != nil && r.coord == "tf_crop_and_resize" {
		rv, err := tensor.AsFloat64(roiT)
		if err != nil || len(rv) != 2*len(axes) {
			return nil, ops.BadInput(1, "Resize roi must have %d values, got %v", 2*len(axes), roiT)
		}
		for i, a := range axes {
			roi[a], roi[rank+a] = rv[i], rv[len(axes)+i]
		}
	}
	var steps []ResizeStep
	for _, a := range axes {
		if scale[a] == 1 && size[a] == x.Shape[a] && roi[a] == 0 && roi[rank+a] == 1 {
			continue
		}
		st, err := r.step(a, x.Shape[a], size[a], scale[a], roi[a], roi[rank+a])
		if err != nil {
			return nil, ops.BadInput(0, "Resize axis %d: %v", a, err)
		}
		steps = append(steps, st)
	}
	return steps, nil
}

// Run resizes in[0].
func (r *resizeOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	steps, err := r.plan(in)
	if err != nil {
		return nil, err
	}
	x := in[0]
	v, err := tensor.AsFloat64(x)
	if err != nil || x.DType == tensor.Bool {
		return nil, ops.BadInput(0, "Resize needs a numeric tensor, got %v", x)
	}
	shape := append([]int{}, x.Shape...)
	for _, st := range steps {
		v = st.apply(v, shape)
		shape[st.Axis] = st.OutLen
	}
	if !x.DType.IsFloat() {
		for i, f := range v {
			v[i] = math.RoundToEven(f)
		}
	}
	out, err := elems.FromFloats(x.DType, shape, v)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{out}, nil
}

// step computes the taps that resize an axis of inW positions to outW.
func (r *resizeOp) step(a, inW, outW int, s, roi0, roi1 float64) (ResizeStep, error) {
	if inW == 0 && outW > 0 {
		return ResizeStep{}, fmt.Errorf("cannot resize an empty axis to %d", outW)
	}
	st := ResizeStep{Axis: a, InLen: inW, OutLen: outW, Index: make([][]int, outW), Weight: make([][]float64, outW),
		Extrapolated: make([]bool, outW), Extrapolation: r.extrapolation}
	outF := s * float64(inW)
	for y := 0; y < outW; y++ {
		xo, extrapolate := r.source(float64(y), s, inW, outF, outW, roi0, roi1)
		st.Extrapolated[y] = extrapolate
		if !extrapolate {
			st.Index[y], st.Weight[y] = r.taps(xo, s, inW)
		}
	}
	return st, nil
}

// apply resizes axis st.Axis of v (of the given shape).
func (st *ResizeStep) apply(v []float64, shape []int) []float64 {
	a, inW, outW := st.Axis, st.InLen, st.OutLen
	outer, inner := elems.Prod(shape[:a]), elems.Prod(shape[a+1:])
	res := make([]float64, outer*outW*inner)
	for y := 0; y < outW; y++ {
		idx, w := st.Index[y], st.Weight[y]
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				d := (o*outW+y)*inner + i
				if st.Extrapolated[y] {
					res[d] = st.Extrapolation
					continue
				}
				acc := 0.0
				for t, p := range idx {
					if w[t] != 0 {
						acc += w[t] * v[(o*inW+p)*inner+i]
					}
				}
				res[d] = acc
			}
		}
	}
	return res
}

// source maps output position y to an input coordinate.
func (r *resizeOp) source(y, s float64, inW int, outF float64, outW int, roi0, roi1 float64) (float64, bool) {
	in := float64(inW)
	switch r.coord {
	case "align_corners":
		if outF == 1 {
			return 0, false
		}
		return y * (in - 1) / (outF - 1), false
	case "asymmetric":
		return y / s, false
	case "tf_half_pixel_for_nn":
		return (y + 0.5) / s, false
	case "tf_crop_and_resize":
		var x float64
		if outF == 1 {
			x = (roi1 - roi0) * (in - 1) / 2
		} else {
			x = y * (roi1 - roi0) * (in - 1) / (outF - 1)
		}
		x += roi0 * (in - 1)
		return x, x < 0 || x > in-1
	case "pytorch_half_pixel":
		if outF == 1 {
			return -0.5, false
		}
		return (y+0.5)/s - 0.5, false
	case "half_pixel_symmetric":
		adj := float64(outW) / outF
		return in/2*(1-adj) + (y+0.5)/s - 0.5, false
	}
	return (y+0.5)/s - 0.5, false // half_pixel
}

// taps returns the input positions (clamped to the axis) and weights that
// make the output at input coordinate x.
func (r *resizeOp) taps(x, s float64, inW int) ([]int, []float64) {
	fl := math.Floor(x)
	ratio := x - fl
	if ratio == 0 {
		ratio = 1 // prefer the pixel on the left of x
	}
	var w []float64
	switch r.mode {
	case "nearest":
		var near bool // true: the right-hand tap
		switch {
		case x == fl:
			near = true
		case r.nearest == "round_prefer_floor":
			near = ratio > 0.5
		case r.nearest == "round_prefer_ceil":
			near = ratio >= 0.5
		case r.nearest == "floor":
			near = false
		default: // ceil
			near = true
		}
		if near {
			w = []float64{0, 1}
		} else {
			w = []float64{1, 0}
		}
	case "linear":
		if r.antialias {
			sc := math.Min(s, 1)
			start := int(math.Floor(-1/sc)) + 1
			n := 2 - 2*start
			w = make([]float64, n)
			sum := 0.0
			for j := range w {
				w[j] = math.Max(0, math.Min(1, 1-math.Abs((float64(start+j)-ratio)*sc)))
				sum += w[j]
			}
			for j := range w {
				w[j] /= sum
			}
		} else {
			w = []float64{1 - ratio, ratio}
		}
	default: // cubic
		A := r.cubicA
		if r.antialias {
			sc := math.Min(s, 1)
			start := int(math.Floor(-2/sc)) + 1
			end := 2 - start
			sum := 0.0
			for i := start; i < end; i++ {
				c := cubic(A, sc*(float64(i)-ratio))
				w = append(w, c)
				sum += c
			}
			for j := range w {
				w[j] /= sum
			}
		} else {
			w = []float64{cubic(A, ratio+1), cubic(A, ratio), cubic(A, 1-ratio), cubic(A, 2-ratio)}
		}
	}
	n := len(w)
	// the n positions nearest x, ties to the smaller: in the edge-padded
	// frame the window starts at floor(x+pad) + offset
	pad := (n + 1) / 2
	xp := x + float64(pad)
	p := int(math.Floor(xp))
	frac := xp - float64(p)
	var off int
	if n%2 == 0 {
		off = -n/2 + 1
		if frac == 0 {
			off = -n / 2
		}
	} else {
		off = -(n - 1) / 2
		if frac > 0.5 {
			off++
		}
	}
	start := p + off - pad
	idx := make([]int, n)
	sum := 0.0
	for j := range idx {
		q := start + j
		if r.excludeOutside && (q < 0 || q >= inW) {
			w[j] = 0
		}
		sum += w[j]
		idx[j] = min(max(q, 0), inW-1)
	}
	if r.excludeOutside && sum != 0 {
		for j := range w {
			w[j] /= sum
		}
	}
	return idx, w
}

// cubic is the cubic convolution kernel with coefficient A at distance d.
func cubic(A, d float64) float64 {
	d = math.Abs(d)
	switch {
	case d <= 1:
		return ((A+2)*d-(A+3))*d*d + 1
	case d < 2:
		return ((A*d-5*A)*d+8*A)*d - 4*A
	}
	return 0
}
