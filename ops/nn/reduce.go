package nn

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Reductions. Axes come from the `axes` attribute before opset 13
// (ReduceSum) or 18 (the others), and from the optional second input after;
// empty axes reduce everything unless noop_with_empty_axes is set.

var reducers = map[string]struct {
	init      float64
	step      func(acc, x float64) float64
	finish    func(acc float64, n int) float64
	inputFrom int          // opset from which axes is an input
	grad      ops.GradRule // zero: train/autodiff's reduce rules (rules_nn.go, rules_reduce.go)
}{
	"ReduceSum":       {0, func(a, x float64) float64 { return a + x }, nil, 13, ops.GradRule{}},
	"ReduceMean":      {0, func(a, x float64) float64 { return a + x }, func(a float64, n int) float64 { return a / float64(n) }, 18, ops.GradRule{}},
	"ReduceMax":       {math.Inf(-1), math.Max, nil, 18, ops.GradRule{}},
	"ReduceMin":       {math.Inf(1), math.Min, nil, 18, ops.GradRule{}},
	"ReduceProd":      {1, func(a, x float64) float64 { return a * x }, nil, 18, ops.GradRule{}},
	"ReduceL1":        {0, func(a, x float64) float64 { return a + math.Abs(x) }, nil, 18, ops.GradRule{}},
	"ReduceL2":        {0, func(a, x float64) float64 { return a + x*x }, func(a float64, _ int) float64 { return math.Sqrt(a) }, 18, ops.GradRule{}},
	"ReduceSumSquare": {0, func(a, x float64) float64 { return a + x*x }, nil, 18, ops.GradRule{}},
	"ReduceLogSumExp": {0, func(a, x float64) float64 { return a + math.Exp(x) }, func(a float64, _ int) float64 { return math.Log(a) }, 18, ops.GradRule{}},
	"ReduceLogSum":    {0, func(a, x float64) float64 { return a + x }, func(a float64, _ int) float64 { return math.Log(a) }, 18, ops.GradRule{}},
}

func init() {
	for name := range reducers {
		name := name
		ops.Define(ops.Desc{Type: name, Since: 1, Grad: reducers[name].grad, Kernel: func(c *ops.Config) (ops.Op, error) {
			r := &reduce{name: name, keep: c.Attrs.Int("keepdims", 1) != 0,
				noop:      c.Attrs.Int("noop_with_empty_axes", 0) != 0,
				inputAxes: c.Opset >= reducers[name].inputFrom}
			if !r.inputAxes {
				r.attrAxes = c.Attrs.Ints("axes")
			}
			return r, nil
		}})
	}
	for _, name := range []string{"ArgMax", "ArgMin"} {
		isMax := name == "ArgMax"
		ops.Define(ops.Desc{Type: name, Since: 1, Grad: ops.ZeroGradient("integer output (an index)"), Kernel: func(c *ops.Config) (ops.Op, error) {
			return &argReduce{max: isMax, axis: int(c.Attrs.Int("axis", 0)), keep: c.Attrs.Int("keepdims", 1) != 0,
				last: c.Attrs.Int("select_last_index", 0) != 0}, nil
		}})
	}
}

type reduce struct {
	name      string
	keep      bool
	noop      bool
	inputAxes bool
	attrAxes  []int64
}

func (r *reduce) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return r.RunWith(nil, in) }

