package shapeinfer

import (
	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	register(ruleIf, "If")
	register(ruleLoop, "Loop")
	register(ruleScan, "Scan")
}

func (c *ctx) subgraph(attr string) *graph.Graph {
	a, ok := c.n.Attrs[attr]
	if !ok {
		return nil
	}
	return a.Graph
}

// merge is the type both a and b satisfy: equal dims stay, others become
// fresh symbols.
func (c *ctx) merge(a, b *val) *val {
	if a == nil || b == nil {
		return nil
	}
	dt := a.dtype
	if dt == tensor.Undefined {
		dt = b.dtype
	}
	if !a.ranked || !b.ranked || a.rank() != b.rank() {
		return unranked(dt)
	}
	shape := make([]Expr, a.rank())
	for i := range shape {
		if a.shape[i].Equal(b.shape[i]) {
			shape[i] = a.shape[i]
		} else {
			shape[i] = c.fresh()
		}
	}
	return ranked(dt, shape...)
}

func ruleIf(c *ctx) []*val {
	then, els := c.subgraph("then_branch"), c.subgraph("else_branch")
	if then == nil || els == nil {
		return nil
	}
	var taken *graph.Graph
	if cond := c.input(0); cond != nil && len(cond.data) == 1 {
		if v, ok := cond.data[0].IsConst(); ok {
			taken = els
			if v != 0 {
				taken = then
			}
		}
	}
	a := c.in.graph(then, c.sc, nil)
	b := c.in.graph(els, c.sc, nil)
	switch taken {
	case then:
		return a
	case els:
		return b
	}
	outs := make([]*val, len(c.n.Outputs))
	for i := range outs {
		if i < len(a) && i < len(b) {
			outs[i] = c.merge(a[i], b[i])
		}
	}
	return outs
}

// generalize returns a type covering both a (a carried value's type at the
// start of an iteration) and b (its type at the end): tracked values that
// differ are dropped and differing dims become fresh symbols; fixed marks
// dims already generalized, which are not compared again. changed reports
// whether another pass over the body is needed.
func (c *ctx) generalize(a, b *val, fixed map[int]bool) (*val, bool) {
	if a == nil || b == nil {
		return a, false
	}
	changed := false
	data := a.data
	if data != nil {
		same := len(a.data) == len(b.data)
		for i := 0; same && i < len(a.data); i++ {
			same = a.data[i].Equal(b.data[i])
		}
		if !same {
			data, changed = nil, true
		}
	}
	if !a.ranked {
		return &val{dtype: a.dtype}, changed
	}
	if !b.ranked || b.rank() != a.rank() {
		return unranked(a.dtype), true
	}
	out := ranked(a.dtype, copyShape(a.shape)...)
	for i := range out.shape {
		if !fixed[i] && !a.shape[i].Equal(b.shape[i]) {
			out.shape[i] = c.fresh()
			fixed[i] = true
			changed = true
		}
	}
	if data != nil {
		out.withData(data)
	}
	return out, changed
}

// fixpoint infers body with the carried inputs (positions carriedIn of the
// body inputs, fed by outputs carriedOut) until their types are stable.
func (c *ctx) fixpoint(body *graph.Graph, inputs []*val, carriedIn, carriedOut int, n int) []*val {
	fixed := make([]map[int]bool, n)
	for j := range fixed {
		fixed[j] = map[int]bool{}
	}
	var outs []*val
	mark := len(c.in.problems)
	for pass := 0; pass < 8; pass++ {
		c.in.problems = c.in.problems[:mark] // keep only the last pass's findings
		outs = c.in.graph(body, c.sc, inputs)
		changed := false
		for j := 0; j < n; j++ {
			ii, oi := carriedIn+j, carriedOut+j
			if ii >= len(inputs) || oi >= len(outs) {
				break
			}
			g, ch := c.generalize(inputs[ii], outs[oi], fixed[j])
			inputs[ii] = g
			changed = changed || ch
		}
		if !changed {
			break
		}
	}
	return outs
}

// passThrough reports whether body output o is body input i unchanged
// (directly or through Identity).
func passThrough(body *graph.Graph, o, i int) bool {
	if o >= len(body.Outputs) || i >= len(body.Inputs) {
		return false
	}
	name := body.Outputs[o].Name
	prod := body.Producers()
	for k := 0; k < 8; k++ {
		if name == body.Inputs[i].Name {
			return true
		}
		n, ok := prod[name]
		if !ok || n.OpType != "Identity" || len(n.Inputs) == 0 {
			return false
		}
		name = n.Inputs[0]
	}
	return false
}

