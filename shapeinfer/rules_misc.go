package shapeinfer

import "github.com/mtlrun/mtlrun/tensor"

func init() {
	register(ruleBernoulli, "Bernoulli", "RandomNormalLike", "RandomUniformLike")
	register(ruleRandom, "RandomNormal", "RandomUniform")
	register(ruleQuantize, "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")
	register(ruleDet, "Det")
	register(ruleLoss, "NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss")
	register(ruleNMS, "NonMaxSuppression")
	register(ruleGridSample, "GridSample")
}

func ruleBernoulli(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	out := same(x)
	if c.has("dtype") {
		out.dtype = tensor.DType(c.attrInt("dtype", 0))
	}
	return []*val{out}
}

func ruleQuantize(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	out := same(x)
	switch c.n.OpType {
	case "QuantizeLinear":
		out.dtype = tensor.Uint8
		if zp := c.input(2); zp != nil {
			out.dtype = zp.dtype
		}
	case "DequantizeLinear":
		out.dtype = c.dtype(1)
	default: // DynamicQuantizeLinear
		out.dtype = tensor.Uint8
		return []*val{out, ranked(tensor.Float32), ranked(tensor.Uint8)}
	}
	return []*val{out}
}

func ruleDet(c *ctx) []*val {
	x := c.r(0)
	if x == nil || x.rank() < 2 {
		return []*val{unranked(c.dtype(0))}
	}
	return []*val{ranked(x.dtype, copyShape(x.shape[:x.rank()-2])...)}
}

func ruleLoss(c *ctx) []*val {
	scores, target := c.input(0), c.input(1)
	if scores == nil {
		return nil
	}
	loss := ranked(scores.dtype)
	if c.n.Attrs.String("reduction", "mean") == "none" {
		loss = unranked(scores.dtype)
		if target != nil && target.ranked {
			loss = ranked(scores.dtype, copyShape(target.shape)...)
		}
	}
	return []*val{loss, same(scores)}
}

func ruleNMS(c *ctx) []*val {
	return []*val{ranked(tensor.Int64, c.fresh(), Const(3))}
}

func ruleGridSample(c *ctx) []*val {
	x, grid := c.r(0), c.r(1)
	if x == nil || grid == nil || x.rank() < 3 || grid.rank() != x.rank() {
		return []*val{unranked(c.dtype(0))}
	}
	shape := []Expr{x.shape[0], x.shape[1]}
	shape = append(shape, grid.shape[1:grid.rank()-1]...)
	return []*val{ranked(x.dtype, shape...)}
}

// ruleRandom is RandomNormal and RandomUniform: the shape attribute, the
// dtype attribute (float by default).
func ruleRandom(c *ctx) []*val {
	shape := c.attrInts("shape")
	dims := make([]Expr, len(shape))
	for i, d := range shape {
		dims[i] = Const(d)
	}
	return []*val{ranked(tensor.DType(c.attrInt("dtype", int64(tensor.Float32))), dims...)}
}
