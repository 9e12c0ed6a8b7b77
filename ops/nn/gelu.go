package nn

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// GeluErf (domain ai.mtlrun) is the exported GELU pattern the runtime's
// fusion pass collapses when it does not follow a Dense:
//
//	y = x · ½ · (1 + erf(x ⊘ c))
//
// as torch.onnx.export and tf2onnx write it, Div(x, √2) (or Mul(x, 1/√2))
// → Erf → Add(1) → two Muls. It never appears in a model file. Its float32
// results are bit for bit those of the unfused nodes: the same float32
// operations in the same order, and ops/math's Erf kernel (linalg.Erf)
// applied to chunks that start at multiples of actAlign elements, so every
// element takes the same vector or scalar path as in the whole-tensor Erf.
//
// Attributes: scale c (float), form (int 0…5): bit 0 set when the pattern
// multiplies by c instead of dividing; form>>1 says how the products
// associate, with a = 1 + erf(x ⊘ c):
//
//	0: (x·a)·½   (PyTorch)
//	1: x·(a·½)
//	2: (x·½)·a
//
// They differ from each other only where a product underflows or
// overflows, but the fusion keeps the model's order anyway.
func init() {
	ops.Define(ops.Desc{Domain: "ai.mtlrun", Type: "GeluErf", Since: 1, Shape: privateShape, Grad: privateGrad, Traits: ops.Private, Export: privateExport, Kernel: newGeluErf})
	ops.Define(ops.Desc{Domain: "ai.mtlrun", Type: "GeluTanh", Since: 1, Shape: privateShape, Grad: privateGrad, Traits: ops.Private, Export: privateExport, Kernel: newGeluTanh})
}

func newGeluErf(c *ops.Config) (ops.Op, error) {
	form := c.Attrs.Int("form", 0)
	if form < 0 || form >= geluForms {
		return nil, ops.BadAttr("form", "must be 0…%d, got %d", geluForms-1, form)
	}
	return &geluOp{act: actGeluErf + actKind(form), scale: c.Attrs.Float("scale", 1.4142135)}, nil
}

func newGeluTanh(c *ops.Config) (ops.Op, error) {
	form := c.Attrs.Int("form", 0)
	if form < 0 || form >= geluForms {
		return nil, ops.BadAttr("form", "must be 0…%d, got %d", geluForms-1, form)
	}
	return &geluOp{act: actGeluTanh + actKind(form)}, nil
}

// GeluTanh (domain ai.mtlrun) is GELU's tanh approximation as
// torch.onnx.export writes it,
//
//	y = x · ½ · (1 + tanh(β·(x + κ·x³))),  β = float32(√(2/π)), κ = float32(0.044715)
//
// with x³ as Mul(x, Mul(x, x)) (form bit 0 clear) or Pow(x, 3) (set) and
// the products associated as form>>1 says (see GeluErf). Bit for bit the
// unfused nodes' results, as GeluErf is.
var (
	geluBeta  = float32(math.Sqrt(2 / math.Pi))
	geluKappa = float32(0.044715)
)

// geluForms is how many actGeluErf+form (and actGeluTanh+form) kinds
// there are.
const geluForms = 6

type geluOp struct {
	act   actKind
	scale float32
}

func (g *geluOp) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return g.RunWith(nil, in) }

func (g *geluOp) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if x.DType != tensor.Float32 {
		return nil, fmt.Errorf("GeluErf needs float32, got %v", x.DType)
	}
	out, err := ar.Empty(tensor.Float32, x.Shape) // every element is written
	if err != nil {
		return nil, err
	}
	o := out.Float32s()
	copy(o, x.Float32s())
	applyAct(o, g.act, g.scale)
	return ar.Outputs(out), nil
}

// geluErfChunk is the scratch size of geluErf, a multiple of actAlign.
const geluErfChunk = 512

// geluErf applies GELU's erf form in place (see GeluErf for form and c).
// x must start at a multiple of actAlign elements of the tensor it is part
// of, for results bitwise equal to the unfused nodes.
func geluErf(x []float32, c float32, form int) {
	var buf [geluErfChunk]float32
	mul := form&1 != 0
	// one vector pass over all of x on a SIMD kernel set (the same
	// float32 operations, so the same bits); without one, the loop below
	x = x[linalg.GeluErfPrefix(x, c, !mul, form>>1):]
	for len(x) > 0 {
		n := min(len(x), geluErfChunk)
		xs, t := x[:n], buf[:n]
		if mul {
			for i, v := range xs {
				t[i] = v * c
			}
		} else {
			for i, v := range xs {
				t[i] = v / c
			}
		}
		linalg.Erf(t)
		geluTail(xs, t, form>>1)
		x = x[n:]
	}
}

// geluTanh applies GELU's tanh form in place (see GeluTanh for form), with
// the same alignment requirement as geluErf.
func geluTanh(x []float32, form int) {
	var buf [geluErfChunk]float32
	for len(x) > 0 {
		n := min(len(x), geluErfChunk)
		xs, t := x[:n], buf[:n]
		for i, v := range xs {
			var c float32
			if form&1 != 0 {
				c = float32(math.Pow(float64(v), 3))
			} else {
				xx := float32(v * v)
				c = v * xx
			}
			k := float32(geluKappa * c)
			s := float32(v + k)
			t[i] = geluBeta * s
		}
		linalg.Tanh(t)
		geluTail(xs, t, form>>1)
		x = x[n:]
	}
}

// geluTail sets xs[i] to the product of xs[i], 1 + t[i] and ½ in the
// association order says (see GeluErf).
func geluTail(xs, t []float32, order int) {
	{
		switch order {
		case 0:
			for i, v := range xs {
				p := float32(v * float32(t[i]+1))
				xs[i] = p * 0.5
			}
		case 1:
			for i, v := range xs {
				h := float32(float32(t[i]+1) * 0.5)
				xs[i] = v * h
			}
		default:
			for i, v := range xs {
				h := float32(v * 0.5)
				xs[i] = h * float32(t[i]+1)
			}
		}
	}
}
