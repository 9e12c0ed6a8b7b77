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
	register(ruleQLinear, "QLinearMatMul", "QLinearConv")
	register(ruleWindow, "HannWindow", "HammingWindow", "BlackmanWindow")
	register(ruleBitCast, "BitCast")
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
	if dt := c.attrInt("output_dtype", 0); dt != 0 { // the attribute of the newer opsets wins
		out.dtype = tensor.DType(dt)
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

// ruleQLinear is QLinearMatMul and QLinearConv: the float op's rule on the
// quantized operands (inputs 0 and 3, and QLinearConv's bias, input 8), with
// the dtype of y_zero_point (input 7; uint8 when absent).
func ruleQLinear(c *ctx) []*val {
	cc := *c
	cc.ins = []*val{c.input(0), c.input(3)}
	inner := ruleMatMul
	if c.n.OpType == "QLinearConv" {
		cc.ins = append(cc.ins, c.input(8))
		inner = ruleConv
	}
	outs := inner(&cc)
	c.k = cc.k
	dt := c.dtype(7)
	if dt == tensor.Undefined {
		dt = tensor.Uint8
	}
	for _, o := range outs {
		if o != nil {
			o.dtype = dt
		}
	}
	return outs
}

// ruleWindow is HannWindow, HammingWindow and BlackmanWindow: a vector as
// long as the size input's value, of dtype output_datatype (float32 by
// default).
func ruleWindow(c *ctx) []*val {
	dt := tensor.DType(c.attrInt("output_datatype", int64(tensor.Float32)))
	return []*val{ranked(dt, c.known(scalarArg(c.input(0))))}
}

// ruleBitCast: the input's shape in dtype to, which must be as wide as the
// input's dtype.
func ruleBitCast(c *ctx) []*val {
	to := tensor.DType(c.attrInt("to", 0))
	x := c.input(0)
	if x == nil {
		return []*val{unranked(to)}
	}
	if from := x.dtype; from != tensor.Undefined && from.Size() != to.Size() {
		c.problem("BitCast %v to %v: the element widths differ", from, to)
	}
	out := same(x)
	out.dtype = to
	return []*val{out}
}
