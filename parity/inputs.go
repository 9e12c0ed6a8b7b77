package parity

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// OtherDim is the size RandomInputs gives a free dim that is neither batch
// nor time.
const OtherDim = 8

// dimRole is what a free dim stands for.
type dimRole int

const (
	roleOther dimRole = iota
	roleBatch
	roleTime
)

// freeDimRole guesses what a free (symbolic or unknown) dim of an input
// means: its name when it has a telling one ("batch", "N"; "time", "seq",
// "len", "step"), else its position: the first dim is the batch, the second
// of a rank-3 input (or of a rank-2 integer input: token ids) is time.
func freeDimRole(v graph.ValueInfo, i int) dimRole {
	p := strings.ToLower(v.Shape[i].Param)
	switch {
	case strings.Contains(p, "batch") || p == "n":
		return roleBatch
	case strings.Contains(p, "time") || strings.Contains(p, "seq") || strings.Contains(p, "len") || strings.Contains(p, "step"):
		return roleTime
	case i == 0:
		return roleBatch
	case i == 1 && len(v.Shape) == 3:
		return roleTime
	case i == 1 && len(v.Shape) == 2 && isTokenInput(v):
		return roleTime
	}
	return roleOther
}

// isTokenInput: a rank-2 integer input [batch, ?] is read as token ids
// [batch, time] unless its name says otherwise.
func isTokenInput(v graph.ValueInfo) bool {
	return v.DType.IsInteger() && !isLengthName(v.Name)
}

func isLengthName(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "length") || strings.Contains(n, "lens") || strings.Contains(n, "seq_len")
}

// InputShapes picks a concrete shape for every feed input: declared sizes
// stay, free dims become batch, time or OtherDim (see RandomInputs), and a
// symbolic name used by several inputs gets one size. hasTime reports
// whether some free dim was read as a time axis.
func InputShapes(g *graph.Graph, batch, time int) (shapes map[string][]int, hasTime bool) {
	shapes = map[string][]int{}
	byParam := map[string]int{}
	for _, v := range g.FeedInputs() {
		shape := make([]int, len(v.Shape))
		for i, d := range v.Shape {
			if d.Known() {
				shape[i] = int(d.Value)
				continue
			}
			if n, ok := byParam[d.Param]; ok && d.Param != "" {
				shape[i] = n
				if n == time && freeDimRole(v, i) == roleTime {
					hasTime = true
				}
				continue
			}
			switch freeDimRole(v, i) {
			case roleBatch:
				shape[i] = batch
			case roleTime:
				shape[i] = time
				hasTime = true
			default:
				shape[i] = OtherDim
			}
			if d.Param != "" {
				byParam[d.Param] = shape[i]
			}
		}
		shapes[v.Name] = shape
	}
	return shapes, hasTime
}

// HasTimeAxis reports whether RandomInputs would read some free input dim
// as time (so that --time changes the inputs).
func HasTimeAxis(m *graph.Model) bool {
	_, has := InputShapes(m.Graph, 2, 3)
	return has
}

