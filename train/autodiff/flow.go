package autodiff

import (
	"fmt"
	"sync"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Which values carry a gradient is decided here, before any rule runs: a
// value carries one when it is reached from a parameter through inputs that
// are differentiable (gradFlows), and its gradient matters when it reaches
// a loss output the same way. Only nodes on such a path need a backward
// rule; everything else (shape plumbing, integer arithmetic, comparisons,
// indices) is a constant of the backward pass.

// What the flow analysis knows of an op comes from its descriptor first
// (see opFlow): a ZeroGradient waiver makes it a constant of the backward
// pass, and a data-movement op's ops.Movement(...) names its data inputs.
// The tables below hold only what descriptors do not say.

// constantOps are treated as constants although their descriptors do not
// waive the gradient as zero: Range (shape arithmetic).
var constantOps = map[string]bool{"Range": true}

// gradInputs lists, for ops where not every input is differentiable and
// whose descriptor is not an ops.Movement listing them, the inputs that are
// (indices, shapes, axes, lengths and statistics are not).
var gradInputs = map[string][]int{
	"Reshape": {0}, "Flatten": {0}, "Squeeze": {0}, "Unsqueeze": {0}, "Split": {0},
	"Gather": {0}, "GatherND": {0}, "ScatterElements": {0, 2}, "ScatterND": {0, 2}, "Scatter": {0, 2},
	"Resize": {0}, "Upsample": {0}, "Where": {1, 2}, "Clip": {0}, "CumSum": {0}, "CumProd": {0}, "Col2Im": {0}, "DFT": {0}, "STFT": {0}, "TopK": {0},
	"Attention": {0, 1, 2, 3, 4, 5}, "NegativeLogLikelihoodLoss": {0}, "RotaryEmbedding": {0}, "CastLike": {0}, "Mod": {0}, "SoftmaxCrossEntropyLoss": {0},
	"ReduceSum": {0}, "ReduceMean": {0}, "ReduceMax": {0}, "ReduceMin": {0}, "ReduceProd": {0},
	"ReduceSumSquare": {0}, "ReduceL1": {0}, "ReduceL2": {0}, "ReduceLogSumExp": {0}, "ReduceLogSum": {0},
	"BatchNormalization": {0, 1, 2}, "Dropout": {0},
	"LSTM": {0, 1, 2, 3, 5, 6, 7}, "GRU": {0, 1, 2, 3, 5}, "RNN": {0, 1, 2, 3, 5},
	"If": {}, "Loop": nil, // Loop: its carried values, see gradFlows
}

// opFlowFacts is what an op's descriptor tells the flow analysis.
type opFlowFacts struct {
	constant bool  // outputs carry no gradient (ZeroGradient, or constantOps)
	inputs   []int // differentiable inputs; nil: every input
}

type opKey struct{ domain, opType string }

// opFlows caches opFlowFacts per op: descriptors are fixed once the
// packages are initialised, and the backward pass asks on every node.
var opFlows sync.Map // opKey → opFlowFacts

func opFlow(n *graph.Node) opFlowFacts {
	k := opKey{n.Domain, n.OpType}
	if f, ok := opFlows.Load(k); ok {
		return f.(opFlowFacts)
	}
	f := opFlowFacts{constant: constantOps[n.OpType], inputs: gradInputs[n.OpType]}
	if d := ops.Describe(n.Domain, n.OpType, 0); d != nil {
		switch d.Grad.Kind {
		case ops.GradZero:
			f.constant = true
		case ops.GradMovement:
			if f.inputs == nil {
				f.inputs = d.Grad.DataInputs
			}
		}
	}
	opFlows.Store(k, f)
	return f
}

// gradOutputs lists the outputs that can carry a gradient where not all do.
var gradOutputs = map[string][]int{
	"TopK": {0}, "MaxPool": {0}, "Dropout": {0},
}

// stateInputs are inputs that hold an initial state rather than a weight: a
// constant reaching only these is not a trainable parameter (the tf2onnx
// zero state of an RNN).
var stateInputs = map[string][]int{
	"LSTM": {5, 6}, "GRU": {5}, "RNN": {5},
	"Attention": {4, 5}, "LinearAttention": {3}, "CausalConvWithState": {3},
}

func contains(v []int, i int) bool {
	for _, x := range v {
		if x == i {
			return true
		}
	}
	return false
}

// castsToFloat reports whether a Cast node's target type is a float type.
func castsToFloat(n *graph.Node) bool {
	switch tensor.DType(n.Attrs.Int("to", 0)) {
	case tensor.Float32, tensor.Float64, tensor.Float16, tensor.BFloat16:
		return true
	}
	return false
}

// flowMode selects the slots a flow analysis follows.
type flowMode int

const (
	gradMode   flowMode = iota // every differentiable slot
	weightMode                 // differentiable slots except initial states and fill values
	dependMode                 // every input and output: plain dependence
)

// analysis is a flow analysis over a graph and its subgraphs. Values are
// keyed by name across scopes (ONNX names are unique within a model).
type analysis struct {
	mode  flowMode
	inits func(name string) *tensor.Tensor // the initializer of that name, if any
}

// inputFlows reports whether input i of n passes a gradient to its outputs.
func (a *analysis) inputFlows(g *graph.Graph, n *graph.Node, i int) bool {
	if a.mode == dependMode {
		return n.Inputs[i] != ""
	}
	f := opFlow(n)
	if n.Inputs[i] == "" || f.constant {
		return false
	}
	if n.OpType == "Cast" && !castsToFloat(n) {
		return false
	}
	if f.inputs != nil && !contains(f.inputs, i) {
		return false
	}
	if a.mode == weightMode {
		if contains(stateInputs[n.OpType], i) {
			return false
		}
		// fill values: one number broadcast by Expand or Tile
		if (n.OpType == "Expand" || n.OpType == "Tile") && i == 0 {
			if t := a.initOf(g, n.Inputs[0]); t != nil && t.Len() == 1 {
				return false
			}
		}
		// an attention mask stored as a constant is not a weight (one
		// computed from weights, such as a learned position bias, is)
		if n.OpType == "Attention" && i == 3 && a.initOf(g, n.Inputs[3]) != nil {
			return false
		}
	}
	return true
}

func (a *analysis) initOf(g *graph.Graph, name string) *tensor.Tensor {
	if t := g.Initializers[name]; t != nil {
		return t
	}
	if a.inits != nil {
		return a.inits(name)
	}
	return nil
}

// outputFlows reports whether output j of n can carry a gradient.
func (a *analysis) outputFlows(n *graph.Node, j int) bool {
	if a.mode == dependMode {
		return n.Outputs[j] != ""
	}
	if n.Outputs[j] == "" || opFlow(n).constant {
		return false
	}
	if n.OpType == "Cast" && !castsToFloat(n) {
		return false
	}
	if outs, ok := gradOutputs[n.OpType]; ok && !contains(outs, j) {
		return false
	}
	return true
}

// loopParts returns a Loop's body and its number of carried values.
func loopParts(n *graph.Node) (*graph.Graph, int) {
	for _, sg := range n.Subgraphs() {
		if sg.Attr == "body" {
			return sg.Graph, len(n.Inputs) - 2
		}
	}
	return nil, 0
}

// scanParts returns a Scan's body, its number of states and whether it is
// the opset-8 form (which has a leading sequence_lens input).
func scanBody(n *graph.Node) *graph.Graph {
	for _, sg := range n.Subgraphs() {
		if sg.Attr == "body" {
			return sg.Graph
		}
	}
	return nil
}

// carriedIsState reports whether carried value k of a Loop (or state k of a
// Scan) is updated by the body: such a slot holds an initial state; one the
// body passes through unchanged holds a weight the body reads.
func carriedIsState(body *graph.Graph, inIdx, outIdx int) bool {
	if inIdx >= len(body.Inputs) || outIdx >= len(body.Outputs) {
		return true
	}
	return body.Outputs[outIdx].Name != body.Inputs[inIdx].Name
}

// forward marks (in carry) every value reached from an already marked value
// through differentiable slots.
func (a *analysis) forward(g *graph.Graph, carry map[string]bool) {
	for _, n := range g.Nodes {
		switch n.OpType {
		case "Loop", "Scan":
			a.forwardIter(n, carry)
			continue
		case "If":
			for _, sg := range n.Subgraphs() {
				a.forward(sg.Graph, carry)
			}
			for _, sg := range n.Subgraphs() {
				for j, o := range sg.Graph.Outputs {
					if carry[o.Name] && j < len(n.Outputs) && n.Outputs[j] != "" {
						carry[n.Outputs[j]] = true
					}
				}
			}
			continue
		}
		any := false
		for i, in := range n.Inputs {
			if carry[in] && a.inputFlows(g, n, i) {
				any = true
			}
		}
		if !any {
			continue
		}
		for j, o := range n.Outputs {
			if a.outputFlows(n, j) {
				carry[o] = true
			}
		}
	}
}

// iterSlots describes how a Loop or Scan maps node inputs/outputs to body
// inputs/outputs.
type iterSlots struct {
	body           *graph.Graph
	nState         int
	firstIn        int // node input of the first state
	bodyFirstIn    int // body input of the first state
	bodyFirstOut   int // body output of the first state
	numScanIn      int // Scan only
	bodyScanOutOff int
}

func slotsOf(n *graph.Node) *iterSlots {
	if n.OpType == "Loop" {
		body, nState := loopParts(n)
		if body == nil || nState < 0 {
			return nil
		}
		return &iterSlots{body: body, nState: nState, firstIn: 2, bodyFirstIn: 2, bodyFirstOut: 1, bodyScanOutOff: 1 + nState}
	}
	body := scanBody(n)
	if body == nil {
		return nil
	}
	numScan := int(n.Attrs.Int("num_scan_inputs", 0))
	first := 0
	if len(n.Inputs) > 0 && n.Inputs[0] == "" || n.Attrs.Has("directions") {
		first = 1
	}
	nState := len(n.Inputs) - first - numScan
	if nState < 0 {
		return nil
	}
	return &iterSlots{body: body, nState: nState, firstIn: first, bodyFirstIn: 0, bodyFirstOut: 0, numScanIn: numScan, bodyScanOutOff: nState}
}

// stateFlows reports whether state k may carry a gradient into the body.
func (a *analysis) stateFlows(s *iterSlots, k int) bool {
	return a.mode != weightMode || !carriedIsState(s.body, s.bodyFirstIn+k, s.bodyFirstOut+k)
}

func (a *analysis) forwardIter(n *graph.Node, carry map[string]bool) {
	s := slotsOf(n)
	if s == nil {
		return
	}
	b := s.body
	for k := 0; k < s.numScanIn; k++ {
		if in := n.Inputs[s.firstIn+s.nState+k]; carry[in] && s.nState+k < len(b.Inputs) {
			carry[b.Inputs[s.nState+k].Name] = true
		}
	}
	for {
		for k := 0; k < s.nState; k++ {
			if s.bodyFirstIn+k < len(b.Inputs) && carry[n.Inputs[s.firstIn+k]] && a.stateFlows(s, k) {
				carry[b.Inputs[s.bodyFirstIn+k].Name] = true
			}
		}
		a.forward(b, carry)
		changed := false
		for k := 0; k < s.nState; k++ {
			bi, bo := s.bodyFirstIn+k, s.bodyFirstOut+k
			if bi < len(b.Inputs) && bo < len(b.Outputs) && carry[b.Outputs[bo].Name] && !carry[b.Inputs[bi].Name] && a.stateFlows(s, k) {
				carry[b.Inputs[bi].Name] = true
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	for j, o := range n.Outputs {
		bo := s.bodyFirstOut + j
		if o != "" && bo < len(b.Outputs) && carry[b.Outputs[bo].Name] {
			carry[o] = true
		}
	}
}

// backward marks (in matter) every value from which a marked value is
// reached through differentiable slots.
func (a *analysis) backward(g *graph.Graph, matter map[string]bool) {
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		any := false
		for j, o := range n.Outputs {
			if matter[o] && a.outputFlows(n, j) {
				any = true
			}
		}
		if !any {
			continue
		}
		switch n.OpType {
		case "Loop", "Scan":
			a.backwardIter(n, matter)
			continue
		case "If":
			for _, sg := range n.Subgraphs() {
				for j, o := range sg.Graph.Outputs {
					if j < len(n.Outputs) && matter[n.Outputs[j]] {
						matter[o.Name] = true
					}
				}
				a.backward(sg.Graph, matter)
			}
			continue
		}
		for k, in := range n.Inputs {
			if in != "" && a.inputFlows(g, n, k) {
				matter[in] = true
			}
		}
	}
}

func (a *analysis) backwardIter(n *graph.Node, matter map[string]bool) {
	s := slotsOf(n)
	if s == nil {
		return
	}
	b := s.body
	for j, o := range n.Outputs {
		if bo := s.bodyFirstOut + j; o != "" && matter[o] && bo < len(b.Outputs) {
			matter[b.Outputs[bo].Name] = true
		}
	}
	for {
		a.backward(b, matter)
		changed := false
		for k := 0; k < s.nState; k++ {
			bi, bo := s.bodyFirstIn+k, s.bodyFirstOut+k
			if bi < len(b.Inputs) && bo < len(b.Outputs) && matter[b.Inputs[bi].Name] && !matter[b.Outputs[bo].Name] && a.stateFlows(s, k) {
				matter[b.Outputs[bo].Name] = true
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	for k := 0; k < s.nState; k++ {
		if bi := s.bodyFirstIn + k; bi < len(b.Inputs) && matter[b.Inputs[bi].Name] && a.stateFlows(s, k) {
			matter[n.Inputs[s.firstIn+k]] = true
		}
	}
	for k := 0; k < s.numScanIn; k++ {
		if bi := s.nState + k; bi < len(b.Inputs) && matter[b.Inputs[bi].Name] {
			matter[n.Inputs[s.firstIn+s.nState+k]] = true
		}
	}
}

// Parameters splits the float initializers of the model's main graph into
// trainable parameters (a gradient from some output reaches them through a
// weight slot: Gemm/MatMul/Conv weights and biases, RNN W/R/B/P,
// normalisation scale and bias, embedding tables, arithmetic with
// activations, weights read inside Loop/Scan/If bodies) and constants
// (shape plumbing, fill values, initial states, integer and boolean paths),
// both in file order. Rank-0 floats are literals and count as constants.
// Constants are never changed by training.
func Parameters(m *graph.Model) (params, constants []string) {
	g := m.Graph
	a := &analysis{mode: weightMode, inits: func(name string) *tensor.Tensor { return g.Initializers[name] }}
	matter := map[string]bool{}
	for _, o := range g.Outputs {
		matter[o.Name] = true
	}
	a.backward(g, matter)
	for _, name := range graph.FloatParams(g) {
		// a rank-0 float is a literal (a fill value, an epsilon, a 1 in
		// 1 − z), never a layer's weight
		if matter[name] && g.Initializers[name].Rank() > 0 {
			params = append(params, name)
		} else {
			constants = append(constants, name)
		}
	}
	return params, constants
}

// GradientStops explains a model whose outputs no parameter reaches: it
// names the nodes (of the main graph) where the influence of the float
// initializers on those outputs stops carrying a gradient, such as an
// ArgMax, a Cast to an integer, or an index input.
func GradientStops(m *graph.Model, outputs []string) []string {
	g := m.Graph
	dep, anc := map[string]bool{}, map[string]bool{}
	for _, name := range graph.FloatParams(g) {
		if g.Initializers[name].Rank() > 0 {
			dep[name] = true
		}
	}
	all := &analysis{mode: dependMode}
	all.forward(g, dep)
	for _, o := range outputs {
		anc[o] = true
	}
	all.backward(g, anc)
	a := &analysis{mode: weightMode, inits: func(name string) *tensor.Tensor { return g.Initializers[name] }}
	var out []string
	for _, n := range g.Nodes {
		feeds := false
		for _, o := range n.Outputs {
			feeds = feeds || anc[o]
		}
		if !feeds {
			continue
		}
		flowsOut := false
		for j := range n.Outputs {
			flowsOut = flowsOut || a.outputFlows(n, j)
		}
		for i, in := range n.Inputs {
			if in != "" && dep[in] && (!flowsOut || !a.inputFlows(g, n, i)) {
				out = append(out, fmt.Sprintf("node %q (%s) input %d", n.Label(), n.OpType, i))
				break
			}
		}
	}
	return out
}
