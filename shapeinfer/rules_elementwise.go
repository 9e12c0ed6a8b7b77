package shapeinfer

import (
	"github.com/mtlrun/mtlrun/tensor"
)

// The element-wise rules. Most element-wise ops declare their rule in
// their descriptor (ops.ShapeSameAsInput, ops.ShapeBroadcastInputs, ...);
// run applies ruleUnary, ruleBool, ruleBinary or ruleCompare for those.
func init() {
	register(ruleWhere, "Where")
	register(ruleCast, "Cast")
	register(ruleCastLike, "CastLike")
	register(ruleDropout, "Dropout")
}

// ruleUnary (ops.ShapeSameAsInput) keeps input 0's type; Identity, Neg and
// Abs keep tracked values.
func ruleUnary(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	out := same(x)
	switch c.n.OpType {
	case "Identity":
		out.data = x.data
	case "Neg":
		out.withData(mapData(out.shape, []*val{x}, func(xs []Expr) Expr { return xs[0].Neg() }))
	case "Abs":
		out.withData(mapData(out.shape, []*val{x}, func(xs []Expr) Expr {
			if v, ok := xs[0].IsConst(); ok && v < 0 {
				return Const(-v)
			}
			if xs[0].nonNeg() {
				return xs[0]
			}
			return Unknown()
		}))
	}
	return []*val{out}
}

func ruleBool(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	out := same(x)
	out.dtype = tensor.Bool
	if c.n.OpType == "Not" {
		out.withData(mapData(out.shape, []*val{x}, func(xs []Expr) Expr {
			if v, ok := xs[0].IsConst(); ok {
				return boolExpr(v == 0)
			}
			return Unknown()
		}))
	}
	return []*val{out}
}

func boolExpr(b bool) Expr {
	if b {
		return Const(1)
	}
	return Const(0)
}

func (c *ctx) present() []*val {
	var vs []*val
	for _, v := range c.ins {
		if v != nil {
			vs = append(vs, v)
		}
	}
	return vs
}

func ruleBinary(c *ctx) []*val {
	vs := c.present()
	if len(vs) == 0 {
		return nil
	}
	dt := vs[0].dtype
	shape, ok := c.broadcast(vs...)
	if !ok {
		return []*val{unranked(dt)}
	}
	out := ranked(dt, shape...)
	isInt := dt.IsInteger()
	op := c.n.OpType
	out.withData(mapData(shape, vs, func(xs []Expr) Expr {
		acc := xs[0]
		for _, y := range xs[1:] {
			acc = binaryValue(op, acc, y, isInt)
		}
		if op == "Mean" {
			if q, ok := acc.DivExact(Const(int64(len(xs)))); ok {
				return q
			}
			return Unknown()
		}
		return acc
	}))
	return []*val{out}
}

func binaryValue(op string, x, y Expr, isInt bool) Expr {
	xc, xk := x.IsConst()
	yc, yk := y.IsConst()
	switch op {
	case "Add", "Sum", "Mean":
		return x.Add(y)
	case "Sub":
		return x.Sub(y)
	case "Mul":
		return x.Mul(y)
	case "Div":
		if yk && yc == 0 {
			return Unknown()
		}
		if q, ok := x.DivExact(y); ok {
			return q
		}
		if xk && yk && isInt && xc >= 0 && yc > 0 {
			return Const(xc / yc)
		}
	case "Mod":
		if xk && yk && xc >= 0 && yc > 0 {
			return Const(xc % yc)
		}
	case "Pow":
		if xk && yk && yc >= 0 && yc <= 62 {
			p := int64(1)
			for i := int64(0); i < yc; i++ {
				p *= xc
				if p > 1<<40 || p < -(1<<40) {
					return Unknown()
				}
			}
			return Const(p)
		}
	case "Max", "Min":
		if x.Equal(y) {
			return x
		}
		if xk && yk {
			if (op == "Max") == (xc > yc) {
				return x
			}
			return y
		}
		// a symbolic dim is at least its lower bound
		if d := x.Sub(y); d.nonNeg() {
			if op == "Max" {
				return x
			}
			return y
		}
		if d := y.Sub(x); d.nonNeg() {
			if op == "Max" {
				return y
			}
			return x
		}
	}
	return Unknown()
}

