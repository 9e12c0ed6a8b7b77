package autodiff

import (
	"fmt"
	"strings"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	for _, op := range []string{"Max", "Min", "Sum", "Mean"} {
		register(op, typed(gradVariadic[float32], gradVariadic[float64]), nil)
	}
	register("PRelu", gradPReluAnyOpset, nil) // rules_prelu6.go: opsets 1-6 too
	register("CumSum", gradCumSum, nil)
	register("Gather", typed(gradGather[float32], gradGather[float64]), nil)
	register("Einsum", gradEinsum, nil)
}

// gradVariadic: Sum passes the gradient to every input, Mean a 1/n share;
// Max and Min to the inputs equal to the result, shared evenly among ties.
func gradVariadic[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	ys := c.Out[0].Shape
	gy := gradOr[T](c, 0)
	out := make([]*tensor.Tensor, len(c.In))
	n := len(c.In)
	var full [][]T
	var ties []T
	if op := c.Node.OpType; op == "Max" || op == "Min" {
		y := data[T](c.Out[0])
		ties = make([]T, len(gy))
		full = make([][]T, n)
		for i, x := range c.In {
			full[i] = bcast(data[T](x), x.Shape, ys)
			for e := range y {
				if full[i][e] == y[e] {
					ties[e]++
				}
			}
		}
	}
	for i, x := range c.In {
		if !c.Need[i] {
			continue
		}
		g := make([]T, len(gy))
		for e, v := range gy {
			switch c.Node.OpType {
			case "Sum":
				g[e] = v
			case "Mean":
				g[e] = v / T(n)
			default:
				if full[i][e] == data[T](c.Out[0])[e] {
					g[e] = v / ties[e]
				}
			}
		}
		out[i] = like(x, sumTo(g, ys, x.Shape))
	}
	return out, nil
}

func gradPRelu[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	x, slope := c.In[0], c.In[1]
	ys := c.Out[0].Shape
	xv := data[T](x)
	sv := bcast(data[T](slope), slope.Shape, ys)
	gy := gradOr[T](c, 0)
	gx, gs := make([]T, len(gy)), make([]T, len(gy))
	for i, v := range gy {
		if xv[i] > 0 {
			gx[i] = v
		} else {
			gx[i] = v * sv[i]
			gs[i] = v * xv[i]
		}
	}
	out := make([]*tensor.Tensor, 2)
	if c.Need[0] {
		out[0] = like(x, gx)
	}
	if c.Need[1] {
		out[1] = like(slope, sumTo(gs, ys, slope.Shape))
	}
	return out, nil
}

// gradCumSum: the gradient of a cumulative sum is the cumulative sum of the
// gradient in the other direction (with the same exclusive flag).
func gradCumSum(c *Ctx) ([]*tensor.Tensor, error) {
	if c.GradOut[0] == nil {
		return nil, nil
	}
	attrs := graph.Attrs{}
	for k, v := range c.Attrs {
		attrs[k] = v
	}
	attrs["reverse"] = graph.Attr{Type: graph.AttrInt, Int: 1 - c.Attrs.Int("reverse", 0)}
	k, err := ops.New(&ops.Config{Name: c.Node.Label(), OpType: "CumSum", Opset: c.Opset, Attrs: attrs, NumInputs: 2, NumOutputs: 1})
	if err != nil {
		return nil, err
	}
	g, err := k.Run([]*tensor.Tensor{c.GradOut[0], c.In[1]})
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{g[0]}, nil
}

