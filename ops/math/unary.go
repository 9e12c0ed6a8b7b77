package math

import (
	gomath "math"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// intOp names the integer semantics of a unary op (iNone: floats only).
type intOp int

const (
	iNone intOp = iota
	iAbs
	iNeg
	iSign
	iRelu
)

// unaryDef is one unary element-wise op. f64 defines it on floats (float32
// is computed through float64 and rounded once, float16/bfloat16 through
// float32); f32, when set, is a direct float32 loop with the same result.
type unaryDef struct {
	f64   func(float64) float64
	f32   func(o, x []float32)
	iop   intOp
	cheap bool // f32 is a memory-bound loop: split over threads only when huge
}

// The unary element-wise family: each op is one entry below holding its
// kernel (f64/f32, or build for ops with attributes), its gradient rule or
// waiver, and its traits; init defines them all with ShapeSameAsInput. To add
// a unary op, add an entry here and a case to unary_test.go; the gradient
// check and the registry test pick it up from the descriptor.
type unaryEntry struct {
	since  int
	def    unaryDef                            // ops without attributes
	build  func(graph.Attrs) (unaryDef, error) // ops whose definition depends on attributes
	grad   ops.GradRule
	traits ops.Traits
}

// piecewiseConstant is the gradient waiver shared by several unary ops.
var piecewiseConstant = ops.ZeroGradient("piecewise constant: the gradient is zero wherever it exists")

func unaryOps() map[string]unaryEntry {
	d := ops.Derivative
	return map[string]unaryEntry{
		"Abs": {def: unaryDef{f64: gomath.Abs, iop: iAbs, cheap: true, f32: func(o, x []float32) {
			o = o[:len(x)]
			for i, v := range x {
				o[i] = float32(gomath.Abs(float64(v)))
			}
		}}, grad: d(func(x, _ float64, _ graph.Attrs) float64 {
			switch {
			case x > 0:
				return 1
			case x < 0:
				return -1
			}
			return 0
		})},
		"Neg": {def: unaryDef{f64: func(x float64) float64 { return -x }, iop: iNeg, cheap: true, f32: func(o, x []float32) {
			o = o[:len(x)]
			for i, v := range x {
				o[i] = -v
			}
		}}, grad: d(func(_, _ float64, _ graph.Attrs) float64 { return -1 })},
		"Sqrt": {def: unaryDef{f64: gomath.Sqrt, f32: func(o, x []float32) {
			o = o[:len(x)]
			for i, v := range x {
				o[i] = float32(gomath.Sqrt(float64(v)))
			}
		}}, grad: d(func(_, y float64, _ graph.Attrs) float64 { return 0.5 / y }).Positive()},
		"Exp": {def: unaryDef{f64: gomath.Exp, f32: func(o, x []float32) {
			o = o[:len(x)]
			for i, v := range x {
				o[i] = float32(gomath.Exp(float64(v)))
			}
		}}, grad: d(func(_, y float64, _ graph.Attrs) float64 { return y })},
		"Log":        {def: unaryDef{f64: gomath.Log}, grad: d(func(x, _ float64, _ graph.Attrs) float64 { return 1 / x }).Positive()},
		"Reciprocal": {def: unaryDef{f64: func(x float64) float64 { return 1 / x }}, grad: d(func(_, y float64, _ graph.Attrs) float64 { return -y * y }).Positive()},
		"Floor":      {def: unaryDef{f64: gomath.Floor}, grad: piecewiseConstant},
		"Ceil":       {def: unaryDef{f64: gomath.Ceil}, grad: piecewiseConstant},
		"Round":      {def: unaryDef{f64: gomath.RoundToEven}, grad: piecewiseConstant},
		"Sign":       {def: unaryDef{f64: sign, iop: iSign}, grad: piecewiseConstant},
		// float32 Erf is ops/linalg's vector kernel (within 3e-7 of erf;
		// float64 math.Erf per element cost ~30x more)
		"Erf": {def: unaryDef{f64: gomath.Erf, f32: func(o, x []float32) {
			copy(o, x)
			linalg.Erf(o[:len(x)])
		}}, grad: d(func(x, _ float64, _ graph.Attrs) float64 {
			return 2 / gomath.Sqrt(gomath.Pi) * gomath.Exp(-x*x)
		})},
		"Sin":   {def: unaryDef{f64: gomath.Sin}, grad: d(func(x, _ float64, _ graph.Attrs) float64 { return gomath.Cos(x) })},
		"Cos":   {def: unaryDef{f64: gomath.Cos}, grad: d(func(x, _ float64, _ graph.Attrs) float64 { return -gomath.Sin(x) })},
		"Tan":   {def: unaryDef{f64: gomath.Tan}, grad: d(func(_, y float64, _ graph.Attrs) float64 { return 1 + y*y }).Within(-1.2, 1.2)},
		"Asin":  {def: unaryDef{f64: gomath.Asin}, grad: d(func(x, _ float64, _ graph.Attrs) float64 { return 1 / gomath.Sqrt(1-x*x) }).Within(-0.9, 0.9)},
		"Acos":  {def: unaryDef{f64: gomath.Acos}, grad: d(func(x, _ float64, _ graph.Attrs) float64 { return -1 / gomath.Sqrt(1-x*x) }).Within(-0.9, 0.9)},
		"Atan":  {def: unaryDef{f64: gomath.Atan}, grad: d(func(x, _ float64, _ graph.Attrs) float64 { return 1 / (1 + x*x) })},
		"Sinh":  {def: unaryDef{f64: gomath.Sinh}, grad: d(func(x, _ float64, _ graph.Attrs) float64 { return gomath.Cosh(x) })},
		"Cosh":  {def: unaryDef{f64: gomath.Cosh}, grad: d(func(x, _ float64, _ graph.Attrs) float64 { return gomath.Sinh(x) })},
		"Asinh": {def: unaryDef{f64: gomath.Asinh}, grad: d(func(x, _ float64, _ graph.Attrs) float64 { return 1 / gomath.Sqrt(x*x+1) })},
		"Acosh": {def: unaryDef{f64: gomath.Acosh}, grad: d(func(x, _ float64, _ graph.Attrs) float64 { return 1 / gomath.Sqrt(x*x-1) }).Within(1.1, 3)},
		"Atanh": {def: unaryDef{f64: gomath.Atanh}, grad: d(func(x, _ float64, _ graph.Attrs) float64 { return 1 / (1 - x*x) }).Within(-0.9, 0.9)},
		// float32 Sigmoid and Tanh are ops/linalg's vector kernels, so that
		// a fused Dense+activation gives bitwise the unfused result.
		"Tanh": {def: unaryDef{f64: gomath.Tanh, cheap: true, f32: func(o, x []float32) {
			copy(o, x)
			linalg.Tanh(o[:len(x)])
		}}, grad: d(func(_, y float64, _ graph.Attrs) float64 { return 1 - y*y }), traits: ops.Activation},
		"Sigmoid": {def: unaryDef{f64: sigmoid, cheap: true, f32: func(o, x []float32) {
			copy(o, x)
			linalg.Sigmoid(o[:len(x)])
		}}, grad: d(func(_, y float64, _ graph.Attrs) float64 { return y * (1 - y) }), traits: ops.Activation},
		"Relu": {def: unaryDef{f64: func(x float64) float64 { return gomath.Max(x, 0) }, iop: iRelu, cheap: true, f32: reluF32},
			grad: d(func(x, _ float64, _ graph.Attrs) float64 { return step(x > 0) }), traits: ops.Activation},
		"Softplus": {def: unaryDef{f64: softplus}, grad: d(func(x, _ float64, _ graph.Attrs) float64 { return 1 / (1 + gomath.Exp(-x)) })},
		"Softsign": {def: unaryDef{f64: func(x float64) float64 { return x / (1 + gomath.Abs(x)) }},
			grad: d(func(x, _ float64, _ graph.Attrs) float64 { d := 1 + gomath.Abs(x); return 1 / (d * d) })},
		"HardSwish": {def: unaryDef{f64: func(x float64) float64 {
			return x * gomath.Max(0, gomath.Min(1, x/6+0.5))
		}}, grad: d(func(x, _ float64, _ graph.Attrs) float64 {
			switch {
			case x < -3:
				return 0
			case x > 3:
				return 1
			}
			return (2*x + 3) / 6
		})},
		"Mish": {def: unaryDef{f64: func(x float64) float64 { return x * gomath.Tanh(softplus(x)) }}, grad: d(func(x, _ float64, _ graph.Attrs) float64 {
			t := gomath.Tanh(softplus(x))
			return t + x*(1-t*t)*sigmoid(x)
		})},

		"LeakyRelu": {build: func(a graph.Attrs) (unaryDef, error) {
			alpha := float64(a.Float("alpha", 0.01))
			a32 := float32(alpha)
			return unaryDef{
				cheap: true,
				f64: func(x float64) float64 {
					if x < 0 {
						return alpha * x
					}
					return x
				},
				f32: func(o, x []float32) {
					o = o[:len(x)]
					for i, v := range x {
						if v < 0 {
							v *= a32
						}
						o[i] = v
					}
				},
			}, nil
		}, grad: d(func(x, _ float64, a graph.Attrs) float64 {
			if x > 0 {
				return 1
			}
			return float64(a.Float("alpha", 0.01))
		}), traits: ops.Activation},
		"Elu": {build: func(a graph.Attrs) (unaryDef, error) {
			alpha := float64(a.Float("alpha", 1))
			return unaryDef{f64: func(x float64) float64 {
				if x < 0 {
					return alpha * (gomath.Exp(x) - 1)
				}
				return x
			}}, nil
		}, grad: d(func(x, y float64, a graph.Attrs) float64 {
			if x > 0 {
				return 1
			}
			return y + float64(a.Float("alpha", 1))
		})},
		"Selu": {build: func(a graph.Attrs) (unaryDef, error) {
			alpha := float64(a.Float("alpha", 1.67326319217681884765625))
			gamma := float64(a.Float("gamma", 1.05070102214813232421875))
			return unaryDef{f64: func(x float64) float64 {
				if x <= 0 {
					return gamma * alpha * (gomath.Exp(x) - 1)
				}
				return gamma * x
			}}, nil
		}, grad: d(func(x, _ float64, a graph.Attrs) float64 {
			gamma := float64(a.Float("gamma", 1.05070102214813232421875))
			if x > 0 {
				return gamma
			}
			return gamma * float64(a.Float("alpha", 1.67326319217681884765625)) * gomath.Exp(x)
		})},
		"Celu": {build: func(a graph.Attrs) (unaryDef, error) {
			alpha := float64(a.Float("alpha", 1))
			return unaryDef{f64: func(x float64) float64 {
				return gomath.Max(0, x) + gomath.Min(0, alpha*(gomath.Exp(x/alpha)-1))
			}}, nil
		}, grad: d(func(x, _ float64, a graph.Attrs) float64 {
			if x > 0 {
				return 1
			}
			return gomath.Exp(x / float64(a.Float("alpha", 1)))
		})},
		"HardSigmoid": {build: func(a graph.Attrs) (unaryDef, error) {
			alpha := float64(a.Float("alpha", 0.2))
			beta := float64(a.Float("beta", 0.5))
			return unaryDef{f64: func(x float64) float64 {
				return gomath.Max(0, gomath.Min(1, alpha*x+beta))
			}}, nil
		}, grad: d(func(x, _ float64, a graph.Attrs) float64 {
			alpha, beta := float64(a.Float("alpha", 0.2)), float64(a.Float("beta", 0.5))
			if v := alpha*x + beta; v > 0 && v < 1 {
				return alpha
			}
			return 0
		})},
		"ThresholdedRelu": {build: func(a graph.Attrs) (unaryDef, error) {
			alpha := float64(a.Float("alpha", 1))
			return unaryDef{f64: func(x float64) float64 {
				if x > alpha {
					return x
				}
				return 0
			}}, nil
		}, grad: d(func(x, _ float64, a graph.Attrs) float64 { return step(x > float64(a.Float("alpha", 1))) })},
		// Shrink (opset 9): y = x+bias for x < -lambd, else x-bias for
		// x > lambd, else 0 (the first test wins when lambd < 0, as in the
		// ONNX reference). Float inputs only.
		"Shrink": {since: 9, build: func(a graph.Attrs) (unaryDef, error) {
			lambd, bias := float64(a.Float("lambd", 0.5)), float64(a.Float("bias", 0))
			return unaryDef{f64: func(x float64) float64 {
				switch {
				case x < -lambd:
					return x + bias
				case x > lambd:
					return x - bias
				}
				return 0
			}}, nil
		}, grad: d(func(x, _ float64, a graph.Attrs) float64 {
			lambd := float64(a.Float("lambd", 0.5))
			return step(x < -lambd || x > lambd)
		})},
		"Gelu": {since: 20, build: func(a graph.Attrs) (unaryDef, error) {
			var def unaryDef
			switch approx := a.String("approximate", "none"); approx {
			case "none":
				def.f64 = func(x float64) float64 { return 0.5 * x * (1 + gomath.Erf(x/gomath.Sqrt2)) }
			case "tanh":
				k := gomath.Sqrt(2 / gomath.Pi)
				def.f64 = func(x float64) float64 { return 0.5 * x * (1 + gomath.Tanh(k*(x+0.044715*x*x*x))) }
			default:
				return def, ops.BadAttr("approximate", "must be \"none\" or \"tanh\", got %q", approx)
			}
			return def, nil
		}, grad: d(geluDerivative)},
	}
}

// geluDerivative is d Gelu(x)/dx for either form of the approximate
// attribute.
func geluDerivative(x, _ float64, a graph.Attrs) float64 {
	if a.String("approximate", "none") == "tanh" {
		k := gomath.Sqrt(2 / gomath.Pi)
		th := gomath.Tanh(k * (x + 0.044715*x*x*x))
		return 0.5*(1+th) + 0.5*x*(1-th*th)*k*(1+3*0.044715*x*x)
	}
	return 0.5*(1+gomath.Erf(x/gomath.Sqrt2)) + x*gomath.Exp(-x*x/2)/gomath.Sqrt(2*gomath.Pi)
}

func init() {
	for name, u := range unaryOps() {
		u := u
		f := func(c *ops.Config) (ops.Op, error) { return unaryKernel(u.def, c.Threads), nil }
		if u.build != nil {
			f = func(c *ops.Config) (ops.Op, error) {
				def, err := u.build(c.Attrs)
				if err != nil {
					return nil, err
				}
				return unaryKernel(def, c.Threads), nil
			}
		}
		ops.Define(ops.Desc{Type: name, Since: max(u.since, 1), Kernel: f, Shape: ops.ShapeSameAsInput,
			Grad: u.grad, Traits: ops.Elementwise | u.traits})
	}

	// Identity's gradient is autodiff's pass-through rule.
	ops.Define(ops.Desc{Type: "Identity", Since: 1, Shape: ops.ShapeSameAsInput, Traits: ops.Elementwise,
		Kernel: fixed(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 1); err != nil {
				return nil, err
			}
			// A pure view: same data, its own header.
			y, err := ar.View(in[0], in[0].Shape)
			if err != nil {
				return nil, ops.BadInput(0, "%v", err)
			}
			return ar.Outputs(y), nil
		})})
	isNaN := func(x float64) bool { return x != x }
	boolOut := ops.ZeroGradient("bool output")
	ops.Define(ops.Desc{Type: "IsNaN", Since: 9, Shape: ops.ShapeSameAsInputBool, Grad: boolOut, Traits: ops.Elementwise,
		Kernel: fixed(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 1); err != nil {
				return nil, err
			}
			r, err := floatPredicate(ar, in[0], isNaN)
			return one(ar, r, err)
		})})
	ops.Define(ops.Desc{Type: "IsInf", Since: 10, Shape: ops.ShapeSameAsInputBool, Grad: boolOut, Traits: ops.Elementwise,
		Kernel: func(c *ops.Config) (ops.Op, error) {
			neg, pos := c.Attrs.Int("detect_negative", 1) != 0, c.Attrs.Int("detect_positive", 1) != 0
			isInf := func(x float64) bool {
				return (pos && gomath.IsInf(x, 1)) || (neg && gomath.IsInf(x, -1))
			}
			return kernel(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
				if err := ops.NeedInputs(in, 1); err != nil {
					return nil, err
				}
				r, err := floatPredicate(ar, in[0], isInf)
				return one(ar, r, err)
			}), nil
		}})
}