func ruleLoop(c *ctx) []*val {
	body := c.subgraph("body")
	if body == nil {
		return nil
	}
	nCarried := max(len(c.ins)-2, 0)
	inputs := make([]*val, 2+nCarried)
	inputs[0] = ranked(tensor.Int64)
	inputs[1] = ranked(tensor.Bool)
	for j := 0; j < nCarried; j++ {
		if v := c.input(2 + j); v != nil {
			cp := same(v)
			cp.data = v.data
			inputs[2+j] = cp
		}
	}
	outs := c.fixpoint(body, inputs, 2, 1, nCarried)
	// trip count: M when the loop only stops on M
	trip := Unknown()
	if m := c.input(0); m != nil && len(m.data) == 1 && !m.data[0].IsUnknown() {
		condIn := c.input(1)
		condTrue := condIn == nil || (len(condIn.data) == 1 && condIn.data[0].isConstVal(1))
		if condTrue && passThrough(body, 0, 1) {
			trip = m.data[0]
		}
	}
	if trip.IsUnknown() {
		if n, ok := c.simulateTrips(body); ok {
			trip = Const(n)
		}
	}
	res := make([]*val, len(c.n.Outputs))
	for j := range res {
		switch {
		case j < nCarried:
			if 2+j < len(inputs) && inputs[2+j] != nil {
				res[j] = same(inputs[2+j])
				res[j].data = inputs[2+j].data
			}
		case 1+j < len(outs):
			s := outs[1+j]
			if s == nil {
				continue
			}
			if !s.ranked {
				res[j] = unranked(s.dtype)
				continue
			}
			res[j] = ranked(s.dtype, append([]Expr{c.known(trip)}, s.shape...)...)
		}
	}
	return res
}

func ruleScan(c *ctx) []*val {
	body := c.subgraph("body")
	if body == nil {
		return nil
	}
	if c.opset < 9 {
		return c.scan8(body)
	}
	m := int(c.attrInt("num_scan_inputs", 0))
	nState := len(c.ins) - m
	if m <= 0 || nState < 0 {
		c.problem("num_scan_inputs %d does not fit %d inputs", m, len(c.ins))
		return nil
	}
	inAxes := c.attrInts("scan_input_axes")
	outAxes := c.attrInts("scan_output_axes")
	inputs := make([]*val, len(c.ins))
	seq := Unknown()
	for j := 0; j < nState; j++ {
		if v := c.input(j); v != nil {
			inputs[j] = same(v)
		}
	}
	for j := 0; j < m; j++ {
		v := c.r(nState + j)
		if v == nil {
			continue
		}
		var ax int64
		if j < len(inAxes) {
			ax = inAxes[j]
		}
		a, ok := normAxis(ax, v.rank())
		if !ok {
			c.problem("scan input %d: axis %d out of range for rank %d", j, ax, v.rank())
			continue
		}
		if seq.IsUnknown() {
			seq = v.shape[a]
		}
		shape := append(copyShape(v.shape[:a]), v.shape[a+1:]...)
		inputs[nState+j] = ranked(v.dtype, shape...)
	}
	outs := c.fixpoint(body, inputs, 0, 0, nState)
	res := make([]*val, len(c.n.Outputs))
	for j := range res {
		switch {
		case j < nState:
			if inputs[j] != nil {
				res[j] = same(inputs[j])
			}
		case j < len(outs):
			s := outs[j]
			if s == nil || !s.ranked {
				if s != nil {
					res[j] = unranked(s.dtype)
				}
				continue
			}
			var ax int64
			if k := j - nState; k < len(outAxes) {
				ax = outAxes[k]
			}
			a, ok := normAxis(ax, s.rank()+1)
			if !ok {
				res[j] = unranked(s.dtype)
				continue
			}
			shape := append(copyShape(s.shape[:a]), c.known(seq))
			shape = append(shape, s.shape[a:]...)
			res[j] = ranked(s.dtype, shape...)
		}
	}
	return res
}

// Limits of simulateTrips.
const (
	maxTrips     = 1 << 14
	maxSimulated = 1 << 18 // node evaluations
)

