package shapeinfer

import (
	"math"

	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	register(ruleShape, "Shape")
	register(ruleSize, "Size")
	register(ruleConstant, "Constant")
	register(ruleConstantOfShape, "ConstantOfShape")
	register(ruleGather, "Gather")
	register(ruleGatherElements, "GatherElements")
	register(ruleGatherND, "GatherND")
	register(ruleConcat, "Concat")
	register(ruleSplit, "Split")
	register(ruleSlice, "Slice")
	register(ruleReshape, "Reshape")
	register(ruleFlatten, "Flatten")
	register(ruleTranspose, "Transpose")
	register(ruleSqueeze, "Squeeze")
	register(ruleUnsqueeze, "Unsqueeze")
	register(ruleExpand, "Expand")
	register(ruleTile, "Tile")
	register(rulePad, "Pad")
	register(ruleRange, "Range")
	register(ruleSameAsData, "ScatterND", "ScatterElements", "Scatter")
	register(ruleOneHot, "OneHot")
	register(ruleNonZero, "NonZero")
	register(ruleTopK, "TopK")
	register(ruleResize, "Resize", "Upsample")
	register(ruleDepthToSpace, "DepthToSpace", "SpaceToDepth")
	register(ruleEyeLike, "EyeLike")
	register(ruleCompress, "Compress")
	register(ruleUnique, "Unique")
}

func ruleShape(c *ctx) []*val {
	x := c.r(0)
	if x == nil {
		return []*val{ranked(tensor.Int64, c.fresh())}
	}
	r := int64(x.rank())
	start, end := int64(0), r
	if c.opset >= 15 {
		start, end = c.attrInt("start", 0), c.attrInt("end", r)
	}
	clamp := func(v int64) int64 {
		if v < 0 {
			v += r
		}
		return min(max(v, 0), r)
	}
	start, end = clamp(start), clamp(end)
	if end < start {
		end = start
	}
	return []*val{vec(tensor.Int64, copyShape(x.shape[start:end]))}
}

func product(dims []Expr) Expr {
	p := Const(1)
	for _, d := range dims {
		p = p.Mul(d)
	}
	return p
}

func ruleSize(c *ctx) []*val {
	out := ranked(tensor.Int64)
	if x := c.r(0); x != nil {
		out.withData([]Expr{product(x.shape)})
	}
	return []*val{out}
}

func ruleConstant(c *ctx) []*val {
	a := c.n.Attrs
	switch {
	case a.Has("value") && a.Tensor("value") != nil:
		return []*val{fromTensor(a.Tensor("value"))}
	case a.Has("value_float"):
		return []*val{ranked(tensor.Float32)}
	case a.Has("value_floats"):
		return []*val{ranked(tensor.Float32, Const(int64(len(a.Floats("value_floats")))))}
	case a.Has("value_int"):
		return []*val{ranked(tensor.Int64).withData([]Expr{Const(a.Int("value_int", 0))})}
	case a.Has("value_ints"):
		xs := a.Ints("value_ints")
		data := make([]Expr, len(xs))
		for i, x := range xs {
			data[i] = Const(x)
		}
		return []*val{vec(tensor.Int64, data)}
	case a.Has("value_string"):
		return []*val{ranked(tensor.String)}
	case a.Has("value_strings"):
		return []*val{ranked(tensor.String, Const(int64(len(a.Strings("value_strings")))))}
	}
	return nil
}

// shapeArg reads a 1-D shape input as dims: nil, false when even its length
// is unknown; unknown elements are Unknown.
func (c *ctx) shapeArg(i int) ([]Expr, bool) {
	v := c.r(i)
	if v == nil {
		return nil, false
	}
	if v.data != nil {
		return append([]Expr{}, v.data...), true
	}
	if v.rank() == 1 {
		if n, ok := v.shape[0].IsConst(); ok {
			out := make([]Expr, n)
			for j := range out {
				out[j] = Unknown()
			}
			return out, true
		}
	}
	if v.rank() == 0 {
		return []Expr{Unknown()}, true
	}
	return nil, false
}