// gradGather scatter-adds the gradient into the rows the indices picked
// (an embedding table's gradient).
func gradGather[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	x := c.In[0]
	axis, err := axisOf(c.Attrs.Int("axis", 0), x.Rank())
	if err != nil {
		return nil, err
	}
	idx, err := tensor.AsInt64(c.In[1])
	if err != nil {
		return nil, err
	}
	outer, n, inner := prod(x.Shape[:axis]), x.Shape[axis], prod(x.Shape[axis+1:])
	gy := gradOr[T](c, 0)
	if len(gy) != outer*len(idx)*inner {
		return nil, fmt.Errorf("gradient has %d elements, expected %d", len(gy), outer*len(idx)*inner)
	}
	gx := make([]T, x.Len())
	for o := 0; o < outer; o++ {
		for k, ix := range idx {
			if ix < 0 {
				ix += int64(n)
			}
			if ix < 0 || ix >= int64(n) {
				return nil, fmt.Errorf("index %d out of range for axis of size %d", idx[k], n)
			}
			dst := gx[(o*n+int(ix))*inner:][:inner]
			src := gy[(o*len(idx)+k)*inner:][:inner]
			for e, v := range src {
				dst[e] += v
			}
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	out[0] = like(x, gx)
	return out, nil
}

// gradEinsum differentiates an explicit Einsum ("ab,bc->ac") by Einsum:
// operand k's gradient contracts the output gradient with the other
// operands onto k's labels; labels only operand k carries (summed away in
// the forward pass) are broadcast back. Repeated labels within an operand
// and ellipses are refused.
func gradEinsum(c *Ctx) ([]*tensor.Tensor, error) {
	if c.GradOut[0] == nil {
		return nil, nil
	}
	eq := strings.ReplaceAll(c.Attrs.String("equation", ""), " ", "")
	lhs, rhs, ok := strings.Cut(eq, "->")
	if !ok || strings.Contains(eq, ".") {
		return nil, fmt.Errorf("training supports explicit Einsum equations without ellipsis, got %q", eq)
	}
	terms := strings.Split(lhs, ",")
	if len(terms) != len(c.In) {
		return nil, fmt.Errorf("equation %q has %d operands, the node %d", eq, len(terms), len(c.In))
	}
	for _, t := range append(terms, rhs) {
		seen := map[rune]bool{}
		for _, r := range t {
			if seen[r] {
				return nil, fmt.Errorf("training does not support repeated labels (%q in %q)", t, eq)
			}
			seen[r] = true
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	for k := range c.In {
		if !c.Need[k] {
			continue
		}
		elsewhere := rhs
		for j, t := range terms {
			if j != k {
				elsewhere += t
			}
		}
		var kept []rune
		keptShape := make([]int, 0, len(terms[k]))
		for d, r := range terms[k] {
			if strings.ContainsRune(elsewhere, r) {
				kept = append(kept, r)
				keptShape = append(keptShape, c.In[k].Shape[d])
			} else {
				keptShape = append(keptShape, 1)
			}
		}
		operands := []*tensor.Tensor{c.GradOut[0]}
		subs := []string{rhs}
		for j, t := range terms {
			if j != k {
				operands = append(operands, c.In[j])
				subs = append(subs, t)
			}
		}
		geq := strings.Join(subs, ",") + "->" + string(kept)
		kern, err := ops.New(&ops.Config{Name: c.Node.Label(), OpType: "Einsum", Opset: c.Opset,
			Attrs: graph.Attrs{"equation": {Type: graph.AttrString, String: geq}}, NumInputs: len(operands), NumOutputs: 1})
		if err != nil {
			return nil, err
		}
		g, err := kern.Run(operands)
		if err != nil {
			return nil, fmt.Errorf("gradient of operand %d (%s): %w", k, geq, err)
		}
		r, err := g[0].Reshaped(keptShape)
		if err != nil {
			return nil, err
		}
		if !tensor.SameShape(keptShape, c.In[k].Shape) {
			switch r.DType {
			case tensor.Float32:
				r = like(c.In[k], bcast(data[float32](r), keptShape, c.In[k].Shape))
			case tensor.Float64:
				r = like(c.In[k], bcast(data[float64](r), keptShape, c.In[k].Shape))
			default:
				return nil, errDType
			}
		}
		out[k] = r
	}
	return out, nil
}
