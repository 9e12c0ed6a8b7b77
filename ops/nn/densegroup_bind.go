package nn

import (
	"unsafe"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// Bind returns the group specialised to the heads' weights and biases of
// in: their checks, the heads' column offsets and the wide packed weights
// are taken once, here, instead of at every run. For a caller that runs the
// heads again and again on a row or two (a stream, one time step per run),
// where that per-run work is a good part of the node's cost.
//
// The bound group computes what the group computes, bit for bit (the same
// product over the same packed matrix). A run whose W_i and C_i are not the
// tensors and data it was bound to, or whose A does not fit them, goes
// through the group's general path. Bind refuses (ok false) unless every
// W_i is a constant input (Config.ConstInputs) and the inputs check.
func (g *denseGroup) Bind(in []*tensor.Tensor) (op ops.ArenaOp, ok bool) {
	h, k, _, offs, allConst, err := g.check(nil, in)
	if err != nil || !allConst || k == 0 || offs[h] == 0 {
		return nil, false
	}
	b := &boundGroup{g: g, h: h, k: k, offs: offs, aRank: in[0].Rank(),
		in: append([]*tensor.Tensor(nil), in...), data: make([]unsafe.Pointer, len(in)),
		lens: make([]int, len(in)), shapes: make([][]int, len(in))}
	b.in[0] = nil // A changes with every run
	for i := 1; i < len(in); i++ {
		if t := in[i]; t != nil {
			d := t.Float32s()
			b.data[i], b.lens[i] = unsafe.Pointer(unsafe.SliceData(d)), len(d)
			b.shapes[i] = append([]int(nil), t.Shape...)
		}
	}
	b.pb = g.packs.get(in, offs, g.transB, k)
	return b, true
}

// boundGroup is a denseGroup bound to its weights (see Bind).
type boundGroup struct {
	g     *denseGroup
	h, k  int
	offs  []int
	aRank int
	// inputs 1.. as bound: tensor, data address and length, shape
	in     []*tensor.Tensor
	data   []unsafe.Pointer
	lens   []int
	shapes [][]int
	pb     *linalg.PackedB
	own    groupOwn
}

// groupOwn are a bound group's outputs and wide product, reused while A's
// leading dims stay the same.
type groupOwn struct {
	lead []int // A's leading dims they were made for
	outs []*tensor.Tensor
	wide []float32
}

// get returns the outputs for in (made anew when A's leading dims changed)
// and the zeroed wide product.
func (o *groupOwn) get(in []*tensor.Tensor, h, m int, offs []int) ([]*tensor.Tensor, []float32, error) {
	a := in[0]
	if o.outs == nil || !tensor.SameShape(o.lead, a.Shape[:len(a.Shape)-1]) {
		outs := make([]*tensor.Tensor, h)
		var shape [8]int
		for i := range outs {
			t, err := tensor.New(tensor.Float32, headShape(&shape, in, i, offs[i+1]-offs[i]))
			if err != nil {
				return nil, nil, err
			}
			outs[i] = t
		}
		o.outs, o.wide = outs, make([]float32, m*offs[h])
		o.lead = append(o.lead[:0], a.Shape[:len(a.Shape)-1]...)
	}
	clear(o.wide)
	return o.outs, o.wide, nil
}

func (b *boundGroup) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return b.RunWith(nil, in) }

// RunWith runs the heads with the bound weights when in holds them, and
// through the group's general path otherwise. The bound path writes into
// outputs (and a wide product) of the bound group's own, reused by its next
// run while A's leading dims stay: as with an arena's, the outputs are
// valid until then, and a bound group serves one caller at a time (a
// stream binds one per executor).
func (b *boundGroup) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if !b.matches(in) {
		return b.g.RunWith(ar, in)
	}
	a := in[0]
	m := 1
	for _, d := range a.Shape[:len(a.Shape)-1] {
		m *= d
	}
	return b.g.compute(ar, in, b.h, b.k, m, b.offs, true, b.pb, &b.own)
}

// matches reports whether in holds the bound weights and biases and an A
// of the bound rank, float32, with the bound inner dimension.
func (b *boundGroup) matches(in []*tensor.Tensor) bool {
	if len(in) != len(b.in) {
		return false
	}
	a := in[0]
	if a == nil || a.DType != tensor.Float32 || len(a.Shape) != b.aRank || a.Shape[b.aRank-1] != b.k {
		return false
	}
	for i := 1; i < len(in); i++ {
		t := in[i]
		if t != b.in[i] {
			return false
		}
		if t == nil {
			continue
		}
		d, ok := t.Data.([]float32)
		if !ok || unsafe.Pointer(unsafe.SliceData(d)) != b.data[i] || len(d) != b.lens[i] || !tensor.SameShape(t.Shape, b.shapes[i]) {
			return false
		}
	}
	return true
}