// RandomInputs draws one value for every feed input, respecting its dtype
// and meaning:
//   - floats are N(0,1), except float inputs cast to integers and used as
//     Gather indices (token ids stored as floats), which get whole numbers
//     inside the table;
//   - integer inputs that index a Gather table held as an initializer (an
//     embedding) are uniform over the table's rows; inputs named like
//     "length(s)"/"lens" get the full sequence length; other integers are
//     uniform in 0..9; bools are fair coin flips;
//   - free dims: a dim named like batch/N, or else the first, is batch; a
//     dim named like time/seq/len/step, or else the second of a rank-3 input
//     (or of a rank-2 integer token input), is time; others are OtherDim.
//
// time is ignored by models without such a time axis. The same seed gives
// the same inputs.
func RandomInputs(m *graph.Model, batch, time int, seed uint64) (map[string]*tensor.Tensor, error) {
	if m == nil || m.Graph == nil {
		return nil, fmt.Errorf("parity: nil model")
	}
	if batch < 1 || time < 1 {
		return nil, fmt.Errorf("parity: batch (%d) and time (%d) must be at least 1", batch, time)
	}
	g := m.Graph
	shapes, hasTime := InputShapes(g, batch, time)
	rng := rand.New(rand.NewPCG(seed, 0x70617269747921))
	out := map[string]*tensor.Tensor{}
	for _, v := range g.FeedInputs() {
		shape := shapes[v.Name]
		t, err := tensor.New(v.DType, shape)
		if err != nil {
			return nil, fmt.Errorf("parity: input %q (%v %v): %w", v.Name, v.DType, shape, err)
		}
		rows := int64(gatherRows(g, v.Name))
		lo, hi := int64(0), int64(10)
		if rows > 0 {
			hi = rows
		} else if v.DType.IsInteger() {
			use := intUse(g, v.Name, shapes)
			if use.bound > 0 {
				hi = int64(use.bound)
			}
			if use.divisor {
				lo = 1
			}
		}
		length := int64(-1)
		if v.DType.IsInteger() && isLengthName(v.Name) {
			length = int64(sequenceLength(g, v.Name, shapes, hasTime, time))
		}
		intVal := func() int64 {
			if length >= 0 {
				return length
			}
			return lo + rng.Int64N(max(hi-lo, 1))
		}
		switch d := t.Data.(type) {
		case []float32:
			for i := range d {
				if rows > 0 {
					d[i] = float32(rng.Int64N(rows))
				} else {
					d[i] = float32(rng.NormFloat64())
				}
			}
		case []float64:
			for i := range d {
				if rows > 0 {
					d[i] = float64(rng.Int64N(rows))
				} else {
					d[i] = rng.NormFloat64()
				}
			}
		case []tensor.Float16Bits:
			for i := range d {
				d[i] = tensor.Float32ToFloat16(float32(rng.NormFloat64()))
			}
		case []tensor.BFloat16Bits:
			for i := range d {
				d[i] = tensor.Float32ToBFloat16(float32(rng.NormFloat64()))
			}
		case []int64:
			for i := range d {
				d[i] = intVal()
			}
		case []int32:
			for i := range d {
				d[i] = int32(intVal())
			}
		case []int16:
			for i := range d {
				d[i] = int16(intVal())
			}
		case []int8:
			for i := range d {
				d[i] = int8(min(intVal(), 127))
			}
		case []uint8:
			for i := range d {
				d[i] = uint8(min(intVal(), 255))
			}
		case []uint16:
			for i := range d {
				d[i] = uint16(intVal())
			}
		case []uint32:
			for i := range d {
				d[i] = uint32(intVal())
			}
		case []uint64:
			for i := range d {
				d[i] = uint64(intVal())
			}
		case []bool:
			for i := range d {
				d[i] = rng.IntN(2) == 1
			}
		default:
			return nil, fmt.Errorf("parity: input %q: cannot draw random %v values; pass it with --input", v.Name, v.DType)
		}
		out[v.Name] = t
	}
	return out, nil
}

// sequenceLength is the full length for a lengths input: the sequence axis
// of the recurrence it feeds (LSTM/GRU/RNN sequence_lens, honouring layout),
// else the time size used for the other inputs.
func sequenceLength(g *graph.Graph, name string, shapes map[string][]int, hasTime bool, time int) int {
	for _, n := range g.Consumers()[name] {
		switch n.OpType {
		case "LSTM", "GRU", "RNN":
			if len(n.Inputs) > 4 && n.Inputs[4] == name {
				if x, ok := shapes[n.Inputs[0]]; ok && len(x) == 3 {
					if n.Attrs.Int("layout", 0) == 1 {
						return x[1]
					}
					return x[0]
				}
			}
		}
	}
	if hasTime {
		return time
	}
	// no time axis among free dims: the longest fixed middle axis of a rank-3
	// input is the best guess
	best := 0
	for _, v := range g.FeedInputs() {
		if s := shapes[v.Name]; len(s) == 3 && v.Name != name {
			best = max(best, s[1])
		}
	}
	if best > 0 {
		return best
	}
	return time
}

// indexPreserving ops pass token ids through unchanged in meaning (casts,
// reshapes) or adjust them element-wise (the negative-index wrap some
// exporters emit before an embedding Gather).
var indexPreserving = map[string]bool{
	"Cast": true, "Identity": true, "Reshape": true, "Squeeze": true, "Unsqueeze": true, "Flatten": true,
	"Transpose": true, "Add": true, "Mul": true, "Where": true, "Expand": true, "Clip": true, "Max": true, "Min": true,
}

// gatherRows follows an input through index-preserving ops (at most a few
// steps) to a Gather on axis 0 whose data is an initializer, and returns that
// table's row count (0 when none is found). A float input counts only when
// it is cast to an integer type first.
func gatherRows(g *graph.Graph, name string) int {
	if g == nil {
		return 0
	}
	cons := g.Consumers()
	type item struct {
		v     string
		depth int
		isInt bool
	}
	in, _ := g.Input(name)
	frontier := []item{{name, 0, !in.DType.IsFloat()}}
	seen := map[string]bool{}
	for len(frontier) > 0 {
		it := frontier[0]
		frontier = frontier[1:]
		if seen[it.v] || it.depth > 6 {
			continue
		}
		seen[it.v] = true
		for _, n := range cons[it.v] {
			switch {
			case n.OpType == "Gather" && n.Domain == "":
				if it.isInt && len(n.Inputs) > 1 && n.Inputs[1] == it.v && n.Attrs.Int("axis", 0) == 0 {
					if t := g.Initializers[n.Inputs[0]]; t != nil && t.Rank() > 0 && t.Shape[0] > 0 {
						return t.Shape[0]
					}
				}
			case n.OpType == "Cast" && n.Domain == "":
				to := tensor.DType(n.Attrs.Int("to", 0))
				for _, o := range n.Outputs {
					frontier = append(frontier, item{o, it.depth + 1, to.IsInteger()})
				}
			case indexPreserving[n.OpType] && n.Domain == "" && it.isInt:
				for _, o := range n.Outputs {
					frontier = append(frontier, item{o, it.depth + 1, true})
				}
			}
		}
	}
	return 0
}