func ruleConstantOfShape(c *ctx) []*val {
	dt := tensor.Float32
	fill := Const(0)
	if t := c.n.Attrs.Tensor("value"); t != nil {
		dt = t.DType
		fv := fromTensor(t)
		if len(fv.data) == 1 {
			fill = fv.data[0]
		} else {
			fill = Unknown()
		}
	}
	dims, ok := c.shapeArg(0)
	if !ok {
		return []*val{unranked(dt)}
	}
	for i := range dims {
		dims[i] = c.known(dims[i])
	}
	out := ranked(dt, dims...)
	if n, ok := out.numel(); ok && n <= maxTracked {
		data := make([]Expr, n)
		for i := range data {
			data[i] = fill
		}
		out.withData(data)
	}
	return []*val{out}
}

func ruleGather(c *ctx) []*val {
	x, idx := c.input(0), c.input(1)
	if x == nil || idx == nil {
		return nil
	}
	if !x.ranked || !idx.ranked {
		return []*val{unranked(x.dtype)}
	}
	axis, ok := normAxis(c.attrInt("axis", 0), x.rank())
	if !ok {
		c.problem("axis %d out of range for input 0 of rank %d", c.attrInt("axis", 0), x.rank())
		return []*val{unranked(x.dtype)}
	}
	shape := append(copyShape(x.shape[:axis]), idx.shape...)
	shape = append(shape, x.shape[axis+1:]...)
	out := ranked(x.dtype, shape...)
	// tracked values
	xs, ok1 := x.constShape()
	is, ok2 := idx.ints()
	if x.data != nil && ok1 && ok2 {
		if n, ok := out.numel(); ok && n <= maxTracked {
			outer, inner := 1, 1
			for _, d := range xs[:axis] {
				outer *= d
			}
			for _, d := range xs[axis+1:] {
				inner *= d
			}
			ax := int64(xs[axis])
			data := make([]Expr, 0, n)
			for o := 0; o < outer; o++ {
				for _, j := range is {
					if j < 0 {
						j += ax
					}
					if j < 0 || j >= ax {
						c.problem("index %d out of range for axis %d of size %d", j, axis, ax)
						return []*val{out}
					}
					base := (o*int(ax) + int(j)) * inner
					data = append(data, x.data[base:base+inner]...)
				}
			}
			out.withData(data)
		}
	}
	return []*val{out}
}

func ruleGatherElements(c *ctx) []*val {
	x, idx := c.input(0), c.input(1)
	if x == nil || idx == nil {
		return nil
	}
	out := same(idx)
	out.dtype = x.dtype
	return []*val{out}
}

func ruleGatherND(c *ctx) []*val {
	x, idx := c.r(0), c.r(1)
	if x == nil || idx == nil || idx.rank() == 0 {
		return []*val{unranked(c.dtype(0))}
	}
	b := int(c.attrInt("batch_dims", 0))
	last, ok := idx.shape[idx.rank()-1].IsConst()
	if !ok || b+int(last) > x.rank() {
		return []*val{unranked(x.dtype)}
	}
	shape := append(copyShape(idx.shape[:idx.rank()-1]), x.shape[b+int(last):]...)
	return []*val{ranked(x.dtype, shape...)}
}

func ruleConcat(c *ctx) []*val {
	vs := c.present()
	if len(vs) == 0 {
		return nil
	}
	dt := vs[0].dtype
	rank := -1
	for _, v := range vs {
		if !v.ranked {
			continue
		}
		if rank >= 0 && v.rank() != rank {
			c.problem("rank mismatch: inputs have shapes %s", shapesString(vs))
			return []*val{unranked(dt)}
		}
		rank = v.rank()
	}
	if rank < 0 {
		return []*val{unranked(dt)}
	}
	a := c.attrInt("axis", 0)
	axis, ok := normAxis(a, rank)
	if !ok {
		c.problem("axis %d out of range for rank %d", a, rank)
		return []*val{unranked(dt)}
	}
	shape := make([]Expr, rank)
	sum := Const(0)
	for i := range shape {
		shape[i] = Unknown()
	}
	for _, v := range vs {
		if !v.ranked {
			sum = Unknown()
			continue
		}
		sum = sum.Add(v.shape[axis])
		for i, d := range v.shape {
			if i == axis {
				continue
			}
			cur := shape[i]
			switch {
			case cur.IsUnknown():
				shape[i] = d
			case cur.Equal(d):
			default:
				cc, ck := cur.IsConst()
				dc, dk := d.IsConst()
				if ck && dk && cc != dc {
					c.problem("inputs disagree on dim %d: %s (axis %d)", i, shapesString(vs), axis)
				} else if dk && !ck {
					shape[i] = d
				}
			}
		}
	}
	shape[axis] = sum
	for i := range shape {
		shape[i] = c.known(shape[i])
	}
	out := ranked(dt, shape...)
	// tracked values
	os, ok := out.constShape()
	if ok {
		outer := 1
		for _, d := range os[:axis] {
			outer *= d
		}
		var data []Expr
		good := true
		for o := 0; o < outer && good; o++ {
			for _, v := range vs {
				s, ok := v.constShape()
				if !ok || v.data == nil {
					good = false
					break
				}
				slab := len(v.data) / max(outer, 1)
				if outer == 0 {
					slab = 0
				}
				data = append(data, v.data[o*slab:(o+1)*slab]...)
				_ = s
			}
		}
		if good {
			out.withData(data)
		}
	}
	return []*val{out}
}