func step(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// unaryKernel is the kernel of a unary op with a Threads budget.
func unaryKernel(def unaryDef, threads int) kernel {
	d := &def // one heap copy per node: the hot path passes the pointer
	return func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		r, err := unary(ar, d, threads, in[0])
		return one(ar, r, err)
	}
}

// reluF32 is o[i] = max(x[i], 0) bit for bit as Go's builtin max computes
// it (negatives and -0 give +0; a NaN stays NaN with its sign bit cleared)
// in the shape of LeakyRelu's loop, which the compiler makes about 3x
// faster than the builtin's NaN and signed-zero handling.
func reluF32(o, x []float32) {
	o = o[:len(x)]
	for i, v := range x {
		if v <= 0 {
			v = 0
		} else if v != v {
			v = gomath.Float32frombits(gomath.Float32bits(v) &^ (1 << 31))
		}
		o[i] = v
	}
}

func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return x // 0, -0 or NaN
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + gomath.Exp(-x))
	}
	e := gomath.Exp(x)
	return e / (1 + e)
}

func softplus(x float64) float64 {
	if x > 0 {
		return x + gomath.Log1p(gomath.Exp(-x))
	}
	return gomath.Log1p(gomath.Exp(x))
}

// unary applies def to x, returning a tensor from ar of x's dtype and shape.
// Large float32 inputs are split over threads.
func unary(ar *ops.Arena, def *unaryDef, threads int, x *tensor.Tensor) (*tensor.Tensor, error) {
	if err := lenMatches(0, x, tensor.DataLen(x.Data)); err != nil {
		return nil, err
	}
	switch d := x.Data.(type) {
	case []float32:
		r, err := ar.Empty(tensor.Float32, x.Shape)
		if err != nil {
			return nil, err
		}
		if splits(threads, len(d), def.cheap) {
			fanOut(ewJob{un: def, o: r.Data.([]float32), x: d}, len(d), threads)
		} else {
			unaryF32(def, r.Data.([]float32), d)
		}
		return r, nil
	case []float64:
		r, err := ar.Empty(tensor.Float64, x.Shape)
		if err != nil {
			return nil, err
		}
		out := r.Data.([]float64)[:len(d)]
		f := def.f64
		for i, v := range d {
			out[i] = f(v)
		}
		return r, nil
	case []tensor.Float16Bits, []tensor.BFloat16Bits:
		w := toF32(ar, x)
		wd := w.Data.([]float32)
		unaryF32(def, wd, wd)
		return fromF32(ar, w, x.DType), nil
	case []int8:
		return intUnary(ar, def.iop, x, d)
	case []int16:
		return intUnary(ar, def.iop, x, d)
	case []int32:
		return intUnary(ar, def.iop, x, d)
	case []int64:
		return intUnary(ar, def.iop, x, d)
	case []uint8:
		return intUnary(ar, def.iop, x, d)
	case []uint16:
		return intUnary(ar, def.iop, x, d)
	case []uint32:
		return intUnary(ar, def.iop, x, d)
	case []uint64:
		return intUnary(ar, def.iop, x, d)
	}
	return nil, unsupported(0, x)
}