// valuePreserving ops pass values through unchanged (only moved or
// retyped), so an integer input keeps its role across them.
var valuePreserving = map[string]bool{
	"Cast": true, "Identity": true, "Reshape": true, "Squeeze": true, "Unsqueeze": true, "Flatten": true,
	"Transpose": true, "Expand": true, "Concat": true, "Slice": true, "Tile": true,
}

// intRole is what an integer input turns out to feed.
type intRole struct {
	divisor bool // the divisor of an integer Div or Mod: must not be 0 (onnxruntime dies of SIGFPE)
	bound   int  // > 0: it indexes an axis of this size (Gather, GatherElements, ScatterElements)
}

// intUse follows an integer input through value-preserving ops to the ops
// that give its values a meaning: a divisor must avoid zero, indices must
// stay inside the axis they index (whose size comes from an initializer or
// from the feed shapes).
func intUse(g *graph.Graph, name string, shapes map[string][]int) intRole {
	var r intRole
	cons := g.Consumers()
	dimOf := func(v string, axis int64) int {
		var shape []int
		if t := g.Initializers[v]; t != nil {
			shape = t.Shape
		} else if s, ok := shapes[v]; ok {
			shape = s
		}
		if len(shape) == 0 {
			return 0
		}
		if axis < 0 {
			axis += int64(len(shape))
		}
		if axis < 0 || axis >= int64(len(shape)) {
			return 0
		}
		return shape[axis]
	}
	seen := map[string]bool{}
	frontier := []string{name}
	for depth := 0; len(frontier) > 0 && depth < 8; depth++ {
		var next []string
		for _, v := range frontier {
			if seen[v] {
				continue
			}
			seen[v] = true
			for _, n := range cons[v] {
				if n.Domain != "" && n.Domain != "ai.onnx" {
					continue
				}
				switch {
				case (n.OpType == "Div" || n.OpType == "Mod") && len(n.Inputs) > 1 && n.Inputs[1] == v:
					r.divisor = true
				case (n.OpType == "Gather" || n.OpType == "GatherElements" || n.OpType == "ScatterElements") && len(n.Inputs) > 1 && n.Inputs[1] == v:
					if d := dimOf(n.Inputs[0], n.Attrs.Int("axis", 0)); d > 0 && (r.bound == 0 || d < r.bound) {
						r.bound = d
					}
				case valuePreserving[n.OpType]:
					next = append(next, n.Outputs...)
				}
			}
		}
		frontier = next
	}
	return r
}

// passThrough ops do not change what an output means for classification.
var passThrough = map[string]bool{
	"Identity": true, "Reshape": true, "Squeeze": true, "Unsqueeze": true, "Flatten": true, "Dropout": true,
}

// ClassifierKind tells whether a graph output comes from a Softmax,
// LogSoftmax or Sigmoid (looking back through Identity, Reshape, Squeeze,
// Unsqueeze, Flatten and Dropout), so that Compare can check decisions.
func ClassifierKind(m *graph.Model, output string) Kind {
	if m == nil || m.Graph == nil {
		return KindNone
	}
	prod := m.Graph.Producers()
	v := output
	for range 32 {
		n := prod[v]
		if n == nil || n.Domain != "" && n.Domain != "ai.onnx" {
			return KindNone
		}
		switch n.OpType {
		case "Softmax":
			return KindSoftmax
		case "LogSoftmax":
			return KindLogSoftmax
		case "Sigmoid":
			return KindSigmoid
		}
		if !passThrough[n.OpType] || len(n.Inputs) == 0 {
			return KindNone
		}
		v = n.Inputs[0]
	}
	return KindNone
}

// ClassifierKinds returns ClassifierKind for every graph output that has one.
func ClassifierKinds(m *graph.Model) map[string]Kind {
	out := map[string]Kind{}
	for _, o := range m.Graph.Outputs {
		if k := ClassifierKind(m, o.Name); k != KindNone {
			out[o.Name] = k
		}
	}
	return out
}
