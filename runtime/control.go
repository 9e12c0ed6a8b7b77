package runtime

import (
	"fmt"
	"reflect"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// The control-flow ops live here rather than in ops/ because their bodies
// are graphs that read values of the enclosing scope.

func newControlFlow(n *graph.Node, opset int, subs map[string]*compiled) (kernel, error) {
	need := func(attr string) (*compiled, error) {
		c, ok := subs[attr]
		if !ok {
			return nil, fmt.Errorf("missing graph attribute %q", attr)
		}
		return c, nil
	}
	switch n.OpType {
	case "If":
		th, err := need("then_branch")
		if err != nil {
			return nil, err
		}
		el, err := need("else_branch")
		if err != nil {
			return nil, err
		}
		return &ifOp{then: th, els: el}, nil
	case "Loop":
		body, err := need("body")
		if err != nil {
			return nil, err
		}
		if len(body.g.Inputs) < 2 || len(body.g.Outputs) < 1 {
			return nil, fmt.Errorf("Loop body needs at least 2 inputs and 1 output, has %d and %d", len(body.g.Inputs), len(body.g.Outputs))
		}
		nState := len(n.Inputs) - 2
		if nState < 0 {
			return nil, fmt.Errorf("Loop needs inputs M and cond (possibly empty), has %d inputs", len(n.Inputs))
		}
		if len(body.g.Inputs) != nState+2 {
			return nil, fmt.Errorf("Loop carries %d state values but its body takes %d inputs (want %d)", nState, len(body.g.Inputs), nState+2)
		}
		if len(body.g.Outputs) < nState+1 {
			return nil, fmt.Errorf("Loop body has %d outputs, needs at least %d", len(body.g.Outputs), nState+1)
		}
		return &loopOp{body: body, nState: nState}, nil
	case "Scan":
		body, err := need("body")
		if err != nil {
			return nil, err
		}
		numScan := int(n.Attrs.Int("num_scan_inputs", -1))
		if numScan < 1 {
			return nil, fmt.Errorf("Scan needs num_scan_inputs >= 1")
		}
		s := &scanOp{body: body, numScan: numScan, opset8: opset < 9}
		first := 0
		if s.opset8 {
			first = 1 // sequence_lens
		}
		s.nState = len(n.Inputs) - first - numScan
		if s.nState < 0 {
			return nil, fmt.Errorf("Scan has %d inputs but num_scan_inputs is %d", len(n.Inputs), numScan)
		}
		s.nScanOut = len(body.g.Outputs) - s.nState
		if s.nScanOut < 0 || len(body.g.Inputs) != s.nState+numScan {
			return nil, fmt.Errorf("Scan body signature (%d inputs, %d outputs) does not fit %d states and %d scan inputs", len(body.g.Inputs), len(body.g.Outputs), s.nState, numScan)
		}
		dirAttr := "scan_input_directions"
		if s.opset8 {
			dirAttr = "directions"
		}
		s.inDirs = ints(n.Attrs.Ints(dirAttr), numScan)
		s.inAxes = ints(n.Attrs.Ints("scan_input_axes"), numScan)
		s.outDirs = ints(n.Attrs.Ints("scan_output_directions"), s.nScanOut)
		s.outAxes = ints(n.Attrs.Ints("scan_output_axes"), s.nScanOut)
		return s, nil
	case "SequenceMap":
		body, err := need("body")
		if err != nil {
			return nil, err
		}
		if len(body.g.Inputs) != len(n.Inputs) || len(body.g.Outputs) != len(n.Outputs) {
			return nil, fmt.Errorf("SequenceMap body signature (%d inputs, %d outputs) does not fit the node's %d inputs and %d outputs", len(body.g.Inputs), len(body.g.Outputs), len(n.Inputs), len(n.Outputs))
		}
		return &seqMapOp{body: body}, nil
	}
	return nil, fmt.Errorf("not a control-flow op: %s", n.OpType)
}

// seqMapOp is SequenceMap: the body runs once per element of the input
// sequence, reading element i of every sequence input and the whole of
// every tensor input; output k collects the body's output k.
type seqMapOp struct{ body *compiled }

func (o *seqMapOp) runScoped(env *scope, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(in) == 0 || in[0] == nil || in[0].DType != tensor.Sequence {
		return nil, fmt.Errorf("SequenceMap needs a sequence as input 0")
	}
	n := len(in[0].Elements())
	for k, t := range in {
		if t != nil && t.DType == tensor.Sequence && len(t.Elements()) != n {
			return nil, fmt.Errorf("SequenceMap input %d has %d elements, input 0 has %d", k, len(t.Elements()), n)
		}
	}
	outs := make([][]*tensor.Tensor, len(o.body.g.Outputs))
	bodyIn := make([]*tensor.Tensor, len(in))
	for i := 0; i < n; i++ {
		for k, t := range in {
			bodyIn[k] = t
			if t != nil && t.DType == tensor.Sequence {
				bodyIn[k] = t.Elements()[i]
			}
		}
		res, err := o.body.runGraph(env, bodyIn)
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		for k := range outs {
			outs[k] = append(outs[k], res[k])
		}
	}
	seqs := make([]*tensor.Tensor, len(outs))
	for k, o := range outs {
		seqs[k] = tensor.NewSequence(o)
	}
	return seqs, nil
}

func ints(v []int64, n int) []int {
	out := make([]int, n)
	for i := range out {
		if i < len(v) {
			out[i] = int(v[i])
		}
	}
	return out
}

func scalarBool(t *tensor.Tensor, what string) (bool, error) {
	if t.Len() != 1 {
		return false, fmt.Errorf("%s must have one element, has shape %v", what, t.Shape)
	}
	v, err := tensor.AsFloat64(t)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return v[0] != 0, nil
}

type ifOp struct{ then, els *compiled }

func (o *ifOp) runScoped(env *scope, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(in) < 1 || in[0] == nil {
		return nil, fmt.Errorf("If needs a condition input")
	}
	c, err := scalarBool(in[0], "condition")
	if err != nil {
		return nil, err
	}
	branch := o.els
	if c {
		branch = o.then
	}
	return branch.runGraph(env, nil)
}

type loopOp struct {
	body   *compiled
	nState int
}

// maxLoopTrips bounds a Loop with neither trip count nor a condition that
// ever turns false, so a bad model fails instead of hanging.
const maxLoopTrips = 1 << 24

func (o *loopOp) runScoped(env *scope, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	tripLimit := int64(maxLoopTrips)
	if in[0] != nil {
		v, err := tensor.AsInt64(in[0])
		if err != nil || len(v) != 1 {
			return nil, fmt.Errorf("trip count M must be an int64 scalar, got %v", in[0])
		}
		tripLimit = min(v[0], maxLoopTrips)
	}
	cond := true
	if in[1] != nil {
		c, err := scalarBool(in[1], "cond")
		if err != nil {
			return nil, err
		}
		cond = c
	}
	state := append([]*tensor.Tensor{}, in[2:]...)
	nScan := len(o.body.g.Outputs) - 1 - o.nState
	scans := make([][]*tensor.Tensor, nScan)
	bodyIn := make([]*tensor.Tensor, 2+o.nState)
	scanned := 0
	for i := int64(0); i < tripLimit && cond; i++ {
		if err := env.err(); err != nil {
			return nil, err
		}
		bodyIn[0] = tensor.Scalar(i)
		bodyIn[1] = tensor.Scalar(cond)
		copy(bodyIn[2:], state)
		outs, err := o.body.runGraph(env, bodyIn)
		if err != nil {
			return nil, fmt.Errorf("iteration %d: %w", i, err)
		}
		c, err := scalarBool(outs[0], "body condition output")
		if err != nil {
			return nil, fmt.Errorf("iteration %d: %w", i, err)
		}
		cond = c
		copy(state, outs[1:1+o.nState])
		for k := range scans {
			t := outs[1+o.nState+k]
			// bound what a runaway loop can pile up before Stack refuses it
			if scanned += t.Len(); scanned > tensor.MaxElements {
				return nil, fmt.Errorf("iteration %d: scan outputs exceed %d elements", i, tensor.MaxElements)
			}
			scans[k] = append(scans[k], t)
		}
	}
	res := append([]*tensor.Tensor{}, state...)
	for k, s := range scans {
		if len(s) == 0 {
			// zero iterations: an empty scan output whose element shape is
			// the body output's declared one (as onnxruntime gives it: a
			// declared [1] makes [0 1]; unknown dims count 0)
			out := o.body.g.Outputs[1+o.nState+k]
			dt := out.DType
			if dt == tensor.Undefined {
				dt = tensor.Float32
			}
			shape := []int{0}
			if out.HasShape {
				for _, d := range out.Shape {
					shape = append(shape, int(max(d.Value, 0)))
				}
			}
			t, err := tensor.New(dt, shape)
			if err != nil {
				return nil, err
			}
			res = append(res, t)
			continue
		}
		t, err := tensor.Stack(s)
		if err != nil {
			return nil, fmt.Errorf("scan output %d: %w", k, err)
		}
		res = append(res, t)
	}
	return res, nil
}

type scanOp struct {
	body             *compiled
	numScan, nState  int
	nScanOut         int
	opset8           bool
	inDirs, inAxes   []int
	outDirs, outAxes []int
}

func (o *scanOp) runScoped(env *scope, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if o.opset8 {
		if in[0] != nil {
			return nil, fmt.Errorf("Scan-8 sequence_lens is not supported")
		}
		// opset 8 has a leading batch axis on every state and scan input:
		// run the opset-9 semantics once per batch row and stack the results
		rest := in[1:]
		if len(rest) == 0 || rest[0] == nil || rest[0].Rank() == 0 {
			return nil, fmt.Errorf("Scan-8 needs batched inputs")
		}
		batch := rest[0].Shape[0]
		rows := make([][]*tensor.Tensor, len(rest))
		for i, t := range rest {
			if t == nil {
				return nil, fmt.Errorf("Scan-8 input %d is missing", i+1)
			}
			u, err := tensor.Unstack(t)
			if err != nil || len(u) != batch {
				return nil, fmt.Errorf("Scan-8 input %d must have batch %d first, has shape %v", i+1, batch, t.Shape)
			}
			rows[i] = u
		}
		perOut := make([][]*tensor.Tensor, o.nState+o.nScanOut)
		for b := 0; b < batch; b++ {
			row := make([]*tensor.Tensor, len(rest))
			for i := range rest {
				row[i] = rows[i][b]
			}
			outs, err := o.scan(env, row, 0)
			if err != nil {
				return nil, err
			}
			for k, t := range outs {
				perOut[k] = append(perOut[k], t)
			}
		}
		res := make([]*tensor.Tensor, len(perOut))
		for k, ts := range perOut {
			t, err := tensor.Stack(ts)
			if err != nil {
				return nil, err
			}
			res[k] = t
		}
		return res, nil
	}
	return o.scan(env, in, 0)
}

func (o *scanOp) scan(env *scope, in []*tensor.Tensor, _ int) ([]*tensor.Tensor, error) {
	state := append([]*tensor.Tensor{}, in[:o.nState]...)
	scanIn := in[o.nState:]
	steps := -1
	slices := make([][]*tensor.Tensor, o.numScan)
	for i, t := range scanIn {
		if t == nil {
			return nil, fmt.Errorf("scan input %d is missing", i)
		}
		axis := o.inAxes[i]
		if axis < 0 {
			axis += t.Rank()
		}
		if axis < 0 || axis >= t.Rank() {
			return nil, fmt.Errorf("scan input %d: axis %d out of range for shape %v", i, o.inAxes[i], t.Shape)
		}
		moved, err := moveAxisToFront(t, axis)
		if err != nil {
			return nil, err
		}
		u, err := tensor.Unstack(moved)
		if err != nil {
			return nil, err
		}
		if steps >= 0 && len(u) != steps {
			return nil, fmt.Errorf("scan inputs disagree on sequence length: %d vs %d", steps, len(u))
		}
		steps = len(u)
		if o.inDirs[i] == 1 {
			for a, b := 0, len(u)-1; a < b; a, b = a+1, b-1 {
				u[a], u[b] = u[b], u[a]
			}
		}
		slices[i] = u
	}
	outs := make([][]*tensor.Tensor, o.nScanOut)
	bodyIn := make([]*tensor.Tensor, o.nState+o.numScan)
	for s := 0; s < steps; s++ {
		if err := env.err(); err != nil {
			return nil, err
		}
		copy(bodyIn, state)
		for i := range slices {
			bodyIn[o.nState+i] = slices[i][s]
		}
		res, err := o.body.runGraph(env, bodyIn)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", s, err)
		}
		copy(state, res[:o.nState])
		for k := range outs {
			outs[k] = append(outs[k], res[o.nState+k])
		}
	}
	result := append([]*tensor.Tensor{}, state...)
	for k, ts := range outs {
		if o.outDirs[k] == 1 {
			for a, b := 0, len(ts)-1; a < b; a, b = a+1, b-1 {
				ts[a], ts[b] = ts[b], ts[a]
			}
		}
		if len(ts) == 0 {
			return nil, fmt.Errorf("scan over zero steps has no element shape for output %d", k)
		}
		t, err := tensor.Stack(ts)
		if err != nil {
			return nil, err
		}
		axis := o.outAxes[k]
		if axis < 0 {
			axis += t.Rank()
		}
		if axis < 0 || axis >= t.Rank() {
			return nil, fmt.Errorf("scan output %d: axis %d out of range for shape %v", k, o.outAxes[k], t.Shape)
		}
		if axis != 0 {
			if t, err = moveFrontAxisTo(t, axis); err != nil {
				return nil, err
			}
		}
		result = append(result, t)
	}
	return result, nil
}

