package autodiff

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/tensor"
)

// Backward rules of the ONNX loss ops NegativeLogLikelihoodLoss and
// SoftmaxCrossEntropyLoss (weight, ignore_index, reductions none, sum and
// mean). Only the scores input is differentiated: the class weights are
// constants of the loss (flow.go's gradInputs), as in PyTorch.

func init() {
	register("NegativeLogLikelihoodLoss", gradLoss, nil)
	register("SoftmaxCrossEntropyLoss", gradLoss, nil)
}

// gradLoss: the loss of an element with target t is −w_t·lp[t], so its
// gradient goes to log-probability t with weight −w_t, times the output
// gradient (none), the scalar's (sum) or the scalar's over Σw of the
// counted elements (mean). SoftmaxCrossEntropyLoss adds the gradient of its
// log_prob output and runs it back through the log-softmax over C.
func gradLoss(c *Ctx) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(c.In))
	softmax := c.Node.OpType == "SoftmaxCrossEntropyLoss"
	var gLP []float64
	if softmax && len(c.GradOut) > 1 && c.GradOut[1] != nil {
		var err error
		if gLP, err = tensor.AsFloat64(c.GradOut[1]); err != nil {
			return nil, err
		}
	}
	if (c.GradOut[0] == nil && gLP == nil) || !c.Need[0] {
		return out, nil
	}
	x := c.In[0]
	n, nc := x.Shape[0], x.Shape[1]
	inner := prod(x.Shape[2:])
	t, err := tensor.AsInt64(c.In[1])
	if err != nil {
		return nil, err
	}
	var w []float64
	if len(c.In) > 2 && c.In[2] != nil {
		if w, err = tensor.AsFloat64(c.In[2]); err != nil {
			return nil, err
		}
	}
	ignore, hasIgnore := c.Attrs.Int("ignore_index", 0), c.Attrs.Has("ignore_index")
	counted := func(k int64) bool { return !hasIgnore || k != ignore }
	weight := func(k int64) float64 {
		if w == nil {
			return 1
		}
		return w[k]
	}
	g := make([]float64, x.Len())
	if gLP != nil {
		copy(g, gLP)
	}
	if c.GradOut[0] != nil {
		gy, err := tensor.AsFloat64(c.GradOut[0])
		if err != nil {
			return nil, err
		}
		red := c.Attrs.String("reduction", "mean")
		scale := 1.0
		if red != "none" {
			scale = gy[0]
			if red == "mean" {
				wsum := 0.0
				for _, k := range t {
					if counted(k) {
						wsum += weight(k)
					}
				}
				scale /= wsum
			}
		}
		for b := 0; b < n; b++ {
			for i := 0; i < inner; i++ {
				k := t[b*inner+i]
				if !counted(k) {
					continue
				}
				if k < 0 || k >= int64(nc) {
					return nil, fmt.Errorf("target %d out of range [0, %d)", k, nc)
				}
				s := scale
				if red == "none" {
					s = gy[b*inner+i]
				}
				g[(b*nc+int(k))*inner+i] -= weight(k) * s
			}
		}
	}
	if softmax {
		// log_prob = x − logsumexp(x) over C: dx = g − softmax(x)·Σg
		xv, err := tensor.AsFloat64(x)
		if err != nil {
			return nil, err
		}
		for b := 0; b < n; b++ {
			for i := 0; i < inner; i++ {
				at := func(k int) int { return (b*nc+k)*inner + i }
				m := math.Inf(-1)
				for k := 0; k < nc; k++ {
					m = math.Max(m, xv[at(k)])
				}
				se, sg := 0.0, 0.0
				for k := 0; k < nc; k++ {
					se += math.Exp(xv[at(k)] - m)
					sg += g[at(k)]
				}
				for k := 0; k < nc; k++ {
					g[at(k)] -= math.Exp(xv[at(k)]-m) / se * sg
				}
			}
		}
	}
	if out[0], err = asDType(x, x.Shape, g); err != nil {
		return nil, err
	}
	return out, nil
}