func ruleSplit(c *ctx) []*val {
	x := c.r(0)
	nout := len(c.n.Outputs)
	outs := make([]*val, nout)
	if x == nil {
		for i := range outs {
			outs[i] = unranked(c.dtype(0))
		}
		return outs
	}
	axis, ok := normAxis(c.attrInt("axis", 0), x.rank())
	if !ok {
		c.problem("axis %d out of range for rank %d", c.attrInt("axis", 0), x.rank())
		return nil
	}
	d := x.shape[axis]
	var sizes []Expr
	if c.opset < 13 {
		if c.has("split") {
			for _, s := range c.attrInts("split") {
				sizes = append(sizes, Const(s))
			}
		}
	} else if s := c.input(1); s != nil {
		if dims, ok := c.shapeArg(1); ok {
			sizes = dims
		} else {
			sizes = make([]Expr, nout)
			for i := range sizes {
				sizes[i] = Unknown()
			}
		}
	}
	if sizes == nil {
		n := int64(nout)
		if c.opset >= 18 && c.has("num_outputs") {
			n = c.attrInt("num_outputs", n)
		}
		if n <= 0 {
			return nil
		}
		if c.opset >= 18 && c.has("num_outputs") {
			chunk := d.CeilDiv(n)
			for i := int64(0); i < n-1; i++ {
				sizes = append(sizes, chunk)
			}
			sizes = append(sizes, d.Sub(chunk.Mul(Const(n-1))))
		} else {
			if dc, ok := d.IsConst(); ok && dc%n != 0 {
				c.problem("dim %d of size %d does not split evenly into %d outputs", axis, dc, n)
			}
			q, ok := d.DivExact(Const(n))
			if !ok {
				q = d.FloorDiv(n)
			}
			for i := int64(0); i < n; i++ {
				sizes = append(sizes, q)
			}
		}
	} else {
		total := Const(0)
		for _, s := range sizes {
			total = total.Add(s)
		}
		tc, tk := total.IsConst()
		dc, dk := d.IsConst()
		if tk && dk && tc != dc {
			c.problem("split sizes sum to %d, dim %d is %d", tc, axis, dc)
		}
	}
	for i := range outs {
		shape := copyShape(x.shape)
		if i < len(sizes) {
			shape[axis] = c.known(sizes[i])
		} else {
			shape[axis] = c.fresh()
		}
		outs[i] = ranked(x.dtype, shape...)
	}
	return outs
}

const huge = 1 << 30