// simulateTrips counts a Loop's iterations when its termination depends only
// on tracked constants (as in tf2onnx while-loops: i < 120 and counter < M):
// it evaluates, iteration by iteration, just the part of the body that
// computes the condition and the carried values that feed it.
func (c *ctx) simulateTrips(body *graph.Graph) (int64, bool) {
	if len(body.Outputs) == 0 || len(body.Inputs) < 2 {
		return 0, false
	}
	limit := int64(-1)
	if m := c.input(0); m != nil {
		xs, ok := m.ints()
		if !ok || len(xs) != 1 {
			return 0, false
		}
		limit = xs[0]
	}
	cond := true
	if cv := c.input(1); cv != nil {
		xs, ok := cv.ints()
		if !ok || len(xs) != 1 {
			return 0, false
		}
		cond = xs[0] != 0
	}
	// the slice of the body the condition needs
	prod := body.Producers()
	inputIdx := map[string]int{}
	for i, v := range body.Inputs {
		inputIdx[v.Name] = i
	}
	needNode := map[*graph.Node]bool{}
	needCarried := map[int]bool{}
	work := []string{body.Outputs[0].Name}
	seen := map[string]bool{}
	for len(work) > 0 {
		name := work[len(work)-1]
		work = work[:len(work)-1]
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		if n, ok := prod[name]; ok {
			if len(n.Subgraphs()) > 0 {
				return 0, false
			}
			needNode[n] = true
			work = append(work, n.Inputs...)
			continue
		}
		if i, ok := inputIdx[name]; ok && i >= 2 {
			j := i - 2
			if 1+j >= len(body.Outputs) {
				return 0, false
			}
			needCarried[j] = true
			work = append(work, body.Outputs[1+j].Name)
		}
	}
	var nodes []*graph.Node
	for _, n := range body.Nodes {
		if needNode[n] {
			nodes = append(nodes, n)
		}
	}
	carried := map[int]*val{}
	for j := range needCarried {
		v := c.input(2 + j)
		if v == nil || v.data == nil {
			return 0, false
		}
		carried[j] = v
	}
	sb := &inferer{opset: c.in.opset, out: map[string]graph.ValueInfo{}, vals: map[string]*val{},
		used: map[string]bool{}, fresh: map[string]bool{}}
	consts := map[string]*val{}
	for name, t := range body.Initializers {
		consts[name] = fromTensor(t)
	}
	none := map[string]graph.ValueInfo{}
	evals := 0
	for k := int64(0); ; k++ {
		if (limit >= 0 && k >= limit) || !cond {
			return k, true
		}
		if k >= maxTrips || evals > maxSimulated {
			return 0, false
		}
		sc := &scope{vals: map[string]*val{}, parent: &scope{vals: consts, parent: c.sc}}
		sc.vals[body.Inputs[0].Name] = ranked(tensor.Int64).withData([]Expr{Const(k)})
		sc.vals[body.Inputs[1].Name] = ranked(tensor.Bool).withData([]Expr{boolExpr(cond)})
		for j, v := range carried {
			sc.vals[body.Inputs[2+j].Name] = v
		}
		for _, n := range nodes {
			sb.node(n, sc, none)
		}
		evals += len(nodes) + 1
		cv := sc.get(body.Outputs[0].Name)
		xs, ok := cv.ints()
		if !ok || len(xs) != 1 {
			return 0, false
		}
		cond = xs[0] != 0
		next := map[int]*val{}
		for j := range carried {
			v := sc.get(body.Outputs[1+j].Name)
			if v == nil || v.data == nil {
				return 0, false
			}
			next[j] = v
		}
		carried = next
	}
}

// scan8 is Scan before opset 9: inputs (sequence_lens, states..., scan
// inputs...) all carry a leading batch axis, and scan inputs and outputs
// have the sequence on axis 1.
func (c *ctx) scan8(body *graph.Graph) []*val {
	m := int(c.attrInt("num_scan_inputs", 0))
	nState := len(c.ins) - 1 - m
	if m <= 0 || nState < 0 {
		c.problem("num_scan_inputs %d does not fit %d inputs", m, len(c.ins))
		return nil
	}
	batch, seq := Unknown(), Unknown()
	inputs := make([]*val, nState+m)
	for j := 0; j < nState+m; j++ {
		v := c.r(1 + j)
		if v == nil {
			continue
		}
		skip := 1
		if j >= nState {
			skip = 2
		}
		if v.rank() < skip {
			c.problem("input %d %s lacks the batch (and sequence) axes", 1+j, shapeString(v.shape))
			return nil
		}
		batch = pick(batch, v.shape[0])
		if j >= nState && seq.IsUnknown() {
			seq = v.shape[1]
		}
		inputs[j] = ranked(v.dtype, copyShape(v.shape[skip:])...)
	}
	outs := c.fixpoint(body, inputs, 0, 0, nState)
	res := make([]*val, len(c.n.Outputs))
	for j := range res {
		var s *val
		if j < nState {
			s = inputs[j]
		} else if j < len(outs) {
			s = outs[j]
		}
		if s == nil {
			continue
		}
		if !s.ranked {
			res[j] = unranked(s.dtype)
			continue
		}
		lead := []Expr{c.known(batch)}
		if j >= nState {
			lead = append(lead, c.known(seq))
		}
		res[j] = ranked(s.dtype, append(lead, s.shape...)...)
	}
	return res
}
