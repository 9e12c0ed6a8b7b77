package nn

import (
	"math"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Linear quantization: QuantizeLinear and DequantizeLinear (per-tensor,
// per-axis and blocked; 16-, 8-, 4- and 2-bit integers, float8 and float4),
// DynamicQuantizeLinear and QLinearMatMul.

func init() {
	ops.Define(ops.Desc{Type: "QuantizeLinear", Since: 10, Grad: ops.NotDifferentiable("quantization rounds to integers"), Kernel: newQuantizeLinear})
	ops.Define(ops.Desc{Type: "DequantizeLinear", Since: 10, Grad: ops.NotDifferentiable("its data input is a quantized integer tensor"), Kernel: newDequantizeLinear})
	ops.Define(ops.Desc{Type: "DynamicQuantizeLinear", Since: 11, Grad: ops.NotDifferentiable("quantization rounds to integers"), Kernel: func(*ops.Config) (ops.Op, error) { return ops.OpFunc(runDynamicQuantizeLinear), nil }})
	ops.Define(ops.Desc{Type: "QLinearMatMul", Since: 10, Grad: ops.NotDifferentiable("quantized integer tensors"), Kernel: func(*ops.Config) (ops.Op, error) { return ops.OpFunc(runQLinearMatMul), nil }})
}

// qRange is the saturation range of an integer quantized type.
func qRange(dt tensor.DType) (lo, hi float64, ok bool) {
	switch dt {
	case tensor.Uint8:
		return 0, 255, true
	case tensor.Int8:
		return -128, 127, true
	case tensor.Uint16:
		return 0, 65535, true
	case tensor.Int16:
		return -32768, 32767, true
	case tensor.Int32:
		return math.MinInt32, math.MaxInt32, true
	case tensor.Uint4:
		return 0, 15, true
	case tensor.Int4:
		return -8, 7, true
	case tensor.Uint2:
		return 0, 3, true
	case tensor.Int2:
		return -2, 1, true
	}
	return 0, 0, false
}

// paramIndex maps every element of x to its element of a scale/zero-point
// tensor: one value (per tensor), a 1-D tensor along axis (per axis), or a
// tensor of x's rank whose axis dim is ceil(dim/block) (blocked).
func paramIndex(x, p *tensor.Tensor, axisAttr, block int64, which int) ([]int, error) {
	n := x.Len()
	idx := make([]int, n)
	if p.Len() == 1 && p.Rank() <= 1 {
		return idx, nil
	}
	axis, err := ops.NormAxis(int(axisAttr), x.Rank())
	if err != nil {
		return nil, ops.BadAttr("axis", "%v", err)
	}
	st := tensor.Strides(x.Shape)
	switch {
	case p.Rank() == 1 && block == 0:
		if p.Shape[0] != x.Shape[axis] {
			return nil, ops.BadInput(which, "per-axis scale %v does not match axis %d of %v", p, axis, x)
		}
		for i := range idx {
			idx[i] = i / st[axis] % x.Shape[axis]
		}
	case p.Rank() == x.Rank() && block > 0:
		pst := tensor.Strides(p.Shape)
		for d := range x.Shape {
			want := x.Shape[d]
			if d == axis {
				want = int((int64(x.Shape[d]) + block - 1) / block)
			}
			if p.Shape[d] != want {
				return nil, ops.BadInput(which, "blocked scale %v does not fit %v with block size %d on axis %d", p, x, block, axis)
			}
		}
		for i := range idx {
			off := 0
			for d := range x.Shape {
				c := i / st[d] % x.Shape[d]
				if d == axis {
					c /= int(block)
				}
				off += c * pst[d]
			}
			idx[i] = off
		}
	default:
		return nil, ops.BadInput(which, "scale %v fits neither per-tensor, per-axis nor blocked quantization of %v", p, x)
	}
	return idx, nil
}

func newQuantizeLinear(c *ops.Config) (ops.Op, error) {
	axis, block := c.Attrs.Int("axis", 1), c.Attrs.Int("block_size", 0)
	outDT := tensor.DType(c.Attrs.Int("output_dtype", 0))
	saturate := c.Attrs.Int("saturate", 1) != 0
	// precision (opset 25) sets the type of the division x / y_scale: 0 is
	// the scale's type
	precision := tensor.DType(c.Attrs.Int("precision", 0))
	switch precision {
	case tensor.Undefined, tensor.Float32, tensor.Float64:
	default:
		return nil, ops.BadAttr("precision", "%v is not supported (float32 or float64)", precision)
	}
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		x, scale := in[0], in[1]
		var zp *tensor.Tensor
		if len(in) > 2 {
			zp = in[2]
		}
		dt := tensor.Uint8
		switch {
		case zp != nil:
			dt = zp.DType
		case outDT != tensor.Undefined:
			dt = outDT
		}
		lo, hi, ok := qRange(dt)
		miniFloat := dt.IsMiniFloat()
		if (!ok && !miniFloat) || dt == tensor.Int32 {
			return nil, ops.BadInput(2, "QuantizeLinear to %v is not supported", dt)
		}
		si, err := paramIndex(x, scale, axis, block, 1)
		if err != nil {
			return nil, err
		}
		xv, err := tensor.AsFloat64(x)
		if err != nil {
			return nil, ops.BadInput(0, "%v", err)
		}
		sv, err := tensor.AsFloat64(scale)
		if err != nil {
			return nil, ops.BadInput(1, "%v", err)
		}
		var zv []float64
		if zp != nil {
			if zv, err = tensor.AsFloat64(zp); err != nil || len(zv) != len(sv) {
				return nil, ops.BadInput(2, "zero point %v must match scale %v", zp, scale)
			}
		}
		out := make([]float64, len(xv))
		for i, f := range xv {
			q := f / sv[si[i]]
			if precision == tensor.Float32 || precision == tensor.Undefined && scale.DType == tensor.Float32 {
				q = float64(float32(f) / float32(sv[si[i]]))
			}
			if miniFloat { // float8/float4: one rounding, in the cast to the type
				if zv != nil {
					q += zv[si[i]]
				}
				out[i] = q
				continue
			}
			q = math.RoundToEven(q)
			if zv != nil {
				q += zv[si[i]]
			}
			out[i] = math.Max(lo, math.Min(hi, q))
		}
		if dt.IsLowPrecision() {
			data, _ := tensor.FromFloat64s(dt, out, saturate)
			return []*tensor.Tensor{{DType: dt, Shape: append([]int{}, x.Shape...), Data: data}}, nil
		}
		y, err := elems.FromFloats(dt, x.Shape, out)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{y}, nil
	}), nil
}