// sliceLen is the length of one sliced axis of size d, or ok=false when it
// cannot be expressed.
func sliceLen(d, s, e, st Expr) (Expr, bool) {
	stc, ok := st.IsConst()
	if !ok || stc == 0 || d.IsUnknown() {
		return Unknown(), false
	}
	dc, dk := d.IsConst()
	sc, sk := s.IsConst()
	ec, ek := e.IsConst()
	if dk && sk && ek {
		if sc < 0 {
			sc += dc
		}
		if ec < 0 {
			ec += dc
		}
		var n int64
		if stc > 0 {
			sc = min(max(sc, 0), dc)
			ec = min(max(ec, 0), dc)
			n = ceilDiv(ec-sc, stc)
		} else {
			sc = min(max(sc, 0), dc-1)
			ec = min(max(ec, -1), dc-1)
			n = ceilDiv(sc-ec, -stc)
		}
		return Const(max(n, 0)), true
	}
	// symbolic: normalize start and end without needing a clamp
	norm := func(x Expr, isEnd bool) (Expr, bool) {
		if xc, ok := x.IsConst(); ok {
			if stc > 0 {
				switch {
				case xc >= huge:
					return d, true
				case xc <= -huge:
					return Const(0), true
				case xc < 0:
					r := d.Add(Const(xc))
					return r, r.nonNeg()
				default:
					return x, d.Sub(x).nonNeg()
				}
			}
			lo := Const(0) // negative step: start in [0, d-1], end in [-1, d-1]
			if isEnd {
				lo = Const(-1)
			}
			switch {
			case xc >= huge:
				return d.Sub(Const(1)), true
			case xc <= -huge:
				return lo, true
			case xc < 0:
				r := d.Add(Const(xc))
				return r, r.Sub(lo).nonNeg()
			default:
				return x, d.Sub(Const(1)).Sub(x).nonNeg()
			}
		}
		if x.Equal(d) {
			if stc > 0 {
				return d, true
			}
			return d.Sub(Const(1)), true
		}
		if stc > 0 && x.nonNeg() && d.Sub(x).nonNeg() {
			return x, true
		}
		return Unknown(), false
	}
	sN, ok1 := norm(s, false)
	eN, ok2 := norm(e, true)
	if !ok1 || !ok2 {
		return Unknown(), false
	}
	diff := eN.Sub(sN)
	if stc < 0 {
		diff = sN.Sub(eN)
		stc = -stc
	}
	if v, ok := diff.IsConst(); ok && v < 0 {
		return Const(0), true
	}
	if !diff.nonNeg() {
		return Unknown(), false
	}
	return diff.CeilDiv(stc), true
}

func ruleSlice(c *ctx) []*val {
	x := c.r(0)
	if x == nil {
		return []*val{unranked(c.dtype(0))}
	}
	r := x.rank()
	var starts, ends, axes, steps []Expr
	toExprs := func(xs []int64) []Expr {
		out := make([]Expr, len(xs))
		for i, v := range xs {
			out[i] = Const(v)
		}
		return out
	}
	if c.opset < 10 {
		starts, ends = toExprs(c.attrInts("starts")), toExprs(c.attrInts("ends"))
		if c.has("axes") {
			axes = toExprs(c.attrInts("axes"))
		}
	} else {
		var ok bool
		if starts, ok = c.shapeArg(1); !ok {
			return []*val{ranked(x.dtype, c.freshDims(r)...)}
		}
		if ends, ok = c.shapeArg(2); !ok {
			return []*val{ranked(x.dtype, c.freshDims(r)...)}
		}
		if c.input(3) != nil {
			if axes, ok = c.shapeArg(3); !ok {
				return []*val{ranked(x.dtype, c.freshDims(r)...)}
			}
		}
		if c.input(4) != nil {
			if steps, ok = c.shapeArg(4); !ok {
				return []*val{ranked(x.dtype, c.freshDims(r)...)}
			}
		}
	}
	if len(starts) != len(ends) {
		c.problem("%d starts but %d ends", len(starts), len(ends))
		return []*val{ranked(x.dtype, c.freshDims(r)...)}
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, Const(int64(i)))
		}
	}
	if steps == nil {
		for range starts {
			steps = append(steps, Const(1))
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		c.problem("starts, ends, axes and steps differ in length")
		return []*val{ranked(x.dtype, c.freshDims(r)...)}
	}
	shape := copyShape(x.shape)
	type axSpec struct {
		axis        int
		start, step int64
		sliced      bool
	}
	specs := make([]axSpec, r)
	for i := range specs {
		specs[i] = axSpec{axis: i, step: 1}
	}
	allKnown := true
	for i, a := range axes {
		ac, ok := a.IsConst()
		if !ok {
			// unknown axis: any dim may change
			return []*val{ranked(x.dtype, c.freshDims(r)...)}
		}
		ax, ok := normAxis(ac, r)
		if !ok {
			c.problem("axis %d out of range for rank %d", ac, r)
			return []*val{ranked(x.dtype, c.freshDims(r)...)}
		}
		n, ok := sliceLen(x.shape[ax], starts[i], ends[i], steps[i])
		if !ok {
			shape[ax] = c.fresh()
			allKnown = false
			continue
		}
		shape[ax] = n
		// start index for tracked values
		dc, dk := x.shape[ax].IsConst()
		sc, sk := starts[i].IsConst()
		stc, _ := steps[i].IsConst()
		if dk && sk {
			if sc < 0 {
				sc += dc
			}
			if stc > 0 {
				sc = min(max(sc, 0), dc)
			} else {
				sc = min(max(sc, 0), dc-1)
			}
			specs[ax] = axSpec{axis: ax, start: sc, step: stc, sliced: true}
		} else {
			allKnown = false
		}
	}
	out := ranked(x.dtype, shape...)
	if xs, ok := x.constShape(); ok && allKnown && x.data != nil {
		if os, ok := out.constShape(); ok {
			n := 1
			for _, d := range os {
				n *= d
			}
			if n <= maxTracked {
				st := tensor.Strides(xs)
				data := make([]Expr, n)
				idx := make([]int, r)
				for k := 0; k < n; k++ {
					off := 0
					for ax := 0; ax < r; ax++ {
						p := idx[ax]
						if specs[ax].sliced {
							p = int(specs[ax].start + int64(idx[ax])*specs[ax].step)
						}
						off += p * st[ax]
					}
					data[k] = x.data[off]
					for ax := r - 1; ax >= 0; ax-- {
						idx[ax]++
						if idx[ax] < os[ax] {
							break
						}
						idx[ax] = 0
					}
				}
				out.withData(data)
			}
		}
	}
	return []*val{out}
}

