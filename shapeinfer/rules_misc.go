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
	register(ruleDFT, "DFT")
	register(ruleAttention, "Attention")
	register(ruleMaxUnpool, "MaxUnpool")
	register(ruleCol2Im, "Col2Im")
	register(ruleTfIdf, "TfIdfVectorizer")
	register(ruleMelWeightMatrix, "MelWeightMatrix")
	register(ruleCausalConv, "CausalConvWithState")
	register(ruleLinearAttention, "LinearAttention")
	register(ruleSTFT, "STFT")
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

// ruleDFT follows the DFT kernel: the transform axis (the axis attribute
// before opset 20; from 20 the axis input, -2 when absent) gets the output
// point count and the last dim (1 real, 2 complex) becomes 2, or 1 for a
// onesided inverse. The transform length is dft_length's value when given,
// else the axis dim (2·(n−1) for a onesided inverse); a onesided forward
// transform keeps N/2+1 points.
func ruleDFT(c *ctx) []*val {
	dt := c.dtype(0)
	x := c.r(0)
	if x == nil || x.rank() < 2 {
		return []*val{unranked(dt)}
	}
	r := int64(x.rank())
	inverse, onesided := c.attrInt("inverse", 0) != 0, c.attrInt("onesided", 0) != 0
	axis := c.attrInt("axis", 1)
	if c.opset >= 20 {
		axis = -2
		if a := c.input(2); a != nil {
			v, ok := scalarArg(a).IsConst()
			if !ok {
				return []*val{ranked(dt, c.freshDims(int(r))...)}
			}
			axis = v
		}
	}
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r-1 {
		c.problem("axis %d invalid for input %s", axis, shapeString(x.shape))
		return []*val{unranked(dt)}
	}
	shape := copyShape(x.shape)
	n := shape[axis]
	if onesided && inverse {
		n = n.Sub(Const(1)).Mul(Const(2))
	}
	if l := c.input(1); l != nil {
		n = c.known(scalarArg(l))
	}
	outC := int64(2)
	switch {
	case onesided && !inverse:
		n = n.FloorDiv(2).Add(Const(1))
	case onesided && inverse:
		outC = 1
	}
	shape[axis], shape[r-1] = c.known(n), Const(outC)
	return []*val{ranked(dt, shape...)}
}

// ruleSTFT: [batch, frames, bins, 2] from a [batch, length, 1|2] signal,
// frames = (length − frame_length)/frame_step + 1, bins = frame_length
// (frame_length/2+1 when onesided, the default); frame_length is the
// frame_length input's value or the window's length.
func ruleSTFT(c *ctx) []*val {
	dt := c.dtype(0)
	x := c.r(0)
	if x == nil || x.rank() != 3 {
		return []*val{unranked(dt)}
	}
	fl := Unknown()
	if w := c.r(2); w != nil && w.rank() == 1 {
		fl = w.shape[0]
	}
	if l := c.input(3); l != nil {
		fl = scalarArg(l)
	}
	frames, bins := c.fresh(), c.fresh()
	if step, ok := scalarArg(c.input(1)).IsConst(); ok && step > 0 && !fl.IsUnknown() {
		frames = c.known(x.shape[1].Sub(fl).FloorDiv(step).Add(Const(1)))
	}
	if !fl.IsUnknown() {
		bins = fl
		if c.attrInt("onesided", 1) != 0 {
			bins = fl.FloorDiv(2).Add(Const(1))
		}
		bins = c.known(bins)
	}
	return []*val{ranked(dt, x.shape[0], frames, bins, Const(2))}
}

// ruleAttention follows the Attention kernel. Q, K, V are all 4-D
// ([batch, heads, seq, head size]) or all 3-D ([batch, seq, heads·head
// size], with q_num_heads and kv_num_heads). Outputs: Y (Q's layout, V's
// head size), present_key and present_value ([batch, kv heads, past+seq,
// head size]) and the QK product [batch, q heads, q seq, past+seq].
func ruleAttention(c *ctx) []*val {
	dt := c.dtype(0)
	q, k, v := c.r(0), c.r(1), c.r(2)
	if q == nil || k == nil || v == nil || q.rank() != k.rank() || q.rank() != v.rank() || (q.rank() != 3 && q.rank() != 4) {
		return []*val{unranked(dt), unranked(c.dtype(1)), unranked(c.dtype(2)), unranked(dt)}
	}
	var b, hq, sq, hkv, sk, d, dv Expr
	if q.rank() == 4 {
		b, hq, sq, d = q.shape[0], q.shape[1], q.shape[2], q.shape[3]
		hkv, sk, dv = k.shape[1], k.shape[2], v.shape[3]
	} else {
		nq, nkv := c.attrInt("q_num_heads", 0), c.attrInt("kv_num_heads", 0)
		if nq <= 0 || nkv <= 0 {
			c.problem("3-D inputs need q_num_heads and kv_num_heads")
			return nil
		}
		b, sq, hq, hkv, sk = q.shape[0], q.shape[1], Const(nq), Const(nkv), k.shape[1]
		d, dv = c.known(k.shape[2].FloorDiv(nkv)), c.known(v.shape[2].FloorDiv(nkv))
	}
	t := sk
	if pk := c.r(4); pk != nil && pk.rank() == 4 {
		t = pk.shape[2].Add(sk)
	}
	y := ranked(dt, b, hq, sq, dv)
	if q.rank() == 3 {
		y = ranked(dt, b, sq, hq.Mul(dv))
	}
	return []*val{y, ranked(c.dtype(1), b, hkv, t, d), ranked(c.dtype(2), b, hkv, t, dv), ranked(dt, b, hq, sq, t)}
}