// RunWith is allocation-free for float32/float64 reductions over one
// contiguous block of axes (up to 16 trailing elements per output); the
// general loop allocates.
func (r *reduce) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if x.DType == tensor.Bool && (r.name == "ReduceMax" || r.name == "ReduceMin") {
		return r.boolMinMax(in)
	}
	raw := r.attrAxes
	if r.inputAxes && len(in) > 1 && in[1] != nil {
		v, err := tensor.AsInt64(in[1])
		if err != nil {
			return nil, ops.BadInput(1, "axes: %v", err)
		}
		raw = v
	}
	rank := x.Rank()
	var rbuf [8]bool
	var reduced []bool
	if rank <= len(rbuf) {
		reduced = rbuf[:rank]
	} else {
		reduced = make([]bool, rank)
	}
	if len(raw) == 0 {
		if r.noop {
			return ar.Outputs(x), nil
		}
		for i := range reduced {
			reduced[i] = true
		}
	}
	for _, a := range raw {
		ax, err := ops.NormAxis(int(a), rank)
		if err != nil {
			return nil, ops.BadInput(1, "axes %v: %v", raw, err)
		}
		reduced[ax] = true
	}
	shapes := ar.Ints(2 * rank)
	outShape, keptShape := shapes[:0:rank], shapes[rank:rank]
	for i, d := range x.Shape {
		if reduced[i] {
			keptShape = append(keptShape, 1)
			if r.keep {
				outShape = append(outShape, 1)
			}
			continue
		}
		keptShape = append(keptShape, d)
		outShape = append(outShape, d)
	}
	if outer, n, inner, ok := reduceBlock(x.Shape, reduced); ok && (x.DType == tensor.Float32 || x.DType == tensor.Float64) {
		out, err := ar.Empty(x.DType, outShape) // every element is written
		if err != nil {
			return nil, err
		}
		var accBuf, mxBuf [16]float64
		var acc, mx []float64
		if inner <= len(accBuf) {
			acc, mx = accBuf[:inner], mxBuf[:inner]
		} else {
			acc, mx = make([]float64, inner), make([]float64, inner)
		}
		if x.DType == tensor.Float32 {
			reduceT(r.name, x.Float32s(), out.Float32s(), outer, n, inner, acc, mx)
		} else {
			reduceT(r.name, x.Float64s(), out.Float64s(), outer, n, inner, acc, mx)
		}
		return ar.Outputs(out), nil
	}
	outShape = append([]int{}, outShape...)
	keptShape = append([]int{}, keptShape...)
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	red := reducers[r.name]
	nOut := 1
	for _, d := range keptShape {
		nOut *= d
	}
	acc := make([]float64, nOut)
	for i := range acc {
		acc[i] = red.init
	}
	count := make([]int, nOut)
	idx := tensor.BroadcastIndex(keptShape, x.Shape)
	if r.name == "ReduceLogSumExp" {
		// stable: subtract each group's maximum first
		mx := make([]float64, nOut)
		for i := range mx {
			mx[i] = math.Inf(-1)
		}
		for i, j := range idx {
			mx[j] = math.Max(mx[j], xv[i])
		}
		for i, j := range idx {
			acc[j] += math.Exp(xv[i] - mx[j])
			count[j]++
		}
		for j := range acc {
			if math.IsInf(mx[j], 0) {
				acc[j] = mx[j]
				continue
			}
			acc[j] = mx[j] + math.Log(acc[j])
		}
	} else {
		for i, j := range idx {
			acc[j] = red.step(acc[j], xv[i])
			count[j]++
		}
		if red.finish != nil {
			for j := range acc {
				acc[j] = red.finish(acc[j], count[j])
			}
		}
	}
	out, err := fromFloat64(x.DType, outShape, acc)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{out}, nil
}

// fromFloat64 converts accumulated values back to the input's dtype.
func fromFloat64(dt tensor.DType, shape []int, v []float64) (*tensor.Tensor, error) {
	out, err := tensor.New(dt, shape)
	if err != nil {
		return nil, err
	}
	switch d := out.Data.(type) {
	case []float32:
		for i, x := range v {
			d[i] = float32(x)
		}
	case []float64:
		copy(d, v)
	case []int64:
		for i, x := range v {
			d[i] = int64(x)
		}
	case []int32:
		for i, x := range v {
			d[i] = int32(x)
		}
	case []int8:
		for i, x := range v {
			d[i] = int8(x)
		}
	case []uint8:
		for i, x := range v {
			d[i] = uint8(x)
		}
	case []uint32:
		for i, x := range v {
			d[i] = uint32(x)
		}
	case []uint64:
		for i, x := range v {
			d[i] = uint64(x)
		}
	case []tensor.Float16Bits:
		for i, x := range v {
			d[i] = tensor.Float32ToFloat16(float32(x))
		}
	default:
		return nil, fmt.Errorf("dtype %v not supported", dt)
	}
	return out, nil
}

// reduceBlock reports whether the reduced axes form one contiguous block
// (ignoring unit dims), returning the sizes before, inside and after it.
func reduceBlock(shape []int, reduced []bool) (outer, n, inner int, ok bool) {
	outer, n, inner = 1, 1, 1
	state := 0 // 0 before the block, 1 inside, 2 after
	for i, d := range shape {
		if d == 1 {
			continue
		}
		switch {
		case reduced[i] && state == 0:
			state = 1
			n *= d
		case reduced[i] && state == 1:
			n *= d
		case reduced[i]:
			return 0, 0, 0, false
		case state == 0:
			outer *= d
		default:
			state = 2
			inner *= d
		}
	}
	return outer, n, inner, true
}