func newDequantizeLinear(c *ops.Config) (ops.Op, error) {
	axis, block := c.Attrs.Int("axis", 1), c.Attrs.Int("block_size", 0)
	outDT := tensor.DType(c.Attrs.Int("output_dtype", 0))
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		x, scale := in[0], in[1]
		if _, _, ok := qRange(x.DType); !ok && !x.DType.IsMiniFloat() {
			return nil, ops.BadInput(0, "DequantizeLinear of %v is not supported", x)
		}
		si, err := paramIndex(x, scale, axis, block, 1)
		if err != nil {
			return nil, err
		}
		xv, _ := tensor.AsFloat64(x)
		sv, err := tensor.AsFloat64(scale)
		if err != nil || !scale.DType.IsFloat() {
			return nil, ops.BadInput(1, "DequantizeLinear scale must be float, got %v", scale)
		}
		var zv []float64
		if len(in) > 2 && in[2] != nil {
			if zv, err = tensor.AsFloat64(in[2]); err != nil || len(zv) != len(sv) {
				return nil, ops.BadInput(2, "zero point %v must match scale %v", in[2], scale)
			}
		}
		dt := scale.DType
		if outDT != tensor.Undefined {
			dt = outDT
		}
		out := make([]float64, len(xv))
		for i, f := range xv {
			if zv != nil {
				f -= zv[si[i]]
			}
			out[i] = f * sv[si[i]]
			if dt == tensor.Float32 {
				out[i] = float64(float32(f) * float32(sv[si[i]]))
			}
		}
		y, err := elems.FromFloats(dt, x.Shape, out)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{y}, nil
	}), nil
}

