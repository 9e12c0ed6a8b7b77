package nn

import (
	"math"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// The classification losses NegativeLogLikelihoodLoss and
// SoftmaxCrossEntropyLoss, computed in float64 and returned in the input's
// float dtype.

// The gradients (of the scores; weights are constants): train/autodiff/rules_loss.go.
func init() {
	ops.Define(ops.Desc{Type: "NegativeLogLikelihoodLoss", Since: 12, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) {
		l, err := newLoss(c)
		if err != nil {
			return nil, err
		}
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return l.run(in, false) }), nil
	}})
	ops.Define(ops.Desc{Type: "SoftmaxCrossEntropyLoss", Since: 12, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) {
		l, err := newLoss(c)
		if err != nil {
			return nil, err
		}
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return l.run(in, true) }), nil
	}})
}

type lossOp struct {
	reduction string
	ignore    int64
	hasIgnore bool
}

func newLoss(c *ops.Config) (*lossOp, error) {
	l := &lossOp{reduction: c.Attrs.String("reduction", "mean"), ignore: c.Attrs.Int("ignore_index", 0), hasIgnore: c.Attrs.Has("ignore_index")}
	switch l.reduction {
	case "none", "sum", "mean":
	default:
		return nil, ops.BadAttr("reduction", "unknown reduction %q (want none, sum or mean)", l.reduction)
	}
	return l, nil
}

// run computes the loss of scores x [N, C, d...] against targets [N, d...];
// softmax says x are raw scores (SoftmaxCrossEntropyLoss: log-softmax over
// C first, returned as the second output) rather than log-probabilities.
func (l *lossOp) run(in []*tensor.Tensor, softmax bool) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x, tgt := in[0], in[1]
	if !x.DType.IsFloat() || x.Rank() < 2 {
		return nil, ops.BadInput(0, "loss input must be a float tensor [N, C, ...], got %v", x)
	}
	n, c := x.Shape[0], x.Shape[1]
	inner := elems.Prod(x.Shape[2:])
	want := append([]int{n}, x.Shape[2:]...)
	if !tensor.SameShape(tgt.Shape, want) {
		return nil, ops.BadInput(1, "loss target %v, want shape %v", tgt, want)
	}
	t, err := tensor.AsInt64(tgt)
	if err != nil {
		return nil, ops.BadInput(1, "loss target: %v", err)
	}
	var w []float64
	if len(in) > 2 && in[2] != nil {
		if in[2].Rank() != 1 || in[2].Shape[0] != c {
			return nil, ops.BadInput(2, "loss weight must be [C=%d], got %v", c, in[2])
		}
		if w, err = tensor.AsFloat64(in[2]); err != nil {
			return nil, ops.BadInput(2, "%v", err)
		}
	}
	v, _ := tensor.AsFloat64(x)
	if softmax {
		for b := 0; b < n; b++ {
			for i := 0; i < inner; i++ {
				m := math.Inf(-1)
				for k := 0; k < c; k++ {
					m = math.Max(m, v[(b*c+k)*inner+i])
				}
				s := 0.0
				for k := 0; k < c; k++ {
					s += math.Exp(v[(b*c+k)*inner+i] - m)
				}
				ls := m + math.Log(s)
				for k := 0; k < c; k++ {
					v[(b*c+k)*inner+i] -= ls
				}
			}
		}
	}
	loss := make([]float64, n*inner)
	wsum := 0.0
	for b := 0; b < n; b++ {
		for i := 0; i < inner; i++ {
			k := t[b*inner+i]
			if l.hasIgnore && k == l.ignore {
				continue
			}
			if k < 0 || k >= int64(c) {
				return nil, ops.BadInput(1, "loss target %d out of range [0, %d)", k, c)
			}
			wk := 1.0
			if w != nil {
				wk = w[k]
			}
			loss[b*inner+i] = -v[(b*c+int(k))*inner+i] * wk
			wsum += wk
		}
	}
	var out *tensor.Tensor
	switch l.reduction {
	case "none":
		out, err = elems.FromFloats(x.DType, want, loss)
	default:
		s := 0.0
		for _, f := range loss {
			s += f
		}
		if l.reduction == "mean" {
			s /= wsum
		}
		out, err = elems.FromFloats(x.DType, []int{}, []float64{s})
	}
	if err != nil {
		return nil, err
	}
	if !softmax {
		return []*tensor.Tensor{out}, nil
	}
	lp, err := elems.FromFloats(x.DType, x.Shape, v)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{out, lp}, nil
}
