// Package edit changes a model's graph the way a multi-task user needs:
// grafting a new task head onto the trunk (or any float tensor).
package edit

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// HeadSpec describes a new task head: Dense layers from a tensor to Units
// outputs, with an optional hidden ReLU layer.
type HeadSpec struct {
	Name       string // the new graph output (task) name
	From       string // tensor to read; "" or "trunk" for the detected trunk output
	Units      int
	Hidden     int    // 0 for a single Dense layer
	Activation string // linear, relu, sigmoid, softmax, log_softmax
	Seed       uint64
}

// Activations accepted by HeadSpec.
var Activations = []string{"linear", "relu", "sigmoid", "softmax", "log_softmax"}

// ErrBadHead is wrapped by every AddHead validation error.
var ErrBadHead = errors.New("add-head")

func bad(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadHead, fmt.Sprintf(format, args...))
}

// TrunkOutput finds the tensor where the trunk ends: the last value (in
// topological order) that every graph output depends on and that is not an
// input or initializer.
func TrunkOutput(g *graph.Graph) (string, error) {
	if len(g.Outputs) == 0 {
		return "", bad("the model has no outputs")
	}
	if len(g.Outputs) == 1 {
		// with a single task the only tensor every output needs is the
		// output itself, so there is no trunk to detect
		return "", bad("the model has a single output; name the tensor to graft onto with --from")
	}
	producers := g.Producers()
	common := map[string]int{}
	for _, o := range g.Outputs {
		for _, v := range graph.Ancestors(g, producers, o.Name) {
			common[v]++
		}
	}
	best := ""
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" && common[o] == len(g.Outputs) {
				best = o
			}
		}
	}
	if best == "" {
		return "", bad("no tensor is shared by all outputs: name one with --from")
	}
	return best, nil
}

// AddHead grafts a new head onto m (in place). probe must map every graph
// input to a small example tensor; it is used to learn the source tensor's
// feature size.
func AddHead(m *graph.Model, spec HeadSpec, probe map[string]*tensor.Tensor) error {
	g := m.Graph
	if spec.Name == "" {
		return bad("the new head needs a --name")
	}
	if spec.Units < 1 {
		return bad("--units must be at least 1, got %d", spec.Units)
	}
	if spec.Hidden < 0 {
		return bad("--hidden must not be negative")
	}
	act := spec.Activation
	if act == "" {
		act = "linear"
	}
	switch act {
	case "linear", "relu", "sigmoid", "softmax", "log_softmax":
	default:
		return bad("unknown activation %q (want one of %v)", act, Activations)
	}
	if _, ok := g.Output(spec.Name); ok {
		return bad("the model already has an output named %q", spec.Name)
	}
	if _, ok := g.Producers()[spec.Name]; ok {
		return bad("a tensor named %q already exists in the graph", spec.Name)
	}
	if _, ok := g.Initializers[spec.Name]; ok {
		return bad("an initializer named %q already exists", spec.Name)
	}
	from := spec.From
	if from == "" || from == "trunk" {
		f, err := TrunkOutput(g)
		if err != nil {
			return err
		}
		from = f
	}
	if _, ok := g.Producers()[from]; !ok {
		if _, isIn := g.Input(from); !isIn {
			return bad("unknown tensor %q (not produced by any node nor a graph input)", from)
		}
	}
	sess, err := runtime.NewSession(m, runtime.Options{})
	if err != nil {
		return err
	}
	out, err := sess.Run(probe, from)
	if err != nil {
		return fmt.Errorf("add-head: probing tensor %q: %w", from, err)
	}
	src := out[from]
	if src.DType != tensor.Float32 {
		return bad("tensor %q is %v; a head needs a float32 tensor", from, src.DType)
	}
	if src.Rank() != 2 {
		return bad("tensor %q has shape %v; a head reads a (batch, features) tensor — pick a rank-2 tensor with --from", from, src.Shape)
	}
	features := src.Shape[1]
	rng := rand.New(rand.NewPCG(spec.Seed, 0x6d746c72756e))
	prefix := "head_" + spec.Name
	names := map[string]bool{}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			names[o] = true
		}
	}
	uniq := func(s string) string {
		base, k := s, 1
		for names[s] || g.Initializers[s] != nil {
			k++
			s = fmt.Sprintf("%s_%d", base, k)
		}
		names[s] = true
		return s
	}
	x := from
	dense := func(layer string, in, units int, final bool, nodeAct string) {
		w := uniq(prefix + "/" + layer + "/kernel")
		b := uniq(prefix + "/" + layer + "/bias")
		g.AddInitializer(w, glorot(rng, in, units))
		bt, _ := tensor.New(tensor.Float32, []int{units})
		g.AddInitializer(b, bt)
		mm := uniq(prefix + "/" + layer + "/MatMul:0")
		g.Nodes = append(g.Nodes, &graph.Node{Name: uniq(prefix + "/" + layer + "/MatMul"), OpType: "MatMul", Inputs: []string{x, w}, Outputs: []string{mm}, Attrs: graph.Attrs{}})
		sum := uniq(prefix + "/" + layer + "/BiasAdd:0")
		if final && nodeAct == "linear" {
			sum = spec.Name
		}
		g.Nodes = append(g.Nodes, &graph.Node{Name: uniq(prefix + "/" + layer + "/BiasAdd"), OpType: "Add", Inputs: []string{mm, b}, Outputs: []string{sum}, Attrs: graph.Attrs{}})
		x = sum
		if nodeAct == "linear" {
			return
		}
		y := uniq(prefix + "/" + layer + "/" + nodeAct + ":0")
		if final {
			y = spec.Name
		}
		n := &graph.Node{Name: uniq(prefix + "/" + layer + "/" + nodeAct), Inputs: []string{x}, Outputs: []string{y}, Attrs: graph.Attrs{}}
		switch nodeAct {
		case "relu":
			n.OpType = "Relu"
		case "sigmoid":
			n.OpType = "Sigmoid"
		case "softmax", "log_softmax":
			n.OpType = map[string]string{"softmax": "Softmax", "log_softmax": "LogSoftmax"}[nodeAct]
			// axis 1 is the class axis of a (batch, classes) tensor under
			// both the pre-13 and the 13+ definitions
			n.Attrs["axis"] = graph.Attr{Type: graph.AttrInt, Int: 1}
		}
		g.Nodes = append(g.Nodes, n)
		x = y
	}
	in := features
	if spec.Hidden > 0 {
		dense("hidden", in, spec.Hidden, false, "relu")
		in = spec.Hidden
	}
	dense("dense", in, spec.Units, true, act)
	batch := graph.Dim{Param: "batch"}
	if feeds := g.FeedInputs(); len(feeds) > 0 && feeds[0].HasShape && len(feeds[0].Shape) > 0 {
		batch = feeds[0].Shape[0]
	}
	g.Outputs = append(g.Outputs, graph.ValueInfo{
		Name: spec.Name, DType: tensor.Float32, Kind: "tensor", HasShape: true,
		Shape: []graph.Dim{batch, {Value: int64(spec.Units)}},
	})
	return g.Sort()
}

// glorot draws a (in, out) matrix from Glorot/Xavier uniform, as Keras'
// default kernel initializer: U(-l, l) with l = sqrt(6 / (in + out)).
func glorot(rng *rand.Rand, in, out int) *tensor.Tensor {
	limit := math.Sqrt(6 / float64(in+out))
	w := make([]float32, in*out)
	for i := range w {
		w[i] = float32((rng.Float64()*2 - 1) * limit)
	}
	return tensor.From([]int{in, out}, w)
}
