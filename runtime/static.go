package runtime

import (
	"strconv"
	"strings"
	"sync"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/tensor"
)

// Static subgraphs: nodes whose values depend only on constants and on the
// *shapes* of the inputs (Constant, and the Shape → Gather → Unsqueeze →
// Concat → ConstantOfShape chains exporters emit for initial states and
// reshapes). Their values are computed on the first run with a given set
// of input shapes and reused afterwards, so steady-state runs skip them.

// maxShapeClasses bounds the per-session cache of static values.
const maxShapeClasses = 64

type staticInfo struct {
	isStatic []bool // per node of the main graph
	any      bool
	cache    sync.Map // shape key → map[string]*tensor.Tensor
	entries  sync.Mutex
	count    int
}

// findStatic marks static nodes: every input is an initializer or a static
// value, where the output of a Shape or Size node reading a feed input
// counts as static (it depends on the input's shape only). Nodes with
// subgraphs, random ops and nodes producing graph outputs (returned to
// callers, who may keep them) are never static.
func findStatic(g *graph.Graph) *staticInfo {
	st := &staticInfo{isStatic: make([]bool, len(g.Nodes))}
	feeds := map[string]bool{}
	for _, v := range g.FeedInputs() {
		feeds[v.Name] = true
	}
	outputs := map[string]bool{}
	for _, o := range g.Outputs {
		outputs[o.Name] = true
	}
	static := map[string]bool{}
	for name := range g.Initializers {
		static[name] = true
	}
	for i, n := range g.Nodes {
		if !foldable(n) {
			continue
		}
		ok := true
		for _, o := range n.Outputs {
			if outputs[o] {
				ok = false
			}
		}
		shapeOfFeed := (n.OpType == "Shape" || n.OpType == "Size") && len(n.Inputs) == 1 && feeds[n.Inputs[0]]
		if !shapeOfFeed {
			for _, in := range n.Inputs {
				if in != "" && !static[in] {
					ok = false
				}
			}
		}
		if !ok {
			continue
		}
		st.isStatic[i] = true
		st.any = true
		for _, o := range n.Outputs {
			if o != "" {
				static[o] = true
			}
		}
	}
	return st
}

// shapeKey identifies a set of input shapes (and dtypes).
func shapeKey(inputs map[string]*tensor.Tensor, feeds []graph.ValueInfo) string {
	var b strings.Builder
	for _, v := range feeds {
		t, ok := inputs[v.Name]
		if !ok {
			b.WriteString("-;")
			continue
		}
		b.WriteString(strconv.Itoa(int(t.DType)))
		for _, d := range t.Shape {
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(d))
		}
		b.WriteByte(';')
	}
	return b.String()
}

func (st *staticInfo) lookup(key string) (map[string]*tensor.Tensor, bool) {
	v, ok := st.cache.Load(key)
	if !ok {
		return nil, false
	}
	return v.(map[string]*tensor.Tensor), true
}

func (st *staticInfo) store(key string, vals map[string]*tensor.Tensor) {
	st.entries.Lock()
	defer st.entries.Unlock()
	if st.count >= maxShapeClasses {
		return
	}
	if _, loaded := st.cache.LoadOrStore(key, vals); !loaded {
		st.count++
	}
}
