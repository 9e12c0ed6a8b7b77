package autodiff

import (
	"fmt"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Control flow is differentiated by running the bodies here, one Tape per
// iteration (or per taken branch), and replaying those tapes backwards:
//   - Loop: backpropagation through time over the carried values, with each
//     iteration's slice of the scan-output gradients; a carried value the
//     body passes through unchanged (how tf2onnx hands a Keras RNN its
//     weights) accumulates its gradient over the iterations;
//   - Scan: the same over its states, in either scan direction, the scan
//     inputs' gradients stacked back along their axes;
//   - If: the branch that ran.
// Outer values a body reads (weights, the layer below's sequence) receive
// the sum of their gradients over all iterations.

// The control-flow ops' descriptors (runtime/control_desc.go) get their
// gradient rule here. The Program itself runs and replays their bodies
// (runControl, backControl), so the attached rule is never called; it marks
// them differentiable in the registry.
func init() {
	for _, op := range []string{"Loop", "Scan", "If"} {
		register(op, func(c *Ctx) ([]*tensor.Tensor, error) {
			return nil, fmt.Errorf("%s is differentiated by the program's control-flow pass, not by a rule", c.Node.OpType)
		}, nil)
	}
}

// maxTrips bounds a Loop with neither a trip count nor a condition that
// turns false, as the runtime does.
const maxTrips = 1 << 24

// checkControl refuses control flow that cannot be differentiated: a Loop
// whose trip count or condition depends on a parameter.
func checkControl(p *Program, i int) error {
	n := p.nodes[i]
	switch n.OpType {
	case "Loop":
		body := p.subs[i]["body"]
		if body == nil {
			return fmt.Errorf("autodiff: node %q (Loop) has no body", n.Label())
		}
		dep := (len(n.Inputs) > 0 && p.depends[n.Inputs[0]]) || (len(n.Inputs) > 1 && p.depends[n.Inputs[1]])
		if len(body.g.Outputs) > 0 && p.depends[body.g.Outputs[0].Name] {
			dep = true
		}
		if dep {
			return fmt.Errorf("autodiff: node %q (Loop): its trip count or condition depends on a trained parameter, which has no gradient; freeze the parameters it reads (--freeze)", n.Label())
		}
	case "Scan":
		if p.opsets[i] < 9 {
			return fmt.Errorf("autodiff: node %q (Scan): training supports Scan from opset 9, the model has opset %d", n.Label(), p.opsets[i])
		}
	}
	return nil
}

func (p *Program) runControl(i int, in []*tensor.Tensor, t *Tape) ([]*tensor.Tensor, any, error) {
	switch p.nodes[i].OpType {
	case "Loop":
		return p.runLoop(i, in, t)
	case "Scan":
		return p.runScan(i, in, t)
	case "If":
		return p.runIf(i, in, t)
	}
	return nil, nil, fmt.Errorf("not a control-flow op")
}

func (p *Program) backControl(i int, c *Ctx) ([]*tensor.Tensor, map[string]*tensor.Tensor, error) {
	switch p.nodes[i].OpType {
	case "Loop":
		return p.backLoop(i, c)
	case "Scan":
		return p.backScan(i, c)
	case "If":
		return p.backIf(i, c)
	}
	return nil, nil, fmt.Errorf("not a control-flow op")
}

func scalarTrue(t *tensor.Tensor, what string) (bool, error) {
	if t.Len() != 1 {
		return false, fmt.Errorf("%s must have one element, has shape %v", what, t.Shape)
	}
	v, err := tensor.AsFloat64(t)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	return v[0] != 0, nil
}

// bodyOutputs reads a body's outputs from its tape.
func bodyOutputs(sub *Program, tp *Tape) ([]*tensor.Tensor, error) {
	outs := make([]*tensor.Tensor, len(sub.g.Outputs))
	for j, o := range sub.g.Outputs {
		v, ok := tp.get(o.Name)
		if !ok {
			return nil, fmt.Errorf("body output %q has no value", o.Name)
		}
		outs[j] = v
	}
	return outs, nil
}

// runBody runs a body on positional inputs.
func runBody(sub *Program, in []*tensor.Tensor, parent *Tape) (*Tape, []*tensor.Tensor, error) {
	feed := make(map[string]*tensor.Tensor, len(in))
	for j, v := range in {
		if j < len(sub.g.Inputs) && v != nil {
			feed[sub.g.Inputs[j].Name] = v
		}
	}
	tp, err := sub.run(feed, parent)
	if err != nil {
		return nil, nil, err
	}
	outs, err := bodyOutputs(sub, tp)
	return tp, outs, err
}

// backBody replays one body tape from gradients of its outputs (nil: zero)
// and returns the gradients of its inputs and of the outer values it reads.
func backBody(sub *Program, tp *Tape, gout []*tensor.Tensor, free map[string]*tensor.Tensor) ([]*tensor.Tensor, error) {
	seed := map[string]*tensor.Tensor{}
	for j, g := range gout {
		if g == nil || j >= len(sub.g.Outputs) {
			continue
		}
		name := sub.g.Outputs[j].Name
		if !sub.needGrad[name] {
			continue
		}
		if err := accumulate(seed, name, g); err != nil {
			return nil, err
		}
	}
	if len(seed) == 0 {
		return make([]*tensor.Tensor, len(sub.g.Inputs)), nil
	}
	grads, err := tp.backprop(seed)
	if err != nil {
		return nil, err
	}
	gin := make([]*tensor.Tensor, len(sub.g.Inputs))
	for j, v := range sub.g.Inputs {
		gin[j] = grads[v.Name]
	}
	for _, fv := range sub.freeNeed {
		if g := grads[fv]; g != nil {
			if err := accumulateOwned(free, fv, g); err != nil {
				return nil, err
			}
		}
	}
	return gin, nil
}

// accumulateOwned adds g into acc[name], which it owns: the first gradient
// is copied, later ones are added in place (a Loop sums a weight's
// gradient over every iteration without a new tensor each time).
func accumulateOwned(acc map[string]*tensor.Tensor, name string, g *tensor.Tensor) error {
	prev := acc[name]
	if prev == nil {
		acc[name] = g.Clone()
		return nil
	}
	if prev.DType != g.DType || !tensor.SameShape(prev.Shape, g.Shape) {
		return fmt.Errorf("autodiff: cannot accumulate %v and %v for %q", prev, g, name)
	}
	switch prev.DType {
	case tensor.Float32:
		addInto(tensor.Data[float32](prev), tensor.Data[float32](g))
	case tensor.Float64:
		addInto(tensor.Data[float64](prev), tensor.Data[float64](g))
	default:
		return errDType
	}
	return nil
}

func addInto[T tensor.Float](dst, src []T) {
	for i, v := range src {
		dst[i] += v
	}
}

type loopTapes struct{ tapes []*Tape }

func (p *Program) runLoop(i int, in []*tensor.Tensor, t *Tape) ([]*tensor.Tensor, any, error) {
	body := p.subs[i]["body"]
	if body == nil || len(in) < 2 {
		return nil, nil, fmt.Errorf("Loop needs a body and inputs M and cond")
	}
	nState := len(in) - 2
	if len(body.g.Inputs) != nState+2 || len(body.g.Outputs) < nState+1 {
		return nil, nil, fmt.Errorf("Loop carries %d values but its body has %d inputs and %d outputs", nState, len(body.g.Inputs), len(body.g.Outputs))
	}
	trips := int64(maxTrips)
	if in[0] != nil {
		v, err := tensor.AsInt64(in[0])
		if err != nil || len(v) != 1 {
			return nil, nil, fmt.Errorf("trip count M must be an int64 scalar, got %v", in[0])
		}
		trips = min(v[0], maxTrips)
	}
	cond := true
	if in[1] != nil {
		c, err := scalarTrue(in[1], "cond")
		if err != nil {
			return nil, nil, err
		}
		cond = c
	}
	keep := p.nodeNeedsBackward(i)
	saved := &loopTapes{}
	state := append([]*tensor.Tensor{}, in[2:]...)
	nScan := len(body.g.Outputs) - 1 - nState
	scans := make([][]*tensor.Tensor, nScan)
	bodyIn := make([]*tensor.Tensor, 2+nState)
	for it := int64(0); it < trips && cond; it++ {
		bodyIn[0], bodyIn[1] = tensor.Scalar(it), tensor.Scalar(cond)
		copy(bodyIn[2:], state)
		tp, outs, err := runBody(body, bodyIn, t)
		if err != nil {
			return nil, nil, fmt.Errorf("iteration %d: %w", it, err)
		}
		if cond, err = scalarTrue(outs[0], "body condition output"); err != nil {
			return nil, nil, fmt.Errorf("iteration %d: %w", it, err)
		}
		copy(state, outs[1:1+nState])
		for k := range scans {
			scans[k] = append(scans[k], outs[1+nState+k])
		}
		if keep {
			saved.tapes = append(saved.tapes, tp)
		}
	}
	res := append([]*tensor.Tensor{}, state...)
	for k, s := range scans {
		if len(s) == 0 {
			dt := body.g.Outputs[1+nState+k].DType
			if dt == tensor.Undefined {
				dt = tensor.Float32
			}
			z, err := tensor.New(dt, []int{0})
			if err != nil {
				return nil, nil, err
			}
			res = append(res, z)
			continue
		}
		st, err := tensor.Stack(s)
		if err != nil {
			return nil, nil, fmt.Errorf("scan output %d: %w", k, err)
		}
		res = append(res, st)
	}
	if !keep {
		return res, nil, nil
	}
	return res, saved, nil
}

func (p *Program) backLoop(i int, c *Ctx) ([]*tensor.Tensor, map[string]*tensor.Tensor, error) {
	body := p.subs[i]["body"]
	saved, _ := c.Saved.(*loopTapes)
	if saved == nil {
		return nil, nil, fmt.Errorf("the forward pass kept no iterations")
	}
	nState := len(c.In) - 2
	nScan := len(body.g.Outputs) - 1 - nState
	gState := make([]*tensor.Tensor, nState)
	copy(gState, c.GradOut[:nState])
	scanGrads := make([][]*tensor.Tensor, nScan)
	for k := 0; k < nScan; k++ {
		if g := c.GradOut[nState+k]; g != nil && len(saved.tapes) > 0 {
			u, err := tensor.Unstack(g)
			if err != nil {
				return nil, nil, err
			}
			scanGrads[k] = u
		}
	}
	// a carried value the body passes through unchanged (a weight) has the
	// same gradient flowing in and out of every iteration: its total is the
	// final output's gradient plus what each iteration's nodes add, summed
	// here in place
	through := make([]bool, nState)
	passed := map[string]*tensor.Tensor{}
	for k := range through {
		through[k] = !carriedIsState(body.g, 2+k, 1+k)
	}
	free := map[string]*tensor.Tensor{}
	gout := make([]*tensor.Tensor, len(body.g.Outputs))
	for it := len(saved.tapes) - 1; it >= 0; it-- {
		gout[0] = nil
		copy(gout[1:], gState)
		for k := range through {
			if through[k] {
				gout[1+k] = nil
			}
		}
		for k := 0; k < nScan; k++ {
			gout[1+nState+k] = nil
			if scanGrads[k] != nil {
				gout[1+nState+k] = scanGrads[k][it]
			}
		}
		gin, err := backBody(body, saved.tapes[it], gout, free)
		if err != nil {
			return nil, nil, fmt.Errorf("iteration %d: %w", it, err)
		}
		for k := range through {
			if !through[k] {
				gState[k] = gin[2+k]
			} else if g := gin[2+k]; g != nil {
				if err := accumulateOwned(passed, body.g.Inputs[2+k].Name, g); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	for k := range through {
		out[2+k] = gState[k]
		if !through[k] {
			continue
		}
		// gState[k] still holds the final output's gradient
		if g := passed[body.g.Inputs[2+k].Name]; g != nil {
			if gState[k] != nil {
				if err := accumulateOwned(passed, body.g.Inputs[2+k].Name, gState[k]); err != nil {
					return nil, nil, err
				}
			}
			out[2+k] = passed[body.g.Inputs[2+k].Name]
		}
	}
	return out, free, nil
}

type ifTape struct {
	branch *Program
	tape   *Tape
}

func (p *Program) runIf(i int, in []*tensor.Tensor, t *Tape) ([]*tensor.Tensor, any, error) {
	if len(in) < 1 || in[0] == nil {
		return nil, nil, fmt.Errorf("If needs a condition")
	}
	c, err := scalarTrue(in[0], "condition")
	if err != nil {
		return nil, nil, err
	}
	attr := "else_branch"
	if c {
		attr = "then_branch"
	}
	br := p.subs[i][attr]
	if br == nil {
		return nil, nil, fmt.Errorf("missing %s", attr)
	}
	tp, outs, err := runBody(br, nil, t)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", attr, err)
	}
	return outs, &ifTape{br, tp}, nil
}

func (p *Program) backIf(i int, c *Ctx) ([]*tensor.Tensor, map[string]*tensor.Tensor, error) {
	s, _ := c.Saved.(*ifTape)
	if s == nil {
		return nil, nil, fmt.Errorf("the forward pass kept no branch")
	}
	free := map[string]*tensor.Tensor{}
	if _, err := backBody(s.branch, s.tape, c.GradOut, free); err != nil {
		return nil, nil, err
	}
	return make([]*tensor.Tensor, len(c.In)), free, nil
}

// scanLayout is a Scan node's attributes resolved against its inputs.
type scanLayout struct {
	nState, numScan, nScanOut int
	inDirs, inAxes            []int
	outDirs, outAxes          []int
}

func scanOf(c *Ctx, body *Program) (*scanLayout, error) {
	l := &scanLayout{numScan: int(c.Attrs.Int("num_scan_inputs", -1))}
	if l.numScan < 1 {
		return nil, fmt.Errorf("Scan needs num_scan_inputs >= 1")
	}
	l.nState = len(c.Node.Inputs) - l.numScan
	l.nScanOut = len(body.g.Outputs) - l.nState
	if l.nState < 0 || l.nScanOut < 0 || len(body.g.Inputs) != l.nState+l.numScan {
		return nil, fmt.Errorf("Scan body signature does not fit %d inputs with %d scanned", len(c.Node.Inputs), l.numScan)
	}
	ints := func(v []int64, n int) []int {
		out := make([]int, n)
		for i := range out {
			if i < len(v) {
				out[i] = int(v[i])
			}
		}
		return out
	}
	l.inDirs = ints(c.Attrs.Ints("scan_input_directions"), l.numScan)
	l.inAxes = ints(c.Attrs.Ints("scan_input_axes"), l.numScan)
	l.outDirs = ints(c.Attrs.Ints("scan_output_directions"), l.nScanOut)
	l.outAxes = ints(c.Attrs.Ints("scan_output_axes"), l.nScanOut)
	return l, nil
}

// permute transposes t with the Transpose kernel.
func permute(t *tensor.Tensor, perm []int) (*tensor.Tensor, error) {
	p64 := make([]int64, len(perm))
	identity := true
	for i, v := range perm {
		p64[i] = int64(v)
		identity = identity && v == i
	}
	if identity {
		return t, nil
	}
	k, err := ops.New(&ops.Config{Name: "scan axis", OpType: "Transpose", Opset: 13,
		Attrs: graph.Attrs{"perm": {Type: graph.AttrInts, Ints: p64}}, NumInputs: 1, NumOutputs: 1})
	if err != nil {
		return nil, err
	}
	out, err := k.Run([]*tensor.Tensor{t})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// frontPerm moves axis to the front; its inverse moves it back.
func frontPerm(rank, axis int) (fwd, inv []int) {
	fwd = []int{axis}
	for i := 0; i < rank; i++ {
		if i != axis {
			fwd = append(fwd, i)
		}
	}
	inv = make([]int, rank)
	for i, v := range fwd {
		inv[v] = i
	}
	return fwd, inv
}

func normAxis(axis, rank int) (int, error) {
	if axis < 0 {
		axis += rank
	}
	if axis < 0 || axis >= rank {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	return axis, nil
}

// unstackAxis splits t along axis into steps, reversed when reverse.
func unstackAxis(t *tensor.Tensor, axis int, reverse bool) ([]*tensor.Tensor, error) {
	a, err := normAxis(axis, t.Rank())
	if err != nil {
		return nil, err
	}
	fwd, _ := frontPerm(t.Rank(), a)
	moved, err := permute(t, fwd)
	if err != nil {
		return nil, err
	}
	u, err := tensor.Unstack(moved)
	if err != nil {
		return nil, err
	}
	if reverse {
		for x, y := 0, len(u)-1; x < y; x, y = x+1, y-1 {
			u[x], u[y] = u[y], u[x]
		}
	}
	return u, nil
}

// stackAxis is the inverse of unstackAxis.
func stackAxis(ts []*tensor.Tensor, axis int, reverse bool) (*tensor.Tensor, error) {
	ts = append([]*tensor.Tensor(nil), ts...)
	if reverse {
		for x, y := 0, len(ts)-1; x < y; x, y = x+1, y-1 {
			ts[x], ts[y] = ts[y], ts[x]
		}
	}
	st, err := tensor.Stack(ts)
	if err != nil {
		return nil, err
	}
	a, err := normAxis(axis, st.Rank())
	if err != nil {
		return nil, err
	}
	_, inv := frontPerm(st.Rank(), a)
	return permute(st, inv)
}

type scanTapes struct{ tapes []*Tape }

func (p *Program) runScan(i int, in []*tensor.Tensor, t *Tape) ([]*tensor.Tensor, any, error) {
	body := p.subs[i]["body"]
	c := &Ctx{Node: p.nodes[i], Attrs: p.nodes[i].Attrs}
	l, err := scanOf(c, body)
	if err != nil {
		return nil, nil, err
	}
	if p.opsets[i] < 9 {
		return nil, nil, fmt.Errorf("training supports Scan from opset 9")
	}
	state := append([]*tensor.Tensor{}, in[:l.nState]...)
	steps := -1
	slices := make([][]*tensor.Tensor, l.numScan)
	for k := 0; k < l.numScan; k++ {
		x := in[l.nState+k]
		if x == nil {
			return nil, nil, fmt.Errorf("scan input %d is missing", k)
		}
		u, err := unstackAxis(x, l.inAxes[k], l.inDirs[k] == 1)
		if err != nil {
			return nil, nil, fmt.Errorf("scan input %d: %w", k, err)
		}
		if steps >= 0 && len(u) != steps {
			return nil, nil, fmt.Errorf("scan inputs disagree on sequence length: %d vs %d", steps, len(u))
		}
		steps, slices[k] = len(u), u
	}
	keep := p.nodeNeedsBackward(i)
	saved := &scanTapes{}
	outs := make([][]*tensor.Tensor, l.nScanOut)
	bodyIn := make([]*tensor.Tensor, l.nState+l.numScan)
	for s := 0; s < steps; s++ {
		copy(bodyIn, state)
		for k := range slices {
			bodyIn[l.nState+k] = slices[k][s]
		}
		tp, res, err := runBody(body, bodyIn, t)
		if err != nil {
			return nil, nil, fmt.Errorf("step %d: %w", s, err)
		}
		copy(state, res[:l.nState])
		for k := range outs {
			outs[k] = append(outs[k], res[l.nState+k])
		}
		if keep {
			saved.tapes = append(saved.tapes, tp)
		}
	}
	result := append([]*tensor.Tensor{}, state...)
	for k, ts := range outs {
		if len(ts) == 0 {
			return nil, nil, fmt.Errorf("scan over zero steps has no element shape for output %d", k)
		}
		st, err := stackAxis(ts, l.outAxes[k], l.outDirs[k] == 1)
		if err != nil {
			return nil, nil, fmt.Errorf("scan output %d: %w", k, err)
		}
		result = append(result, st)
	}
	if !keep {
		return result, nil, nil
	}
	return result, saved, nil
}

func (p *Program) backScan(i int, c *Ctx) ([]*tensor.Tensor, map[string]*tensor.Tensor, error) {
	body := p.subs[i]["body"]
	saved, _ := c.Saved.(*scanTapes)
	if saved == nil {
		return nil, nil, fmt.Errorf("the forward pass kept no steps")
	}
	l, err := scanOf(c, body)
	if err != nil {
		return nil, nil, err
	}
	steps := len(saved.tapes)
	gState := make([]*tensor.Tensor, l.nState)
	copy(gState, c.GradOut[:l.nState])
	outGrads := make([][]*tensor.Tensor, l.nScanOut)
	for k := 0; k < l.nScanOut; k++ {
		if g := c.GradOut[l.nState+k]; g != nil {
			if outGrads[k], err = unstackAxis(g, l.outAxes[k], l.outDirs[k] == 1); err != nil {
				return nil, nil, err
			}
		}
	}
	inGrads := make([][]*tensor.Tensor, l.numScan)
	for k := range inGrads {
		inGrads[k] = make([]*tensor.Tensor, steps)
	}
	free := map[string]*tensor.Tensor{}
	gout := make([]*tensor.Tensor, len(body.g.Outputs))
	for s := steps - 1; s >= 0; s-- {
		copy(gout, gState)
		for k := 0; k < l.nScanOut; k++ {
			gout[l.nState+k] = nil
			if outGrads[k] != nil {
				gout[l.nState+k] = outGrads[k][s]
			}
		}
		gin, err := backBody(body, saved.tapes[s], gout, free)
		if err != nil {
			return nil, nil, fmt.Errorf("step %d: %w", s, err)
		}
		copy(gState, gin[:l.nState])
		for k := 0; k < l.numScan; k++ {
			inGrads[k][s] = gin[l.nState+k]
		}
	}
	out := make([]*tensor.Tensor, len(c.In))
	copy(out, gState)
	for k := 0; k < l.numScan; k++ {
		if !c.Need[l.nState+k] {
			continue
		}
		x := c.In[l.nState+k]
		parts := inGrads[k]
		any := false
		for s, g := range parts {
			if g != nil {
				any = true
				continue
			}
			// zero slices where no gradient reached the step
			shape := append([]int{}, x.Shape...)
			a, _ := normAxis(l.inAxes[k], x.Rank())
			shape = append(shape[:a], shape[a+1:]...)
			z, err := tensor.New(x.DType, shape)
			if err != nil {
				return nil, nil, err
			}
			parts[s] = z
		}
		if !any {
			continue
		}
		g, err := stackAxis(parts, l.inAxes[k], l.inDirs[k] == 1)
		if err != nil {
			return nil, nil, fmt.Errorf("scan input %d: %w", k, err)
		}
		out[l.nState+k] = g
	}
	return out, free, nil
}