// moveAxisToFront returns t transposed so that axis comes first.
func moveAxisToFront(t *tensor.Tensor, axis int) (*tensor.Tensor, error) {
	if axis == 0 {
		return t, nil
	}
	perm := []int{axis}
	for i := 0; i < t.Rank(); i++ {
		if i != axis {
			perm = append(perm, i)
		}
	}
	return transpose(t, perm)
}

// moveFrontAxisTo moves axis 0 to position axis.
func moveFrontAxisTo(t *tensor.Tensor, axis int) (*tensor.Tensor, error) {
	perm := make([]int, 0, t.Rank())
	for i := 1; i <= axis; i++ {
		perm = append(perm, i)
	}
	perm = append(perm, 0)
	for i := axis + 1; i < t.Rank(); i++ {
		perm = append(perm, i)
	}
	return transpose(t, perm)
}

// transpose is a small general permutation used only by Scan's axis
// handling; the fast Transpose kernel lives in ops/shape.
func transpose(t *tensor.Tensor, perm []int) (*tensor.Tensor, error) {
	shape := make([]int, len(perm))
	for i, p := range perm {
		shape[i] = t.Shape[p]
	}
	idx := make([]int, t.Len())
	inStr := tensor.Strides(t.Shape)
	outStr := tensor.Strides(shape)
	for o := range idx {
		rem, src := o, 0
		for i := range shape {
			c := rem / outStr[i]
			rem %= outStr[i]
			src += c * inStr[perm[i]]
		}
		idx[o] = src
	}
	return gatherFlat(t, shape, idx)
}

// gatherFlat builds a tensor of the given shape whose element i is element
// idx[i] of t, for any dtype.
func gatherFlat(t *tensor.Tensor, shape []int, idx []int) (*tensor.Tensor, error) {
	out, err := tensor.New(t.DType, shape)
	if err != nil {
		return nil, err
	}
	src := reflect.ValueOf(t.Data)
	dst := reflect.ValueOf(out.Data)
	for i, j := range idx {
		dst.Index(i).Set(src.Index(j))
	}
	return out, nil
}