func ruleReshape(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	var target []Expr
	if c.opset < 5 {
		for _, s := range c.attrInts("shape") {
			target = append(target, Const(s))
		}
	} else {
		var ok bool
		target, ok = c.shapeArg(1)
		if !ok {
			return []*val{unranked(x.dtype)}
		}
	}
	allowZero := c.attrInt("allowzero", 0) != 0
	out := make([]Expr, len(target))
	minus := -1
	for i, t := range target {
		tc, tk := t.IsConst()
		switch {
		case t.IsUnknown():
			out[i] = c.fresh()
		case tk && tc == 0 && !allowZero:
			if x.ranked && i < x.rank() {
				out[i] = x.shape[i]
			} else {
				if x.ranked {
					c.problem("shape element %d is 0 (copy) but input 0 has rank %d", i, x.rank())
				}
				out[i] = c.fresh()
			}
		case tk && tc == -1:
			if minus >= 0 {
				c.problem("more than one -1 in shape")
			}
			minus = i
		case tk && tc < -1:
			c.problem("invalid shape element %d: %d", i, tc)
			out[i] = c.fresh()
		default:
			out[i] = t
		}
	}
	var total Expr
	if x.ranked {
		total = product(x.shape)
	} else {
		total = Unknown()
	}
	if minus >= 0 {
		rest := Const(1)
		for i, d := range out {
			if i != minus {
				rest = rest.Mul(d)
			}
		}
		if q, ok := total.DivExact(rest); ok {
			out[minus] = q
		} else {
			if tc, ok := total.IsConst(); ok {
				if rc, ok := rest.IsConst(); ok && rc != 0 && tc%rc != 0 {
					c.problem("cannot reshape %s (%d elements) to %s", shapeString(x.shape), tc, shapeString(target))
				}
			}
			out[minus] = c.fresh()
		}
	} else if tc, ok := total.IsConst(); ok {
		if oc, ok := product(out).IsConst(); ok && oc != tc {
			c.problem("cannot reshape %s (%d elements) to %s (%d elements)", shapeString(x.shape), tc, shapeString(out), oc)
		}
	}
	for i := range out {
		out[i] = c.known(out[i])
	}
	res := ranked(x.dtype, out...)
	if x.data != nil {
		res.withData(x.data)
	}
	return []*val{res}
}

func ruleFlatten(c *ctx) []*val {
	x := c.r(0)
	if x == nil {
		return []*val{ranked(c.dtype(0), c.fresh(), c.fresh())}
	}
	a := c.attrInt("axis", 1)
	if a < 0 {
		a += int64(x.rank())
	}
	if a < 0 || a > int64(x.rank()) {
		c.problem("axis %d out of range for rank %d", c.attrInt("axis", 1), x.rank())
		return []*val{ranked(x.dtype, c.fresh(), c.fresh())}
	}
	out := ranked(x.dtype, c.known(product(x.shape[:a])), c.known(product(x.shape[a:])))
	out.withData(x.data)
	return []*val{out}
}

