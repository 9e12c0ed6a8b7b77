package shapeinfer

import (
	"sort"
	"strings"

	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	register(ruleGemm, "Gemm")
	register(ruleMatMul, "MatMul", "MatMulInteger")
	register(ruleConv, "Conv", "ConvInteger")
	register(ruleConvTranspose, "ConvTranspose")
	register(rulePool, "MaxPool", "AveragePool", "LpPool")
	register(ruleGlobalPool, "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
	register(ruleBatchNorm, "BatchNormalization")
	register(ruleLayerNorm, "LayerNormalization")
	register(ruleReduce, "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
		"ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")
	register(ruleArgMax, "ArgMax", "ArgMin")
	register(ruleRNN, "LSTM", "GRU", "RNN")
	register(ruleEinsum, "Einsum")
}

// dimsAgree reports a problem when two dims are different constants.
func (c *ctx) dimsAgree(a, b Expr, format string, args ...any) {
	ac, ak := a.IsConst()
	bc, bk := b.IsConst()
	if ak && bk && ac != bc {
		c.problem(format, args...)
	}
}

// pick prefers a constant of two dims that must be equal.
func pick(a, b Expr) Expr {
	if _, ok := a.IsConst(); ok {
		return a
	}
	if _, ok := b.IsConst(); ok {
		return b
	}
	if a.IsUnknown() {
		return b
	}
	return a
}

func ruleGemm(c *ctx) []*val {
	a, b := c.r(0), c.r(1)
	dt := c.dtype(0)
	if a == nil || b == nil {
		return []*val{ranked(dt, c.fresh(), c.fresh())}
	}
	if a.rank() != 2 || b.rank() != 2 {
		c.problem("inputs must be 2-D, got %s", shapesString([]*val{a, b}))
		return []*val{ranked(dt, c.fresh(), c.fresh())}
	}
	m, ka := a.shape[0], a.shape[1]
	if c.attrInt("transA", 0) != 0 {
		m, ka = ka, m
	}
	kb, n := b.shape[0], b.shape[1]
	if c.attrInt("transB", 0) != 0 {
		kb, n = n, kb
	}
	c.dimsAgree(ka, kb, "inner dims %s vs %s (A %s, B %s)", ka, kb, shapeString(a.shape), shapeString(b.shape))
	if bias := c.r(2); bias != nil {
		target := []Expr{m, n}
		if bias.rank() > 2 {
			c.problem("bias %s is not broadcastable to [%s %s]", shapeString(bias.shape), m, n)
		} else {
			off := 2 - bias.rank()
			for i, d := range bias.shape {
				dc, dk := d.IsConst()
				tc, tk := target[off+i].IsConst()
				if dk && tk && dc != 1 && dc != tc {
					c.problem("bias %s is not broadcastable to [%s %s]", shapeString(bias.shape), m, n)
					break
				}
			}
		}
	}
	return []*val{ranked(dt, m, n)}
}

func ruleMatMul(c *ctx) []*val {
	a, b := c.r(0), c.r(1)
	dt := c.dtype(0)
	if c.n.OpType == "MatMulInteger" {
		dt = tensor.Int32
	}
	if a == nil || b == nil {
		return []*val{unranked(dt)}
	}
	if a.rank() == 0 || b.rank() == 0 {
		c.problem("inputs must not be scalars, got %s", shapesString([]*val{a, b}))
		return []*val{unranked(dt)}
	}
	as, bs := copyShape(a.shape), copyShape(b.shape)
	aVec, bVec := len(as) == 1, len(bs) == 1
	if aVec {
		as = []Expr{Const(1), as[0]}
	}
	if bVec {
		bs = []Expr{bs[0], Const(1)}
	}
	ka, kb := as[len(as)-1], bs[len(bs)-2]
	c.dimsAgree(ka, kb, "inner dims %s vs %s (A %s, B %s)", ka, kb, shapeString(a.shape), shapeString(b.shape))
	batch, _ := c.broadcast(&val{ranked: true, shape: as[:len(as)-2]}, &val{ranked: true, shape: bs[:len(bs)-2]})
	shape := batch
	if !aVec {
		shape = append(shape, as[len(as)-2])
	}
	if !bVec {
		shape = append(shape, bs[len(bs)-1])
	}
	return []*val{ranked(dt, shape...)}
}

// spatialParams reads kernel, strides, dilations and pads for n spatial dims.
func (c *ctx) spatialParams(n int, kernel []Expr) (strides, dil, pads []int64) {
	strides, dil, pads = c.attrInts("strides"), c.attrInts("dilations"), c.attrInts("pads")
	if len(strides) != n {
		strides = ones(n)
	}
	if len(dil) != n {
		dil = ones(n)
	}
	if len(pads) != 2*n {
		pads = make([]int64, 2*n)
	}
	return
}

func ones(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// windowOut is the output length of a sliding window over in.
func (c *ctx) windowOut(in, k Expr, s, d, pb, pe int64, autoPad string, ceil bool) Expr {
	if s <= 0 {
		return c.fresh()
	}
	switch autoPad {
	case "SAME_UPPER", "SAME_LOWER":
		return c.known(in.CeilDiv(s))
	case "VALID":
		ext := k.Sub(Const(1)).Mul(Const(d)).Add(Const(1))
		num := in.Sub(ext)
		// a symbolic input is assumed large enough: the op fails otherwise
		if v, ok := num.IsConst(); ok && v < 0 {
			c.problem("window %s larger than input %s", ext, in)
			return c.fresh()
		}
		return c.known(num.FloorDiv(s).Add(Const(1)))
	}
	ext := k.Sub(Const(1)).Mul(Const(d)).Add(Const(1))
	num := in.Add(Const(pb + pe)).Sub(ext)
	if v, ok := num.IsConst(); ok && v < 0 {
		c.problem("window %s larger than padded input %s+%d", ext, in, pb+pe)
		return c.fresh()
	}
	if !ceil {
		return c.known(num.FloorDiv(s).Add(Const(1)))
	}
	out := num.CeilDiv(s).Add(Const(1))
	if oc, ok := out.IsConst(); ok {
		if ic, ok := in.IsConst(); ok && (oc-1)*s >= ic+pb {
			out = Const(oc - 1) // the last window must start inside the input
		}
		return out
	}
	if _, ok := num.DivExact(Const(s)); ok {
		return c.known(out)
	}
	return c.fresh()
}

func ruleConv(c *ctx) []*val {
	x, w := c.r(0), c.r(1)
	dt := c.dtype(0)
	if c.n.OpType == "ConvInteger" {
		dt = tensor.Int32
	}
	if x == nil || x.rank() < 3 {
		return []*val{unranked(dt)}
	}
	nsp := x.rank() - 2
	kernel := make([]Expr, nsp)
	if ks := c.attrInts("kernel_shape"); len(ks) == nsp {
		for i, k := range ks {
			kernel[i] = Const(k)
		}
	} else if w != nil && w.rank() == nsp+2 {
		copy(kernel, w.shape[2:])
	} else {
		return []*val{ranked(dt, append([]Expr{x.shape[0]}, c.freshDims(nsp+1)...)...)}
	}
	var m Expr = c.fresh()
	if w != nil && w.rank() == nsp+2 {
		m = w.shape[0]
		g := c.attrInt("group", 1)
		c.dimsAgree(x.shape[1], w.shape[1].Mul(Const(g)), "input channels %s vs weight %s × group %d", x.shape[1], shapeString(w.shape), g)
	}
	strides, dil, pads := c.spatialParams(nsp, kernel)
	ap := c.n.Attrs.String("auto_pad", "NOTSET")
	shape := []Expr{x.shape[0], m}
	for i := 0; i < nsp; i++ {
		shape = append(shape, c.windowOut(x.shape[2+i], kernel[i], strides[i], dil[i], pads[i], pads[i+nsp], ap, false))
	}
	return []*val{ranked(dt, shape...)}
}

func ruleConvTranspose(c *ctx) []*val {
	x, w := c.r(0), c.r(1)
	dt := c.dtype(0)
	if x == nil || x.rank() < 3 {
		return []*val{unranked(dt)}
	}
	nsp := x.rank() - 2
	g := c.attrInt("group", 1)
	var m Expr = c.fresh()
	kernel := make([]Expr, nsp)
	haveK := false
	if w != nil && w.rank() == nsp+2 {
		m = w.shape[1].Mul(Const(g))
		copy(kernel, w.shape[2:])
		haveK = true
		c.dimsAgree(x.shape[1], w.shape[0], "input channels %s vs weight %s", x.shape[1], shapeString(w.shape))
	}
	if ks := c.attrInts("kernel_shape"); len(ks) == nsp {
		for i, k := range ks {
			kernel[i] = Const(k)
		}
		haveK = true
	}
	shape := []Expr{x.shape[0], m}
	if os := c.attrInts("output_shape"); len(os) == nsp || len(os) == nsp+2 {
		os = os[len(os)-nsp:]
		for _, d := range os {
			shape = append(shape, Const(d))
		}
		return []*val{ranked(dt, shape...)}
	}
	if !haveK {
		return []*val{ranked(dt, append(shape, c.freshDims(nsp)...)...)}
	}
	strides, dil, pads := c.spatialParams(nsp, kernel)
	outPad := c.attrInts("output_padding")
	if len(outPad) != nsp {
		outPad = make([]int64, nsp)
	}
	ap := c.n.Attrs.String("auto_pad", "NOTSET")
	for i := 0; i < nsp; i++ {
		in := x.shape[2+i]
		if ap == "SAME_UPPER" || ap == "SAME_LOWER" {
			shape = append(shape, c.known(in.Mul(Const(strides[i]))))
			continue
		}
		pb, pe := pads[i], pads[i+nsp]
		if ap == "VALID" {
			pb, pe = 0, 0
		}
		ext := kernel[i].Sub(Const(1)).Mul(Const(dil[i])).Add(Const(1))
		o := in.Sub(Const(1)).Mul(Const(strides[i])).Add(Const(outPad[i])).Add(ext).Sub(Const(pb + pe))
		shape = append(shape, c.known(o))
	}
	return []*val{ranked(dt, shape...)}
}

func rulePool(c *ctx) []*val {
	x := c.r(0)
	dt := c.dtype(0)
	if x == nil || x.rank() < 3 {
		return []*val{unranked(dt), unranked(tensor.Int64)}
	}
	nsp := x.rank() - 2
	ks := c.attrInts("kernel_shape")
	if len(ks) != nsp {
		c.problem("kernel_shape %v does not match %d spatial dims", ks, nsp)
		shape := append([]Expr{x.shape[0], x.shape[1]}, c.freshDims(nsp)...)
		return []*val{ranked(dt, shape...), ranked(tensor.Int64, copyShape(shape)...)}
	}
	kernel := make([]Expr, nsp)
	for i, k := range ks {
		kernel[i] = Const(k)
	}
	strides, dil, pads := c.spatialParams(nsp, kernel)
	ap := c.n.Attrs.String("auto_pad", "NOTSET")
	ceil := c.attrInt("ceil_mode", 0) != 0
	shape := []Expr{x.shape[0], x.shape[1]}
	for i := 0; i < nsp; i++ {
		shape = append(shape, c.windowOut(x.shape[2+i], kernel[i], strides[i], dil[i], pads[i], pads[i+nsp], ap, ceil))
	}
	return []*val{ranked(dt, shape...), ranked(tensor.Int64, copyShape(shape)...)}
}

func ruleGlobalPool(c *ctx) []*val {
	x := c.r(0)
	if x == nil || x.rank() < 2 {
		return []*val{unranked(c.dtype(0))}
	}
	shape := []Expr{x.shape[0], x.shape[1]}
	for i := 2; i < x.rank(); i++ {
		shape = append(shape, Const(1))
	}
	return []*val{ranked(x.dtype, shape...)}
}

func ruleBatchNorm(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	outs := []*val{same(x)}
	var ch Expr = c.fresh()
	if x.ranked && x.rank() >= 2 {
		ch = x.shape[1]
		for i := 1; i <= 4; i++ {
			if p := c.r(i); p != nil && p.rank() == 1 {
				c.dimsAgree(p.shape[0], ch, "input %d %s does not match %s channels of input 0 %s", i, shapeString(p.shape), ch, shapeString(x.shape))
			}
		}
	}
	for i := 1; i < len(c.n.Outputs); i++ {
		outs = append(outs, ranked(x.dtype, ch))
	}
	return outs
}

func ruleLayerNorm(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	y := same(x)
	stash := tensor.DType(c.attrInt("stash_type", 1))
	if !x.ranked {
		return []*val{y, unranked(stash), unranked(stash)}
	}
	ax, ok := normAxis(c.attrInt("axis", -1), x.rank())
	if !ok {
		c.problem("axis %d out of range for rank %d", c.attrInt("axis", -1), x.rank())
		return []*val{y}
	}
	if s := c.r(1); s != nil {
		norm := x.shape[ax:]
		if s.rank() <= len(norm) {
			off := len(norm) - s.rank()
			for i, d := range s.shape {
				dc, dk := d.IsConst()
				nc, nk := norm[off+i].IsConst()
				if dk && nk && dc != 1 && dc != nc {
					c.problem("scale %s does not broadcast to normalized dims %s", shapeString(s.shape), shapeString(norm))
					break
				}
			}
		}
	}
	stat := copyShape(x.shape)
	for i := ax; i < len(stat); i++ {
		stat[i] = Const(1)
	}
	return []*val{y, ranked(stash, stat...), ranked(stash, copyShape(stat)...)}
}

// reduceShape applies axes/keepdims to x.
// When the axes are not known statically, count is their number if known
// (else -1).
func (c *ctx) reduceShape(x *val, axes []int64, keep bool, known bool, count int) *val {
	if !x.ranked {
		return unranked(x.dtype)
	}
	r := x.rank()
	if !known {
		switch {
		case keep:
			return ranked(x.dtype, c.freshDims(r)...)
		case count > 0 && count <= r:
			return ranked(x.dtype, c.freshDims(r-count)...)
		}
		return unranked(x.dtype)
	}
	red := make([]bool, r)
	if len(axes) == 0 {
		for i := range red {
			red[i] = true
		}
	}
	for _, a := range axes {
		ax, ok := normAxis(a, r)
		if !ok {
			c.problem("axis %d out of range for rank %d", a, r)
			return unranked(x.dtype)
		}
		red[ax] = true
	}
	var shape []Expr
	for i, d := range x.shape {
		switch {
		case !red[i]:
			shape = append(shape, d)
		case keep:
			shape = append(shape, Const(1))
		}
	}
	return ranked(x.dtype, shape...)
}

func ruleReduce(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	since := 18
	if c.n.OpType == "ReduceSum" {
		since = 13
	}
	axes, present, known := c.intsArg("axes", 1, since)
	keep := c.attrInt("keepdims", 1) != 0
	if (!present || len(axes) == 0) && known && c.attrInt("noop_with_empty_axes", 0) != 0 && c.opset >= since {
		return []*val{same(x)}
	}
	out := c.reduceShape(x, axes, keep, known, c.argLen(1))
	// tracked values of 1-D shape vectors (e.g. ReduceProd of a Shape)
	if x.data != nil && x.ranked && x.rank() <= 1 && known && (c.n.OpType == "ReduceProd" || c.n.OpType == "ReduceSum") {
		acc := Const(0)
		if c.n.OpType == "ReduceProd" {
			acc = Const(1)
		}
		for _, e := range x.data {
			if c.n.OpType == "ReduceProd" {
				acc = acc.Mul(e)
			} else {
				acc = acc.Add(e)
			}
		}
		out.withData([]Expr{acc})
	}
	return []*val{out}
}

func ruleArgMax(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	out := c.reduceShape(x, []int64{c.attrInt("axis", 0)}, c.attrInt("keepdims", 1) != 0, true, 1)
	out.dtype = tensor.Int64
	return []*val{out}
}

func ruleRNN(c *ctx) []*val {
	x := c.r(0)
	dt := c.dtype(0)
	gates := map[string]int64{"LSTM": 4, "GRU": 3, "RNN": 1}[c.n.OpType]
	var dirs int64 = 1
	if c.n.Attrs.String("direction", "forward") == "bidirectional" {
		dirs = 2
	}
	layout := c.attrInt("layout", 0)
	var h Expr
	if c.has("hidden_size") {
		h = Const(c.attrInt("hidden_size", 0))
	} else if r := c.r(2); r != nil && r.rank() == 3 {
		h = r.shape[2]
	} else {
		h = c.fresh()
	}
	var seq, batch, in Expr
	if x != nil && x.rank() == 3 {
		seq, batch, in = x.shape[0], x.shape[1], x.shape[2]
		if layout != 0 {
			seq, batch = batch, seq
		}
	} else {
		if x != nil {
			c.problem("input X must be 3-D, got %s", shapeString(x.shape))
		}
		seq, batch, in = c.fresh(), c.fresh(), c.fresh()
	}
	D := Const(dirs)
	gh := h.Mul(Const(gates))
	if w := c.r(1); w != nil {
		if w.rank() != 3 {
			c.problem("W must be 3-D, got %s", shapeString(w.shape))
		} else {
			c.dimsAgree(w.shape[0], D, "W %s: %d direction(s) expected", shapeString(w.shape), dirs)
			c.dimsAgree(w.shape[1], gh, "W %s: %s rows expected (%d gates × hidden %s)", shapeString(w.shape), gh, gates, h)
			c.dimsAgree(w.shape[2], in, "W %s: input size %s expected", shapeString(w.shape), in)
		}
	}
	if r := c.r(2); r != nil && r.rank() == 3 {
		c.dimsAgree(r.shape[1], gh, "R %s: %s rows expected", shapeString(r.shape), gh)
		c.dimsAgree(r.shape[2], h, "R %s: hidden size %s expected", shapeString(r.shape), h)
	}
	for _, i := range []int{5, 6} {
		if i == 6 && c.n.OpType != "LSTM" {
			break
		}
		if s := c.r(i); s != nil && s.rank() == 3 {
			want := []Expr{D, batch, h}
			if layout != 0 {
				want = []Expr{batch, D, h}
			}
			for j := range want {
				c.dimsAgree(s.shape[j], want[j], "initial state (input %d) %s, expected %s", i, shapeString(s.shape), shapeString(want))
			}
			// a constant-shaped initial state pins the batch dim
			if layout == 0 {
				batch = pick(batch, s.shape[1])
			} else {
				batch = pick(batch, s.shape[0])
			}
		}
	}
	var y, yh *val
	if layout == 0 {
		y = ranked(dt, seq, D, batch, h)
		yh = ranked(dt, D, batch, h)
	} else {
		y = ranked(dt, batch, seq, D, h)
		yh = ranked(dt, batch, D, h)
	}
	outs := []*val{y, yh}
	if c.n.OpType == "LSTM" {
		outs = append(outs, ranked(dt, copyShape(yh.shape)...))
	}
	return outs
}

func ruleEinsum(c *ctx) []*val {
	dt := c.dtype(0)
	eq := strings.ReplaceAll(c.n.Attrs.String("equation", ""), " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	if len(terms) != len(c.ins) {
		c.problem("equation %q has %d operands, node has %d inputs", eq, len(terms), len(c.ins))
		return []*val{unranked(dt)}
	}
	letters := map[rune]Expr{}
	counts := map[rune]int{}
	var ell []*val
	for i, t := range terms {
		x := c.r(i)
		if x == nil {
			return []*val{unranked(dt)}
		}
		pre, post, hasEll := strings.Cut(t, "...")
		n := len(pre) + len(post)
		if n > x.rank() || (!hasEll && n != x.rank()) {
			c.problem("term %q does not match input %d of rank %d", t, i, x.rank())
			return []*val{unranked(dt)}
		}
		en := x.rank() - n
		bind := func(s string, dims []Expr) {
			for j, r := range s {
				counts[r]++
				d := dims[j]
				if prev, ok := letters[r]; ok {
					c.dimsAgree(prev, d, "label %q is %s in one operand and %s in another", r, prev, d)
					letters[r] = pick(prev, d)
				} else {
					letters[r] = d
				}
			}
		}
		bind(pre, x.shape[:len(pre)])
		if hasEll {
			ell = append(ell, &val{ranked: true, shape: x.shape[len(pre) : len(pre)+en]})
		}
		bind(post, x.shape[len(pre)+en:])
	}
	ellShape, _ := c.broadcast(ell...)
	var shape []Expr
	if explicit {
		pre, post, hasEll := strings.Cut(rhs, "...")
		for _, r := range pre {
			shape = append(shape, c.known(orUnknown(letters, r)))
		}
		if hasEll {
			shape = append(shape, ellShape...)
		}
		for _, r := range post {
			shape = append(shape, c.known(orUnknown(letters, r)))
		}
	} else {
		shape = append(shape, ellShape...)
		var rs []rune
		for r, n := range counts {
			if n == 1 {
				rs = append(rs, r)
			}
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
		for _, r := range rs {
			shape = append(shape, letters[r])
		}
	}
	return []*val{ranked(dt, shape...)}
}

func orUnknown(m map[rune]Expr, r rune) Expr {
	if d, ok := m[r]; ok {
		return d
	}
	return Unknown()
}
