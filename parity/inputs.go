package parity

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/mtlrun/mtlrun/runtime"
	"github.com/mtlrun/mtlrun/tensor"
)

// HasTimeAxis reports whether any input has a free dim after the first.
func HasTimeAxis(g *runtime.Graph) bool {
	for _, v := range g.FeedInputs() {
		for i, d := range v.Shape {
			if i > 0 && !d.Known() {
				return true
			}
		}
	}
	return false
}

// RandomInputs draws inputs for every feed input that respect its dtype and
// meaning: floats N(0,1); integer inputs that index a Gather table (token
// ids) uniform over the table's rows, other integers in 0..9; inputs named
// like "length(s)" get the full sequence length. Free dims: the first is
// batch, any later one time.
func RandomInputs(m *runtime.Model, batch, time int, seed uint64) (map[string]*tensor.Tensor, error) {
	g := m.Graph
	rng := rand.New(rand.NewPCG(seed, 0x70617269))
	out := map[string]*tensor.Tensor{}
	for _, v := range g.FeedInputs() {
		shape := make([]int, len(v.Shape))
		for i, d := range v.Shape {
			switch {
			case d.Known():
				shape[i] = int(d.Value)
			case i == 0:
				shape[i] = batch
			default:
				shape[i] = time
			}
		}
		t, err := tensor.New(v.DType, shape)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", v.Name, err)
		}
		lower := strings.ToLower(v.Name)
		isLength := strings.Contains(lower, "length") || strings.Contains(lower, "lens")
		hi := int64(10)
		if rows := gatherRows(g, v.Name); rows > 0 {
			hi = int64(rows)
		}
		switch d := t.Data.(type) {
		case []float32:
			for i := range d {
				d[i] = float32(rng.NormFloat64())
			}
		case []float64:
			for i := range d {
				d[i] = rng.NormFloat64()
			}
		case []int64:
			for i := range d {
				if isLength {
					d[i] = int64(time)
				} else {
					d[i] = rng.Int64N(hi)
				}
			}
		case []int32:
			for i := range d {
				if isLength {
					d[i] = int32(time)
				} else {
					d[i] = int32(rng.Int64N(hi))
				}
			}
		case []bool:
			for i := range d {
				d[i] = rng.IntN(2) == 1
			}
		default:
			return nil, fmt.Errorf("input %q: cannot draw random %v values", v.Name, v.DType)
		}
		out[v.Name] = t
	}
	return out, nil
}

// gatherRows follows an input through Cast/Identity/Unsqueeze/Reshape to a
// Gather whose data is an initializer and returns that table's row count.
func gatherRows(g *runtime.Graph, name string) int {
	cons := g.Consumers()
	frontier := []string{name}
	seen := map[string]bool{}
	for len(frontier) > 0 {
		v := frontier[0]
		frontier = frontier[1:]
		if seen[v] {
			continue
		}
		seen[v] = true
		for _, n := range cons[v] {
			switch n.OpType {
			case "Gather":
				if len(n.Inputs) > 1 && n.Inputs[1] == v {
					if t := g.Initializers[n.Inputs[0]]; t != nil && t.Rank() > 0 && n.Attrs.Int("axis", 0) == 0 {
						return t.Shape[0]
					}
				}
			case "Cast", "Identity", "Unsqueeze", "Reshape", "Squeeze":
				frontier = append(frontier, n.Outputs...)
			}
		}
	}
	return 0
}