// runDynamicQuantizeLinear quantizes float32 x to uint8 with a scale and zero
// point chosen from its range (extended to include 0), in float32
// arithmetic as the specification's function body does.
func runDynamicQuantizeLinear(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if x.DType != tensor.Float32 {
		return nil, ops.BadInput(0, "DynamicQuantizeLinear needs float32, got %v", x)
	}
	xv := x.Float32s()
	var mx, mn float32
	for _, f := range xv {
		mx, mn = max(mx, f), min(mn, f)
	}
	r := mx - mn
	if r == 0 {
		r = 1
	}
	scale := r / 255
	zp := float32(math.RoundToEven(float64(max(0, min(255, 0-mn/scale)))))
	y := make([]uint8, len(xv))
	for i, f := range xv {
		q := float32(math.RoundToEven(float64(f/scale))) + zp
		y[i] = uint8(max(0, min(255, q)))
	}
	return []*tensor.Tensor{tensor.From(x.Shape, y), tensor.Scalar(scale), tensor.Scalar(uint8(zp))}, nil
}

// runQLinearMatMul multiplies two quantized matrices (batched, numpy
// broadcasting) in exact integer arithmetic and requantizes the product with
// a·b/y scale factors computed at the scales' precision.
func runQLinearMatMul(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 8); err != nil {
		return nil, err
	}
	a, b := in[0], in[3]
	if a.Rank() < 2 || b.Rank() < 2 {
		return nil, ops.BadInput(0, "QLinearMatMul needs matrices, got %v and %v", a, b)
	}
	num := func(i int) ([]float64, error) {
		v, err := tensor.AsFloat64(in[i])
		if err != nil {
			return nil, ops.BadInput(i, "%v", err)
		}
		return v, nil
	}
	av, _ := num(0)
	bv, _ := num(3)
	params := make([][]float64, 8)
	for _, i := range []int{1, 2, 4, 5, 6, 7} {
		var err error
		if params[i], err = num(i); err != nil {
			return nil, err
		}
	}
	if len(params[6]) != 1 || len(params[7]) != 1 {
		return nil, ops.BadInput(6, "QLinearMatMul output scale and zero point must be scalars")
	}
	dt := in[7].DType
	lo, hi, ok := qRange(dt)
	if !ok {
		return nil, ops.BadInput(7, "QLinearMatMul output %v not supported", in[7])
	}
	M, K := a.Shape[a.Rank()-2], a.Shape[a.Rank()-1]
	K2, N := b.Shape[b.Rank()-2], b.Shape[b.Rank()-1]
	if K != K2 {
		return nil, ops.BadInput(3, "QLinearMatMul %v × %v: inner dims differ", a, b)
	}
	batch, err := tensor.BroadcastShapes(a.Shape[:a.Rank()-2], b.Shape[:b.Rank()-2])
	if err != nil {
		return nil, ops.BadInput(3, "QLinearMatMul: %v", err)
	}
	ia := tensor.BroadcastIndex(a.Shape[:a.Rank()-2], batch)
	ib := tensor.BroadcastIndex(b.Shape[:b.Rank()-2], batch)
	// per tensor, per row of a (M values) or per column of b (N values)
	pick := func(p []float64, i, n int) float64 {
		if len(p) == 1 {
			return p[0]
		}
		return p[i%n]
	}
	sdt := in[1].DType
	out := make([]float64, len(ia)*M*N)
	for bi := range ia {
		ao, bo := ia[bi]*M*K, ib[bi]*K*N
		for m := 0; m < M; m++ {
			azp, as := pick(params[2], m, M), pick(params[1], m, M)
			for n := 0; n < N; n++ {
				bzp, bs := pick(params[5], n, N), pick(params[4], n, N)
				var acc int64
				for k := 0; k < K; k++ {
					acc += int64(av[ao+m*K+k]-azp) * int64(bv[bo+k*N+n]-bzp)
				}
				f := as * bs / params[6][0]
				switch sdt {
				case tensor.Float32:
					f = float64(float32(as) * float32(bs) / float32(params[6][0]))
				case tensor.Float16:
					f = roundTo(tensor.Float16, roundTo(tensor.Float16, as*bs)/params[6][0])
				}
				q := math.RoundToEven(float64(acc)*f + params[7][0])
				out[(bi*M+m)*N+n] = math.Max(lo, math.Min(hi, q))
			}
		}
	}
	y, err := elems.FromFloats(dt, append(append([]int{}, batch...), M, N), out)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{y}, nil
}
