package nn

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// LayerNormPattern (domain ai.mtlrun) is the decomposed layer
// normalisation over the last axis that exporters write instead of
// LayerNormalization,
//
//	m = ReduceMean(x, -1); d = x − m; v = ReduceMean(Pow(d, 2), -1)
//	y = d / Sqrt(v + eps) · gamma + beta
//
// which the runtime's fusion pass collapses into one node with inputs x,
// gamma, beta (gamma and beta of length 1 or the last dimension) and
// attribute epsilon. It never appears in a model file. Its float32 results
// are bit for bit those of the nine unfused nodes: the means are float64
// sums of the float32 values divided by the count and rounded, as
// ReduceMean computes them, the square is d·d as Pow(d, 2) computes it,
// and every other step is the same float32 operation in the same order.
func init() {
	ops.Define(ops.Desc{Domain: "ai.mtlrun", Type: "LayerNormPattern", Since: 1, Shape: privateShape, Grad: privateGrad, Traits: ops.Private, Export: privateExport, Kernel: newLNPattern})
}

func newLNPattern(c *ops.Config) (ops.Op, error) {
	return &lnPattern{eps: c.Attrs.Float("epsilon", 1e-5)}, nil
}

type lnPattern struct{ eps float32 }

func (l *lnPattern) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return l.RunWith(nil, in) }

func (l *lnPattern) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 3); err != nil {
		return nil, err
	}
	x, gamma, beta := in[0], in[1], in[2]
	if x.DType != tensor.Float32 || gamma.DType != tensor.Float32 || beta.DType != tensor.Float32 {
		return nil, fmt.Errorf("LayerNormPattern needs float32 x, gamma and beta, got %v, %v and %v", x.DType, gamma.DType, beta.DType)
	}
	if x.Rank() < 1 {
		return nil, ops.BadInput(0, "x must have rank ≥ 1, got a scalar")
	}
	n := x.Shape[x.Rank()-1]
	for i, p := range []*tensor.Tensor{gamma, beta} {
		if p.Rank() != 1 || (p.Len() != n && p.Len() != 1) {
			return nil, ops.BadInput(i+1, "shape %v must be [%d] or [1]", p.Shape, n)
		}
	}
	out, err := ar.Empty(tensor.Float32, x.Shape) // every element is written
	if err != nil {
		return nil, err
	}
	if n > 0 {
		layerNormRows(x.Float32s(), out.Float32s(), n, gamma.Float32s(), beta.Float32s(), l.eps)
	}
	return ar.Outputs(out), nil
}

// layerNormRows normalises each n-element row of x into y (see
// LayerNormPattern for why each step is written as it is).
func layerNormRows(x, y []float32, n int, gamma, beta []float32, eps float32) {
	gs, bs := 1, 1
	if len(gamma) == 1 {
		gs = 0
	}
	if len(beta) == 1 {
		bs = 0
	}
	for r := 0; r+n <= len(x); r += n {
		xr, yr := x[r:r+n], y[r:r+n]
		var sum float64
		for _, v := range xr {
			sum += float64(v)
		}
		mean := float32(sum / float64(n))
		var sq float64
		for i, v := range xr {
			d := v - mean
			yr[i] = d
			sq += float64(float32(d * d))
		}
		s := float32(math.Sqrt(float64(float32(float32(sq/float64(n)) + eps))))
		for i, d := range yr {
			q := float32(d / s)
			p := float32(q * gamma[i*gs])
			yr[i] = p + beta[i*bs]
		}
	}
}