// reduceT reduces x viewed as [outer, n, inner] over n, accumulating in
// float64.
func reduceT[T float32 | float64](name string, x, out []T, outer, n, inner int, acc, mx []float64) {
	for o := 0; o < outer; o++ {
		blk := x[o*n*inner : (o+1)*n*inner]
		switch name {
		case "ReduceMax", "ReduceMin", "ReduceLogSumExp":
			isMin := name == "ReduceMin"
			for i := range mx {
				mx[i] = math.Inf(-1)
				if isMin {
					mx[i] = math.Inf(1)
				}
			}
			for j := 0; j < n; j++ {
				row := blk[j*inner : (j+1)*inner]
				if isMin {
					for i, v := range row {
						mx[i] = math.Min(mx[i], float64(v))
					}
				} else {
					for i, v := range row {
						mx[i] = math.Max(mx[i], float64(v))
					}
				}
			}
			if name != "ReduceLogSumExp" {
				for i := range mx {
					out[o*inner+i] = T(mx[i])
				}
				continue
			}
			clear(acc)
			for j := 0; j < n; j++ {
				row := blk[j*inner : (j+1)*inner]
				for i, v := range row {
					acc[i] += math.Exp(float64(v) - mx[i])
				}
			}
			for i := range acc {
				if math.IsInf(mx[i], 0) {
					out[o*inner+i] = T(mx[i])
				} else {
					out[o*inner+i] = T(mx[i] + math.Log(acc[i]))
				}
			}
			continue
		}
		init := 0.0
		if name == "ReduceProd" {
			init = 1
		}
		for i := range acc {
			acc[i] = init
		}
		for j := 0; j < n; j++ {
			row := blk[j*inner : (j+1)*inner]
			switch name {
			case "ReduceProd":
				for i, v := range row {
					acc[i] *= float64(v)
				}
			case "ReduceL1":
				for i, v := range row {
					acc[i] += math.Abs(float64(v))
				}
			case "ReduceL2", "ReduceSumSquare":
				for i, v := range row {
					acc[i] += float64(v) * float64(v)
				}
			default: // Sum, Mean, LogSum
				for i, v := range row {
					acc[i] += float64(v)
				}
			}
		}
		dst := out[o*inner : (o+1)*inner]
		for i, a := range acc {
			switch name {
			case "ReduceMean":
				a /= float64(n)
			case "ReduceL2":
				a = math.Sqrt(a)
			case "ReduceLogSum":
				a = math.Log(a)
			}
			dst[i] = T(a)
		}
	}
}

type argReduce struct {
	max, keep, last bool
	axis            int
}

func (r *argReduce) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return r.RunWith(nil, in) }

func (r *argReduce) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if x.Rank() == 0 {
		return nil, ops.BadInput(0, "arg-reduction needs rank ≥ 1, got a scalar")
	}
	axis, err := ops.NormAxis(r.axis, x.Rank())
	if err != nil {
		return nil, ops.BadAttr("axis", "%v", err)
	}
	outer, n, inner := 1, x.Shape[axis], 1
	for i, d := range x.Shape {
		if i < axis {
			outer *= d
		} else if i > axis {
			inner *= d
		}
	}
	shape := ar.Ints(x.Rank())[:0]
	for i, d := range x.Shape {
		if i == axis {
			if r.keep {
				shape = append(shape, 1)
			}
			continue
		}
		shape = append(shape, d)
	}
	out, err := ar.Empty(tensor.Int64, shape) // every element is written
	if err != nil {
		return nil, err
	}
	res := out.Int64s()
	switch x.DType {
	case tensor.Float32:
		argT(r, x.Float32s(), res, outer, n, inner)
	case tensor.Float64:
		argT(r, x.Float64s(), res, outer, n, inner)
	default:
		xv, err := tensor.AsFloat64(x)
		if err != nil {
			return nil, ops.BadInput(0, "%v", err)
		}
		argT(r, xv, res, outer, n, inner)
	}
	return ar.Outputs(out), nil
}

// argT finds each row's first (or last) extreme; comparisons in the
// input's own type give the float64 comparisons' answers.
func argT[T float32 | float64](r *argReduce, xv []T, res []int64, outer, n, inner int) {
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			best := 0
			for j := 1; j < n; j++ {
				v, b := xv[(o*n+j)*inner+i], xv[(o*n+best)*inner+i]
				better := v > b
				if !r.max {
					better = v < b
				}
				if better || (r.last && v == b) {
					best = j
				}
			}
			res[o*inner+i] = int64(best)
		}
	}
}

// boolMinMax is ReduceMax (any) and ReduceMin (all) over bool data (opset
// 20), run as a float64 reduction of 0/1.
func (r *reduce) boolMinMax(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	f, _ := tensor.AsFloat64(in[0])
	num := append([]*tensor.Tensor{{DType: tensor.Float64, Shape: in[0].Shape, Data: f}}, in[1:]...)
	out, err := r.RunWith(nil, num)
	if err != nil {
		return nil, err
	}
	v := out[0].Float64s()
	b := make([]bool, len(v))
	for i, x := range v {
		b[i] = x != 0
	}
	return []*tensor.Tensor{tensor.From(out[0].Shape, b)}, nil
}
