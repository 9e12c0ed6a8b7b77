package math

import (
	gomath "math"
	"math/rand/v2"
	"sync"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// The random generators RandomNormal, RandomUniform (shape from the
// attribute), RandomNormalLike, RandomUniformLike (shape, and by default
// dtype, from the input) and Bernoulli (a 0/1 draw per input probability).
// With the seed attribute a kernel draws the same sequence in every
// session (the generator advances from run to run); without it each kernel
// is seeded at random. No generator reproduces numpy's or onnxruntime's
// values: the draws follow the distributions, not another runtime's bits.

func init() {
	reg := func(name string, like, normal bool) {
		ops.Define(ops.Desc{Type: name, Since: 1, Grad: ops.NotDifferentiable("random draws: the output does not depend smoothly on any input"), Kernel: func(c *ops.Config) (ops.Op, error) { return newRandom(c, like, normal) }})
	}
	reg("RandomNormal", false, true)
	reg("RandomUniform", false, false)
	reg("RandomNormalLike", true, true)
	reg("RandomUniformLike", true, false)
	ops.Define(ops.Desc{Type: "Bernoulli", Since: 15, Grad: ops.NotDifferentiable("random draws: the output is 0 or 1"), Kernel: newBernoulli})
}

// generator is a seeded PCG behind a mutex (kernels run concurrently).
type generator struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newGenerator(c *ops.Config) *generator {
	seed := rand.Uint64()
	if c.Attrs.Has("seed") {
		seed = uint64(int64(c.Attrs.Float("seed", 0)))
	}
	return &generator{rng: rand.New(rand.NewPCG(seed, 0x6d746c72756e))}
}

type randomOp struct {
	gen          *generator
	like, normal bool
	dtype        tensor.DType
	shape        []int
	mean, scale  float64 // normal
	low, high    float64 // uniform
}

func newRandom(c *ops.Config, like, normal bool) (ops.Op, error) {
	r := &randomOp{gen: newGenerator(c), like: like, normal: normal,
		mean: float64(c.Attrs.Float("mean", 0)), scale: float64(c.Attrs.Float("scale", 1)),
		low: float64(c.Attrs.Float("low", 0)), high: float64(c.Attrs.Float("high", 1))}
	if c.Attrs.Has("dtype") {
		r.dtype = tensor.DType(c.Attrs.Int("dtype", 1))
		if !r.dtype.IsFloat() {
			return nil, ops.BadAttr("dtype", "%v is not a float type", r.dtype)
		}
	} else if !like {
		r.dtype = tensor.Float32
	}
	if !like {
		if !c.Attrs.Has("shape") {
			return nil, ops.BadAttr("shape", "required")
		}
		for _, d := range c.Attrs.Ints("shape") {
			if d < 0 {
				return nil, ops.BadAttr("shape", "negative dim in %v", c.Attrs.Ints("shape"))
			}
			r.shape = append(r.shape, int(d))
		}
		if _, err := tensor.NumElements(r.shape); err != nil {
			return nil, ops.BadAttr("shape", "%v", err)
		}
	}
	return r, nil
}

// Run draws a new tensor.
func (r *randomOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	shape, dt := r.shape, r.dtype
	if r.like {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		shape = in[0].Shape
		if dt == tensor.Undefined {
			dt = in[0].DType
		}
		if !dt.IsFloat() {
			return nil, ops.BadInput(0, "random output dtype %v is not a float type (set dtype)", dt)
		}
	}
	n, _ := tensor.NumElements(shape)
	v := make([]float64, n)
	r.gen.mu.Lock()
	for i := range v {
		if r.normal {
			v[i] = r.mean + r.scale*r.gen.rng.NormFloat64()
		} else {
			v[i] = r.low + (r.high-r.low)*r.gen.rng.Float64()
		}
	}
	r.gen.mu.Unlock()
	out, err := elems.FromFloats(dt, shape, v)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{out}, nil
}

func newBernoulli(c *ops.Config) (ops.Op, error) {
	gen := newGenerator(c)
	dt := tensor.DType(c.Attrs.Int("dtype", 0))
	if c.Attrs.Has("dtype") && !dt.Supported() {
		return nil, ops.BadAttr("dtype", "unsupported dtype %v", dt)
	}
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		p, err := tensor.AsFloat64(x)
		if err != nil || !x.DType.IsFloat() {
			return nil, ops.BadInput(0, "Bernoulli needs float probabilities, got %v", x)
		}
		odt := dt
		if odt == tensor.Undefined {
			odt = x.DType
		}
		v := make([]float64, len(p))
		gen.mu.Lock()
		for i, q := range p {
			if gomath.IsNaN(q) || q < 0 || q > 1 {
				gen.mu.Unlock()
				return nil, ops.BadInput(0, "Bernoulli probability %v outside [0, 1]", q)
			}
			if gen.rng.Float64() < q {
				v[i] = 1
			}
		}
		gen.mu.Unlock()
		out, err := elems.FromFloats(odt, x.Shape, v)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{out}, nil
	}), nil
}
