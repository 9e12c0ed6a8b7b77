package shapeinfer

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops"
	_ "github.com/mtlrun/mtlrun/ops/all" // the op descriptors hold the declarative rules
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// ctx is what a shape rule sees of one node.
type ctx struct {
	in    *inferer
	n     *runtime.Node
	sc    *scope
	seq   int
	opset int
	ins   []*val
	k     int
}

// rule computes a node's outputs; nil entries (or a short slice) leave an
// output to the declared type.
type rule func(c *ctx) []*val

// register attaches r to the descriptors of the named ai.onnx ops (see
// ops.Desc): the rule of an op whose descriptor declares none.
func register(r rule, names ...string) {
	for _, n := range names {
		ops.AttachShape("", n, r)
	}
}

// fresh returns a new symbolic dim named after the node.
func (c *ctx) fresh() Expr {
	name := fmt.Sprintf("unk_%s_%d_%d", c.n.OpType, c.seq, c.k)
	c.k++
	return c.in.freshName(name)
}

func (c *ctx) freshDims(n int) []Expr {
	out := make([]Expr, n)
	for i := range out {
		out[i] = c.fresh()
	}
	return out
}

// known replaces an unknown dim by a fresh symbol.
func (c *ctx) known(e Expr) Expr {
	if e.IsUnknown() {
		return c.fresh()
	}
	if v, ok := e.IsConst(); ok && v < 0 {
		return c.fresh()
	}
	return e
}

func (c *ctx) problem(format string, args ...any) {
	c.in.problems = append(c.in.problems, Problem{Node: c.n.Label(), Op: c.n.OpType, Reason: fmt.Sprintf(format, args...)})
}

// input returns input i, or nil when it is omitted.
func (c *ctx) input(i int) *val {
	if i < len(c.ins) {
		return c.ins[i]
	}
	return nil
}

// r returns input i when its rank is known.
func (c *ctx) r(i int) *val {
	v := c.input(i)
	if v == nil || !v.ranked {
		return nil
	}
	return v
}

func (c *ctx) dtype(i int) tensor.DType {
	if v := c.input(i); v != nil {
		return v.dtype
	}
	return tensor.Undefined
}

func (c *ctx) attrInt(name string, def int64) int64 { return c.n.Attrs.Int(name, def) }
func (c *ctx) attrInts(name string) []int64         { return c.n.Attrs.Ints(name) }
func (c *ctx) has(name string) bool                 { return c.n.Attrs.Has(name) }

// intsArg returns an int list given as an attribute (before opset `since`)
// or as input i (from `since`); present is false when omitted, known false
// when given but not known statically.
func (c *ctx) intsArg(attr string, i, since int) (vals []int64, present, known bool) {
	if c.opset < since || (c.has(attr) && c.input(i) == nil) {
		if !c.has(attr) {
			return nil, false, true
		}
		return c.attrInts(attr), true, true
	}
	v := c.input(i)
	if v == nil {
		return nil, false, true
	}
	xs, ok := v.ints()
	return xs, true, ok
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(a int64, rank int) (int, bool) {
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank) {
		return 0, false
	}
	return int(a), true
}

func copyShape(s []Expr) []Expr { return append([]Expr{}, s...) }

func same(v *val) *val {
	if v == nil {
		return nil
	}
	if !v.ranked {
		return unranked(v.dtype)
	}
	return ranked(v.dtype, copyShape(v.shape)...)
}

// bdim broadcasts two dims; conflict is set for two different constants
// that are not 1.
func (c *ctx) bdim(x, y Expr) (Expr, bool) {
	xc, xk := x.IsConst()
	yc, yk := y.IsConst()
	switch {
	case x.Equal(y):
		return x, false
	case xk && xc == 1:
		return c.known(y), false
	case yk && yc == 1:
		return c.known(x), false
	case xk && yk:
		return c.fresh(), true
	case xk:
		return x, false
	case yk:
		return y, false
	}
	return c.fresh(), false
}

// broadcast applies multidirectional (NumPy) broadcasting to the inputs'
// shapes; ok is false when a rank is unknown.
func (c *ctx) broadcast(vs ...*val) ([]Expr, bool) {
	rank := 0
	for _, v := range vs {
		if v == nil {
			continue
		}
		if !v.ranked {
			return nil, false
		}
		rank = max(rank, v.rank())
	}
	out := make([]Expr, rank)
	for i := range out {
		out[i] = Const(1)
	}
	for _, v := range vs {
		if v == nil {
			continue
		}
		off := rank - v.rank()
		for i, d := range v.shape {
			r, bad := c.bdim(out[off+i], d)
			if bad {
				c.problem("shapes %s are not broadcast-compatible (dim %d: %s vs %s)", shapesString(vs), off+i, out[off+i], d)
			}
			out[off+i] = r
		}
	}
	return out, true
}

func shapesString(vs []*val) string {
	s := ""
	for i, v := range vs {
		if v == nil {
			continue
		}
		if i > 0 {
			s += " "
		}
		if v.ranked {
			s += shapeString(v.shape)
		} else {
			s += "[?]"
		}
	}
	return s
}

// mapData computes tracked elements of an elementwise op over broadcast
// inputs; it returns nil unless every input is tracked.
func mapData(out []Expr, vs []*val, f func(xs []Expr) Expr) []Expr {
	oshape, ok := (&val{ranked: true, shape: out}).constShape()
	if !ok {
		return nil
	}
	n := 1
	for _, d := range oshape {
		n *= d
	}
	if n > maxTracked {
		return nil
	}
	idx := make([][]int, len(vs))
	for i, v := range vs {
		if v == nil || v.data == nil {
			return nil
		}
		s, ok := v.constShape()
		if !ok {
			return nil
		}
		idx[i] = tensor.BroadcastIndex(s, oshape)
	}
	res := make([]Expr, n)
	xs := make([]Expr, len(vs))
	for k := 0; k < n; k++ {
		for i, v := range vs {
			xs[i] = v.data[idx[i][k]]
		}
		res[k] = f(xs)
	}
	return res
}

// argLen is the length of 1-D input i when known, else -1.
func (c *ctx) argLen(i int) int {
	v := c.r(i)
	if v == nil || v.rank() != 1 {
		return -1
	}
	if n, ok := v.shape[0].IsConst(); ok {
		return int(n)
	}
	return -1
}