// compareValue decides a comparison of two tracked elements when it can.
func compareValue(op string, x, y Expr) Expr {
	if x.IsUnknown() || y.IsUnknown() {
		return Unknown()
	}
	xc, xk := x.IsConst()
	yc, yk := y.IsConst()
	ge := func(a, b Expr) bool { return a.Sub(b).nonNeg() }               // a ≥ b certainly
	gt := func(a, b Expr) bool { return a.Sub(b).Sub(Const(1)).nonNeg() } // a > b certainly
	switch op {
	case "Equal":
		if x.Equal(y) {
			return Const(1)
		}
		if gt(x, y) || gt(y, x) {
			return Const(0)
		}
	case "Less":
		if gt(y, x) {
			return Const(1)
		}
		if ge(x, y) {
			return Const(0)
		}
	case "Greater":
		if gt(x, y) {
			return Const(1)
		}
		if ge(y, x) {
			return Const(0)
		}
	case "LessOrEqual":
		if ge(y, x) {
			return Const(1)
		}
		if gt(x, y) {
			return Const(0)
		}
	case "GreaterOrEqual":
		if ge(x, y) {
			return Const(1)
		}
		if gt(y, x) {
			return Const(0)
		}
	case "And", "Or", "Xor":
		if xk && yk {
			a, b := xc != 0, yc != 0
			switch op {
			case "And":
				return boolExpr(a && b)
			case "Or":
				return boolExpr(a || b)
			}
			return boolExpr(a != b)
		}
	}
	return Unknown()
}

func ruleCompare(c *ctx) []*val {
	vs := c.present()
	if len(vs) < 2 {
		return []*val{unranked(tensor.Bool)}
	}
	shape, ok := c.broadcast(vs...)
	if !ok {
		return []*val{unranked(tensor.Bool)}
	}
	out := ranked(tensor.Bool, shape...)
	op := c.n.OpType
	out.withData(mapData(shape, vs[:2], func(xs []Expr) Expr { return compareValue(op, xs[0], xs[1]) }))
	return []*val{out}
}

func ruleWhere(c *ctx) []*val {
	cond, x, y := c.input(0), c.input(1), c.input(2)
	if cond == nil || x == nil || y == nil {
		return nil
	}
	dt := x.dtype
	if dt == tensor.Undefined {
		dt = y.dtype
	}
	shape, ok := c.broadcast(cond, x, y)
	if !ok {
		return []*val{unranked(dt)}
	}
	out := ranked(dt, shape...)
	out.withData(mapData(shape, []*val{cond, x, y}, func(xs []Expr) Expr {
		if v, ok := xs[0].IsConst(); ok {
			if v != 0 {
				return xs[1]
			}
			return xs[2]
		}
		if xs[1].Equal(xs[2]) {
			return xs[1]
		}
		return Unknown()
	}))
	return []*val{out}
}

func castData(x *val, to tensor.DType) []Expr {
	if x.data == nil || to == tensor.String || to == tensor.Undefined {
		return nil
	}
	out := make([]Expr, len(x.data))
	for i, e := range x.data {
		switch {
		case to == tensor.Bool:
			if v, ok := e.IsConst(); ok {
				out[i] = boolExpr(v != 0)
			} else if lb, ok := e.lowerBound(); ok && lb > 0 {
				out[i] = Const(1)
			} else {
				out[i] = Unknown()
			}
		case to == tensor.Uint8 || to == tensor.Uint16 || to == tensor.Uint32 || to == tensor.Uint64:
			if v, ok := e.IsConst(); ok && v < 0 {
				out[i] = Unknown()
			} else {
				out[i] = e
			}
		default:
			out[i] = e
		}
	}
	return out
}

func ruleCast(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	to := tensor.DType(c.attrInt("to", 0))
	out := same(x)
	out.dtype = to
	out.withData(castData(x, to))
	return []*val{out}
}

func ruleCastLike(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	to := c.dtype(1)
	out := same(x)
	out.dtype = to
	out.withData(castData(x, to))
	return []*val{out}
}

func ruleDropout(c *ctx) []*val {
	x := c.input(0)
	if x == nil {
		return nil
	}
	y := same(x)
	y.data = x.data
	mask := same(x)
	if c.opset >= 10 {
		mask.dtype = tensor.Bool
	}
	return []*val{y, mask}
}
