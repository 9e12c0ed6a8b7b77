package runtime

import (
	"reflect"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// streamView lets a stream skip the kernel of a data-movement step whose
// last run returned its first input's elements, all of them and in order,
// under another shape: a view (Transpose moving a size-1 axis, as of a
// one-step chunk [batch, 1, F] to [1, batch, F]; Gather of the only slab,
// as Y_h[0]; Reshape; Squeeze). The output of such a kernel is a function
// of its first input's dtype and shape, of the other inputs' values and of
// the attributes. So while the first input keeps its dtype and shape and
// the other inputs are the same constant tensors (initializers or static
// values, which are never written), the output is the same view of the
// first input's new data: the step sets it in a header of its own instead
// of calling the kernel (~50-100 ns of checks and arena bookkeeping each,
// against a step of a couple of microseconds). Any other input runs the
// kernel, whose result is looked at again.
type streamView struct {
	ok      bool // the last kernel run was a view with these shapes
	dtype   tensor.DType
	inShape []int
	others  []*tensor.Tensor // inputs 1.. of that run (constant tensors)
	out     tensor.Tensor    // the header handed out; Shape owned here
	outSlot int
}

// viewCandidates marks the steps that may become views: data-movement ops
// with one output in use whose other inputs are constants of the plan
// (initializers, static values) or omitted.
func viewCandidates(e *Executor) []*streamView {
	constSlot := make([]bool, len(e.names))
	for _, in := range e.inits {
		constSlot[in.slot] = true
	}
	for i := range e.steps {
		if st := &e.steps[i]; st.static {
			for _, o := range st.out {
				if o >= 0 {
					constSlot[o] = true
				}
			}
		}
	}
	views := make([]*streamView, len(e.steps))
	for i := range e.steps {
		st := &e.steps[i]
		n := e.c.g.Nodes[st.node]
		if st.static || len(st.in) == 0 || st.in[0] < 0 || !dataMovement(n) {
			continue
		}
		used := 0
		for _, o := range st.out {
			if o >= 0 {
				used++
			}
		}
		ok := used == 1 && st.out[0] >= 0
		for _, s := range st.in[1:] {
			ok = ok && (s < 0 || constSlot[s])
		}
		if ok {
			views[i] = &streamView{outSlot: st.out[0], others: make([]*tensor.Tensor, len(st.in)-1)}
		}
	}
	return views
}

func dataMovement(n *graph.Node) bool {
	d := n.Domain
	if d == "ai.onnx" {
		d = ""
	}
	return ops.HasTraits(d, n.OpType, ops.DataMovement)
}

// take sets the view's output for the step's current inputs and reports
// whether it could (false: run the kernel).
func (v *streamView) take(e *Executor, st *step) bool {
	if !v.ok {
		return false
	}
	x := e.vals[st.in[0]]
	if x == nil || x.DType != v.dtype || !tensor.SameShape(x.Shape, v.inShape) {
		return false
	}
	for j, s := range st.in[1:] {
		var t *tensor.Tensor
		if s >= 0 {
			t = e.vals[s]
		}
		if t != v.others[j] {
			return false
		}
	}
	v.out.Data = x.Data
	e.vals[v.outSlot] = &v.out
	return true
}

// learn looks at the kernel run that just produced the step's output:
// whether it is a view of the first input (same backing array, same
// length), and with which shapes.
func (v *streamView) learn(e *Executor, st *step) {
	v.ok = false
	x, y := st.args[0], e.vals[v.outSlot]
	if x == nil || y == nil || x.DType != y.DType || !sameArray(x.Data, y.Data) {
		return
	}
	for j := range v.others {
		v.others[j] = st.args[1+j]
	}
	v.dtype = x.DType
	v.inShape = append(v.inShape[:0], x.Shape...)
	v.out = tensor.Tensor{DType: y.DType, Shape: append(v.out.Shape[:0], y.Shape...)}
	v.ok = true
}

// sameArray reports whether two tensor data slices are the same non-empty
// elements: same type, first element and length.
func sameArray(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() != reflect.Slice || va.Type() != vb.Type() || va.Len() == 0 || va.Len() != vb.Len() {
		return false
	}
	return va.Pointer() == vb.Pointer()
}
