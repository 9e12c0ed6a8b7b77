package train

import (
	"hash/fnv"
	"sort"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
	"github.com/mtlrun/mtlrun/train/autodiff"
)

// MatchTowers pairs the trainable head parameters of tasks that have towers of the
// same shape: each task's head parameters are listed in the order the graph
// uses them, and two tasks match when their lists have equal length and
// equal shapes position by position. Each returned pair is (task a's
// parameter, task b's parameter) for every matching pair of tasks.
func MatchTowers(g *graph.Graph) [][2]string {
	split := graph.TaskSplit(g)
	// constants (initial states, literals) are no part of a tower
	params, _ := autodiff.Parameters(&graph.Model{Graph: g})
	trainable := map[string]bool{}
	for _, p := range params {
		trainable[p] = true
	}
	order := map[string]int{}
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			if _, seen := order[in]; !seen {
				order[in] = i
			}
		}
	}
	towers := make([][]string, 0, len(g.Outputs))
	for _, o := range g.Outputs {
		var ps []string
		for _, p := range split.Heads[o.Name] {
			if trainable[p] {
				ps = append(ps, p)
			}
		}
		sort.SliceStable(ps, func(i, j int) bool { return order[ps[i]] < order[ps[j]] })
		towers = append(towers, ps)
	}
	var pairs [][2]string
	for a := 0; a < len(towers); a++ {
		for b := a + 1; b < len(towers); b++ {
			ta, tb := towers[a], towers[b]
			if len(ta) == 0 || len(ta) != len(tb) {
				continue
			}
			same := true
			for k := range ta {
				if !tensor.SameShape(g.Initializers[ta[k]].Shape, g.Initializers[tb[k]].Shape) {
					same = false
					break
				}
			}
			if !same {
				continue
			}
			for k := range ta {
				pairs = append(pairs, [2]string{ta[k], tb[k]})
			}
		}
	}
	return pairs
}

// softShare adds λ·Σ‖θa − θb‖² over matched pairs to the gradients of the
// trainable ones and returns the penalty (Duong et al., ACL 2015).
func (t *Trainer) softShare(grads map[string][]float32) float64 {
	lambda := t.cfg.SoftShare
	var penalty float64
	for _, p := range t.pairs {
		a, b := t.model.Graph.Initializers[p[0]].Float32s(), t.model.Graph.Initializers[p[1]].Float32s()
		ga, gb := grads[p[0]], grads[p[1]]
		for i := range a {
			d := float64(a[i]) - float64(b[i])
			penalty += lambda * d * d
			if ga != nil {
				ga[i] += float32(2 * lambda * d)
			}
			if gb != nil {
				gb[i] -= float32(2 * lambda * d)
			}
		}
	}
	return penalty
}

func fnvString(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}