// unaryF32 runs def over float32 data; o may alias x.
func unaryF32(def *unaryDef, o, x []float32) {
	if def.f32 != nil {
		def.f32(o, x)
		return
	}
	f := def.f64
	o = o[:len(x)]
	for i, v := range x {
		o[i] = float32(f(float64(v)))
	}
}

func intUnary[T integer](ar *ops.Arena, op intOp, x *tensor.Tensor, d []T) (*tensor.Tensor, error) {
	if op == iNone {
		return nil, unsupported(0, x)
	}
	r, err := ar.Empty(x.DType, x.Shape)
	if err != nil {
		return nil, err
	}
	out := r.Data.([]T)[:len(d)]
	switch op {
	case iAbs:
		for i, v := range d {
			if v < 0 {
				v = -v
			}
			out[i] = v
		}
	case iNeg:
		for i, v := range d {
			out[i] = -v
		}
	case iSign:
		var one T = 1
		for i, v := range d {
			switch {
			case v > 0:
				out[i] = 1
			case v < 0:
				out[i] = -one
			default:
				out[i] = 0
			}
		}
	case iRelu:
		for i, v := range d {
			out[i] = max(v, 0)
		}
	}
	return r, nil
}

func predicate[T tensor.Float](out []bool, d []T, f func(float64) bool) {
	out = out[:len(d)]
	for i, v := range d {
		out[i] = f(float64(v))
	}
}

// floatPredicate maps a float tensor to bool.
func floatPredicate(ar *ops.Arena, x *tensor.Tensor, f func(float64) bool) (*tensor.Tensor, error) {
	if !x.DType.IsFloat() {
		return nil, unsupported(0, x)
	}
	if err := x.Validate(); err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	r, err := ar.Empty(tensor.Bool, x.Shape)
	if err != nil {
		return nil, err
	}
	out := r.Data.([]bool)
	switch d := x.Data.(type) {
	case []float32:
		predicate(out, d, f)
	case []float64:
		predicate(out, d, f)
	default:
		w := toF32(ar, x)
		predicate(out, w.Data.([]float32), f)
	}
	return r, nil
}