func ruleTranspose(c *ctx) []*val {
	x := c.r(0)
	if x == nil {
		return []*val{unranked(c.dtype(0))}
	}
	r := x.rank()
	perm := c.attrInts("perm")
	if !c.has("perm") {
		for i := r - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != r {
		c.problem("perm %v has %d entries, input 0 has rank %d", perm, len(perm), r)
		return []*val{ranked(x.dtype, c.freshDims(len(perm))...)}
	}
	shape := make([]Expr, r)
	seen := make([]bool, r)
	for i, p := range perm {
		ax, ok := normAxis(p, r)
		if !ok || seen[ax] {
			c.problem("perm %v is not a permutation of %d axes", perm, r)
			return []*val{ranked(x.dtype, c.freshDims(r)...)}
		}
		seen[ax] = true
		shape[i] = x.shape[ax]
	}
	return []*val{ranked(x.dtype, shape...)}
}

func ruleSqueeze(c *ctx) []*val {
	x := c.r(0)
	if x == nil {
		return []*val{unranked(c.dtype(0))}
	}
	axes, present, known := c.intsArg("axes", 1, 13)
	if !known {
		if n := c.argLen(1); n > 0 && n <= x.rank() {
			return []*val{ranked(x.dtype, c.freshDims(x.rank()-n)...)}
		}
		return []*val{unranked(x.dtype)}
	}
	drop := make([]bool, x.rank())
	if !present || len(axes) == 0 {
		for i, d := range x.shape {
			dc, ok := d.IsConst()
			if !ok {
				return []*val{unranked(x.dtype)}
			}
			drop[i] = dc == 1
		}
	} else {
		for _, a := range axes {
			ax, ok := normAxis(a, x.rank())
			if !ok {
				c.problem("axis %d out of range for rank %d", a, x.rank())
				return []*val{unranked(x.dtype)}
			}
			if dc, ok := x.shape[ax].IsConst(); ok && dc != 1 {
				c.problem("cannot squeeze axis %d of size %d", ax, dc)
			}
			drop[ax] = true
		}
	}
	var shape []Expr
	for i, d := range x.shape {
		if !drop[i] {
			shape = append(shape, d)
		}
	}
	out := ranked(x.dtype, shape...)
	out.withData(x.data)
	return []*val{out}
}

func ruleUnsqueeze(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	axes, _, known := c.intsArg("axes", 1, 13)
	if !known || !x.ranked {
		if known && !x.ranked {
			return []*val{unranked(x.dtype)}
		}
		if a := c.r(1); a != nil && a.rank() == 1 && x.ranked {
			if n, ok := a.shape[0].IsConst(); ok {
				return []*val{ranked(x.dtype, c.freshDims(x.rank()+int(n))...)}
			}
		}
		return []*val{unranked(x.dtype)}
	}
	r := x.rank() + len(axes)
	ins := make([]bool, r)
	for _, a := range axes {
		ax, ok := normAxis(a, r)
		if !ok || ins[ax] {
			c.problem("invalid axes %v for output rank %d", axes, r)
			return []*val{unranked(x.dtype)}
		}
		ins[ax] = true
	}
	shape := make([]Expr, 0, r)
	j := 0
	for i := 0; i < r; i++ {
		if ins[i] {
			shape = append(shape, Const(1))
		} else {
			shape = append(shape, x.shape[j])
			j++
		}
	}
	out := ranked(x.dtype, shape...)
	out.withData(x.data)
	return []*val{out}
}

func ruleExpand(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	dims, ok := c.shapeArg(1)
	if !ok || !x.ranked {
		return []*val{unranked(x.dtype)}
	}
	shape, _ := c.broadcast(x, &val{ranked: true, shape: dims})
	out := ranked(x.dtype, shape...)
	out.withData(mapData(shape, []*val{x}, func(xs []Expr) Expr { return xs[0] }))
	return []*val{out}
}

func ruleTile(c *ctx) []*val {
	x := c.r(0)
	if x == nil {
		return []*val{unranked(c.dtype(0))}
	}
	reps, ok := c.shapeArg(1)
	if !ok || len(reps) != x.rank() {
		if ok {
			c.problem("%d repeats for input 0 of rank %d", len(reps), x.rank())
		}
		return []*val{ranked(x.dtype, c.freshDims(x.rank())...)}
	}
	shape := make([]Expr, x.rank())
	for i, d := range x.shape {
		shape[i] = c.known(d.Mul(reps[i]))
	}
	return []*val{ranked(x.dtype, shape...)}
}

func rulePad(c *ctx) []*val {
	x := c.r(0)
	if x == nil {
		return []*val{unranked(c.dtype(0))}
	}
	r := x.rank()
	var pads []Expr
	if c.opset < 11 {
		name := "pads"
		if c.opset < 2 {
			name = "paddings"
		}
		for _, p := range c.attrInts(name) {
			pads = append(pads, Const(p))
		}
	} else {
		var ok bool
		if pads, ok = c.shapeArg(1); !ok {
			return []*val{ranked(x.dtype, c.freshDims(r)...)}
		}
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if c.opset >= 18 && c.input(3) != nil {
		as, ok := c.r(3).ints()
		if !ok {
			return []*val{ranked(x.dtype, c.freshDims(r)...)}
		}
		axes = axes[:0]
		for _, a := range as {
			ax, ok := normAxis(a, r)
			if !ok {
				c.problem("axis %d out of range for rank %d", a, r)
				return []*val{ranked(x.dtype, c.freshDims(r)...)}
			}
			axes = append(axes, ax)
		}
	}
	if len(pads) != 2*len(axes) {
		c.problem("%d pads for %d axes", len(pads), len(axes))
		return []*val{ranked(x.dtype, c.freshDims(r)...)}
	}
	shape := copyShape(x.shape)
	for i, ax := range axes {
		shape[ax] = c.known(shape[ax].Add(pads[i]).Add(pads[i+len(axes)]))
	}
	return []*val{ranked(x.dtype, shape...)}
}

func scalarArg(v *val) Expr {
	if v == nil || v.data == nil || len(v.data) != 1 {
		return Unknown()
	}
	return v.data[0]
}

func ruleRange(c *ctx) []*val {
	dt := c.dtype(0)
	start, limit, delta := scalarArg(c.input(0)), scalarArg(c.input(1)), scalarArg(c.input(2))
	sc, sk := start.IsConst()
	lc, lk := limit.IsConst()
	dc, dk := delta.IsConst()
	var n Expr
	switch {
	case sk && lk && dk && dc != 0 && c.input(0).data != nil:
		n = Const(max(ceilDiv(lc-sc, dc), 0))
	case sk && dk && sc == 0 && dc == 1 && limit.nonNeg():
		n = limit
	case dk && dc == 1 && limit.Sub(start).nonNeg():
		n = limit.Sub(start)
	default:
		n = c.fresh()
	}
	out := ranked(dt, n)
	if nc, ok := n.IsConst(); ok && nc <= maxTracked && sk && dk {
		data := make([]Expr, nc)
		for i := range data {
			data[i] = Const(sc + int64(i)*dc)
		}
		out.withData(data)
	}
	return []*val{out}
}

func ruleSameAsData(c *ctx) []*val {
	if x := c.input(0); x != nil {
		return []*val{same(x)}
	}
	return nil
}

func ruleOneHot(c *ctx) []*val {
	idx, values := c.r(0), c.input(2)
	dt := tensor.Undefined
	if values != nil {
		dt = values.dtype
	}
	if idx == nil {
		return []*val{unranked(dt)}
	}
	r := idx.rank() + 1
	ax, ok := normAxis(c.attrInt("axis", -1), r)
	if !ok {
		c.problem("axis %d out of range for output rank %d", c.attrInt("axis", -1), r)
		return []*val{unranked(dt)}
	}
	depth := c.known(scalarArg(c.input(1)))
	shape := append(copyShape(idx.shape[:ax]), depth)
	shape = append(shape, idx.shape[ax:]...)
	return []*val{ranked(dt, shape...)}
}

func ruleNonZero(c *ctx) []*val {
	if x := c.r(0); x != nil {
		return []*val{ranked(tensor.Int64, Const(int64(x.rank())), c.fresh())}
	}
	return []*val{ranked(tensor.Int64, c.fresh(), c.fresh())}
}

func ruleTopK(c *ctx) []*val {
	x := c.r(0)
	if x == nil {
		return []*val{unranked(c.dtype(0)), unranked(tensor.Int64)}
	}
	ax, ok := normAxis(c.attrInt("axis", -1), x.rank())
	if !ok {
		c.problem("axis %d out of range for rank %d", c.attrInt("axis", -1), x.rank())
		return nil
	}
	var k Expr
	if c.opset < 10 {
		k = Const(c.attrInt("k", 0))
	} else {
		k = c.known(scalarArg(c.input(1)))
	}
	shape := copyShape(x.shape)
	shape[ax] = k
	return []*val{ranked(x.dtype, shape...), ranked(tensor.Int64, copyShape(shape)...)}
}

func ruleResize(c *ctx) []*val {
	x := c.r(0)
	if x == nil {
		return []*val{unranked(c.dtype(0))}
	}
	r := x.rank()
	var scales, sizes []Expr
	switch {
	case c.n.OpType == "Upsample" && c.opset < 9:
		for _, s := range c.n.Attrs.Floats("scales") {
			if float64(s) == math.Trunc(float64(s)) {
				scales = append(scales, Const(int64(s)))
			} else {
				scales = append(scales, Unknown())
			}
		}
	case c.n.OpType == "Upsample" || c.opset < 11:
		scales, _ = c.shapeArg(1)
	default:
		if c.input(3) != nil {
			sizes, _ = c.shapeArg(3)
		}
		if sizes == nil && c.input(2) != nil {
			scales, _ = c.shapeArg(2)
		}
	}
	if c.has("axes") {
		return []*val{ranked(x.dtype, c.freshDims(r)...)}
	}
	shape := make([]Expr, r)
	for i := range shape {
		switch {
		case len(sizes) == r:
			shape[i] = c.known(sizes[i])
		case len(scales) == r:
			// integral scales are exact; others become fresh dims
			shape[i] = c.known(x.shape[i].Mul(scales[i]))
		default:
			shape[i] = c.fresh()
		}
	}
	return []*val{ranked(x.dtype, shape...)}
}

func ruleDepthToSpace(c *ctx) []*val {
	x := c.r(0)
	b := c.attrInt("blocksize", 0)
	if x == nil || x.rank() != 4 || b <= 0 {
		return []*val{unranked(c.dtype(0))}
	}
	s := x.shape
	bb := Const(b * b)
	if c.n.OpType == "DepthToSpace" {
		q, ok := s[1].DivExact(bb)
		if !ok {
			q = c.fresh()
		}
		return []*val{ranked(x.dtype, s[0], q, s[2].Mul(Const(b)), s[3].Mul(Const(b)))}
	}
	h, ok1 := s[2].DivExact(Const(b))
	w, ok2 := s[3].DivExact(Const(b))
	if !ok1 {
		h = c.fresh()
	}
	if !ok2 {
		w = c.fresh()
	}
	return []*val{ranked(x.dtype, s[0], s[1].Mul(bb), h, w)}
}

func ruleEyeLike(c *ctx) []*val {
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

func ruleCompress(c *ctx) []*val {
	x := c.r(0)
	if x == nil {
		return []*val{unranked(c.dtype(0))}
	}
	if !c.has("axis") {
		return []*val{ranked(x.dtype, c.fresh())}
	}
	ax, ok := normAxis(c.attrInt("axis", 0), x.rank())
	if !ok {
		return []*val{unranked(x.dtype)}
	}
	shape := copyShape(x.shape)
	shape[ax] = c.fresh()
	return []*val{ranked(x.dtype, shape...)}
}

func ruleUnique(c *ctx) []*val {
	x := c.r(0)
	dt := c.dtype(0)
	u := c.fresh()
	var y *val
	switch {
	case x == nil:
		y = unranked(dt)
	case !c.has("axis"):
		y = ranked(dt, u)
	default:
		ax, ok := normAxis(c.attrInt("axis", 0), x.rank())
		if !ok {
			y = unranked(dt)
		} else {
			shape := copyShape(x.shape)
			shape[ax] = u
			y = ranked(dt, shape...)
		}
	}
	var n Expr = c.fresh()
	if x != nil {
		if !c.has("axis") {
			n = product(x.shape)
		} else if ax, ok := normAxis(c.attrInt("axis", 0), x.rank()); ok {
			n = x.shape[ax]
		}
	}
	return []*val{y, ranked(tensor.Int64, u), ranked(tensor.Int64, c.known(n)), ranked(tensor.Int64, u)}
}