// ruleCausalConv is CausalConvWithState: the output keeps the input's
// [batch, channels, length]; the next state is [batch, channels, K−1] for a
// [channels, 1, K] weight.
func ruleCausalConv(c *ctx) []*val {
	x, w := c.r(0), c.r(1)
	dt := c.dtype(0)
	if x == nil || x.rank() != 3 {
		return []*val{unranked(dt), unranked(dt)}
	}
	k := c.fresh()
	if w != nil && w.rank() == 3 {
		k = c.known(w.shape[2].Sub(Const(1)))
	}
	return []*val{same(x), ranked(dt, x.shape[0], x.shape[1], k)}
}

// ruleLinearAttention: for [batch, time, heads·size] query, key and value,
// the output is [batch, time, q_num_heads·dv] and the present state
// [batch, kv_num_heads, dk, dv] (dk = query size / q_num_heads, dv = value
// size / kv_num_heads), in past_state's dtype when given.
func ruleLinearAttention(c *ctx) []*val {
	dt := c.dtype(0)
	q, v := c.r(0), c.r(2)
	hq, hk := c.attrInt("q_num_heads", 0), c.attrInt("kv_num_heads", 0)
	sdt := dt
	if p := c.input(3); p != nil {
		sdt = p.dtype
	}
	if q == nil || v == nil || q.rank() != 3 || v.rank() != 3 || hq <= 0 || hk <= 0 {
		return []*val{unranked(dt), unranked(sdt)}
	}
	dk, dv := c.known(q.shape[2].FloorDiv(hq)), c.known(v.shape[2].FloorDiv(hk))
	return []*val{ranked(dt, q.shape[0], q.shape[1], Const(hq).Mul(dv)), ranked(sdt, q.shape[0], Const(hk), dk, dv)}
}

// ruleMaxUnpool: the output_shape input's values when given, else every
// spatial dim unpooled, (in−1)·stride + kernel − pad begin − pad end.
func ruleMaxUnpool(c *ctx) []*val {
	dt := c.dtype(0)
	x := c.r(0)
	if os := c.input(2); os != nil {
		if vs, ok := os.ints(); ok {
			dims := make([]Expr, len(vs))
			for i, v := range vs {
				dims[i] = Const(v)
			}
			return []*val{ranked(dt, dims...)}
		}
		if x != nil {
			return []*val{ranked(dt, c.freshDims(x.rank())...)}
		}
		return []*val{unranked(dt)}
	}
	ks := c.attrInts("kernel_shape")
	if x == nil || x.rank() < 3 || len(ks) != x.rank()-2 {
		return []*val{unranked(dt)}
	}
	nd := len(ks)
	strides, pads := c.attrInts("strides"), c.attrInts("pads")
	at := func(v []int64, i int, def int64) int64 {
		if i < len(v) {
			return v[i]
		}
		return def
	}
	shape := copyShape(x.shape)
	for i, k := range ks {
		shape[2+i] = c.known(shape[2+i].Sub(Const(1)).Mul(Const(at(strides, i, 1))).Add(Const(k - at(pads, i, 0) - at(pads, i+nd, 0))))
	}
	return []*val{ranked(dt, shape...)}
}

// ruleCol2Im: [N, C, image_shape...] from an [N, C·∏block_shape, L] input.
func ruleCol2Im(c *ctx) []*val {
	dt := c.dtype(0)
	x := c.r(0)
	img, okImg := c.input(1).ints()
	blk, okBlk := c.input(2).ints()
	if x == nil || x.rank() != 3 || !okImg {
		return []*val{unranked(dt)}
	}
	ch := c.fresh()
	if okBlk {
		p := int64(1)
		for _, b := range blk {
			p *= b
		}
		if p > 0 {
			ch = c.known(x.shape[1].FloorDiv(p))
		}
	}
	shape := []Expr{x.shape[0], ch}
	for _, v := range img {
		shape = append(shape, Const(v))
	}
	return []*val{ranked(dt, shape...)}
}

// ruleTfIdf: float32 [width] or [rows, width] for a [C] or [rows, C]
// input, width being the largest of ngram_indexes plus one.
func ruleTfIdf(c *ctx) []*val {
	width := int64(0)
	for _, i := range c.attrInts("ngram_indexes") {
		width = max(width, i+1)
	}
	x := c.r(0)
	switch {
	case x == nil:
		return []*val{unranked(tensor.Float32)}
	case x.rank() == 2:
		return []*val{ranked(tensor.Float32, x.shape[0], Const(width))}
	}
	return []*val{ranked(tensor.Float32, Const(width))}
}

// ruleMelWeightMatrix: [dft_length/2 + 1, num_mel_bins] from the inputs'
// values, of dtype output_datatype (float32 by default).
func ruleMelWeightMatrix(c *ctx) []*val {
	dt := tensor.DType(c.attrInt("output_datatype", int64(tensor.Float32)))
	mels := c.known(scalarArg(c.input(0)))
	spec := c.fresh()
	if n, ok := scalarArg(c.input(1)).IsConst(); ok {
		spec = Const(n/2 + 1)
	}
	return []*val{ranked(dt, spec, mels)}
}
