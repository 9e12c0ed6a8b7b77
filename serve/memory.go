package serve

import (
	"fmt"
	"math"
	"math/bits"
	"os"
	"strconv"
	"strings"

	"github.com/mtlrun/mtlrun/graph"
	"github.com/mtlrun/mtlrun/shapeinfer"
	"github.com/mtlrun/mtlrun/tensor"
)

// The memory model of a request (see docs/SERVING.md): before a request
// runs, the server estimates its peak working set from the request's input
// shapes and the model's symbolic shapes (inferred once per model by
// shapeinfer), and admits it only if the estimate fits both the per-request
// limit and what is left of the server-wide budget.
//
// The estimate is the sum, in bytes, of
//   - the inputs,
//   - every value a node produces, in the main graph and in subgraphs (an
//     executor keeps each in its own arena buffer for the whole run, so the
//     sum is the run's real peak; views are counted as copies),
//   - the largest kernel scratch of one node (recurrent cells: the input
//     projection of every step plus per-row state and GEMM panels; MatMul,
//     Gemm and Dense: the packed A panel; Conv: the im2col matrix),
//   - the results' copies and their JSON text (24 bytes per element),
//   - values inside Loop and Scan bodies once per iteration (bodies run
//     without an arena, so every iteration allocates afresh and all of it
//     may be live until a garbage collection), taking the largest input
//     dim as the trip count,
//
// plus 32 KiB of per-run bookkeeping, plus 25% for the allocator's size
// classes and page rounding.
//
// A dim shapeinfer cannot express in the inputs' dims (a data-dependent
// size) is taken as the largest dim of the request's inputs. All arithmetic
// saturates, so absurd shapes give an absurd estimate, never an overflow.

// runOverhead is a run's fixed bookkeeping, above what its tensors take
// (measured: up to ~10 KiB on small models).
const runOverhead = 32 << 10

// sat is a saturating byte or element count.
type sat = uint64

const satMax = sat(1) << 62

func satMul(a, b sat) sat {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 || lo > satMax {
		return satMax
	}
	return lo
}

func satAdd(a, b sat) sat {
	if s := a + b; s >= a && s <= satMax {
		return s
	}
	return satMax
}

// polyTerm is coef·Π syms; polyDim is a sum of terms, or unknown.
type polyTerm struct {
	coef int64
	syms []string
}

type polyDim struct {
	unknown bool
	terms   []polyTerm
}

// parseDim reads a graph.Dim as shapeinfer writes it: a constant, a
// symbol, or a polynomial such as "2*batch*time+3" or "time-1". Opaque
// atoms ("ceil(time/2)", "unk_Slice_3_0") are symbols no input binds, so
// they evaluate to the fallback.
func parseDim(d graph.Dim) polyDim {
	if d.Param == "" {
		if d.Value < 0 {
			return polyDim{unknown: true}
		}
		return polyDim{terms: []polyTerm{{coef: d.Value}}}
	}
	s := d.Param
	var p polyDim
	depth, start := 0, 0
	sign := int64(1)
	flush := func(end int, next int64) {
		if t := strings.TrimSpace(s[start:end]); t != "" {
			p.terms = append(p.terms, parseTerm(t, sign))
		}
		sign = next
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && (c == '+' || c == '-') && i > 0:
			flush(i, map[byte]int64{'+': 1, '-': -1}[c])
			start = i + 1
		case depth == 0 && c == '-' && i == 0:
			sign = -1
			start = 1
		}
	}
	flush(len(s), 1)
	return p
}

func parseTerm(t string, sign int64) polyTerm {
	term := polyTerm{coef: sign}
	for _, f := range splitTopLevel(t, '*') {
		if n, err := strconv.ParseInt(f, 10, 64); err == nil {
			term.coef *= n
		} else {
			term.syms = append(term.syms, f)
		}
	}
	return term
}

func splitTopLevel(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case sep:
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// eval computes the dim with symbols bound by env; anything unknown or
// unbound takes fallback. Negative results count as 0.
func (p polyDim) eval(env map[string]int64, fallback sat) sat {
	if p.unknown {
		return fallback
	}
	var pos, neg sat
	for _, t := range p.terms {
		v := sat(abs64(t.coef))
		for _, s := range t.syms {
			x, ok := env[s]
			if !ok || x < 0 {
				return fallback
			}
			v = satMul(v, sat(x))
		}
		if t.coef < 0 {
			neg = satAdd(neg, v)
		} else {
			pos = satAdd(pos, v)
		}
	}
	if neg >= pos {
		return 0
	}
	return pos - neg
}

func abs64(x int64) int64 {
	if x < 0 {
		if x == math.MinInt64 {
			return math.MaxInt64
		}
		return -x
	}
	return x
}

// symShape is a value's dtype and symbolic shape.
type symShape struct {
	size int // bytes per element
	dims []polyDim
	// loops is how many Loop or Scan bodies the value is inside: each
	// iteration allocates it afresh (bodies run without an arena), and
	// all of it may be live until the next garbage collection
	loops int
}

func (s symShape) elems(env map[string]int64, fallback sat) sat {
	n := sat(1)
	for _, d := range s.dims {
		n = satMul(n, d.eval(env, fallback))
	}
	return n
}

func (s symShape) bytes(env map[string]int64, fallback sat) sat {
	n := satMul(s.elems(env, fallback), sat(s.size))
	for range s.loops {
		n = satMul(n, fallback) // iterations: the largest input dim
	}
	return n
}

// scratchRule is the scratch one node needs, in bytes.
type scratchRule func(env map[string]int64, fallback sat) sat

// memoryModel estimates the peak working set of one model's requests.
type memoryModel struct {
	feeds   map[string][]polyDim // feed input → its dims (symbols to bind)
	values  []symShape           // every node output, all graphs
	outputs []symShape           // the graph outputs (copied, encoded)
	scratch []scratchRule
}

func elemSize(dt tensor.DType) int {
	if n := dt.Size(); n > 0 {
		return n
	}
	return 8
}

func newMemoryModel(m *graph.Model) (*memoryModel, error) {
	info, _, err := shapeinfer.Infer(m)
	if err != nil {
		return nil, err
	}
	shapeOfValue := func(name string) (symShape, bool) {
		v, ok := info[name]
		if !ok || !v.HasShape {
			return symShape{size: 8}, false
		}
		s := symShape{size: elemSize(v.DType)}
		for _, d := range v.Shape {
			s.dims = append(s.dims, parseDim(d))
		}
		return s, true
	}
	mm := &memoryModel{feeds: map[string][]polyDim{}}
	for _, v := range m.Graph.FeedInputs() {
		s, _ := shapeOfValue(v.Name)
		mm.feeds[v.Name] = s.dims
	}
	for _, v := range m.Graph.Outputs {
		s, ok := shapeOfValue(v.Name)
		if !ok {
			s.dims = []polyDim{{unknown: true}}
		}
		mm.outputs = append(mm.outputs, s)
	}
	var walk func(g *graph.Graph, loops int)
	walk = func(g *graph.Graph, loops int) {
		for _, n := range g.Nodes {
			for _, o := range n.Outputs {
				if o == "" {
					continue
				}
				s, ok := shapeOfValue(o)
				if !ok {
					// unranked: assume a tensor as large as the largest
					// input dim squared (a matrix of it)
					s.dims = []polyDim{{unknown: true}, {unknown: true}}
				}
				s.loops = loops
				mm.values = append(mm.values, s)
			}
			if r := scratchOf(n, shapeOfValue); r != nil {
				mm.scratch = append(mm.scratch, r)
			}
			inner := loops
			if n.OpType == "Loop" || n.OpType == "Scan" {
				inner++
			}
			for _, sg := range n.Subgraphs() {
				walk(sg.Graph, inner)
			}
		}
	}
	walk(m.Graph, 0)
	return mm, nil
}

// scratchOf returns the node's kernel scratch rule, if it has scratch.
func scratchOf(n *graph.Node, shapeOf func(string) (symShape, bool)) scratchRule {
	in := func(i int) (symShape, bool) {
		if i >= len(n.Inputs) || n.Inputs[i] == "" {
			return symShape{}, false
		}
		return shapeOf(n.Inputs[i])
	}
	switch n.OpType {
	case "LSTM", "GRU", "RNN":
		x, ok := in(0)
		if !ok || len(x.dims) != 3 {
			return nil
		}
		hid := sat(0)
		if a, ok := n.Attrs["hidden_size"]; ok && a.Int > 0 {
			hid = sat(a.Int)
		}
		gates := sat(map[string]int{"LSTM": 4, "GRU": 3, "RNN": 1}[n.OpType])
		dirs := sat(1)
		if a, ok := n.Attrs["direction"]; ok && a.String == "bidirectional" {
			dirs = 2
		}
		layout := 0
		if a, ok := n.Attrs["layout"]; ok {
			layout = int(a.Int)
		}
		size := sat(x.size)
		return func(env map[string]int64, fb sat) sat {
			seq, batch, width := x.dims[0].eval(env, fb), x.dims[1].eval(env, fb), x.dims[2].eval(env, fb)
			if layout == 1 {
				seq, batch = batch, seq
			}
			rows := satMul(seq, batch)
			// input projection of every step, per-row gates and state,
			// and the GEMM's packed A panel
			elems := satMul(rows, satMul(gates, hid))
			elems = satAdd(elems, satMul(batch, satAdd(satMul(gates, hid), satMul(6, hid))))
			elems = satAdd(elems, satMul(satAdd(rows, 64), max(width, hid)))
			return satMul(satMul(elems, dirs), size)
		}
	case "MatMul", "Gemm", "Dense", "FusedMatMul":
		a, ok := in(0)
		if !ok {
			return nil
		}
		return func(env map[string]int64, fb sat) sat { return satAdd(a.bytes(env, fb), 64*64*4) }
	case "Conv", "ConvTranspose":
		w, okW := in(1)
		y, okY := shapeOf(n.Outputs[0])
		x, okX := in(0)
		if !okW || !okY || !okX || len(w.dims) < 3 || len(y.dims) < 3 {
			return nil
		}
		return func(env map[string]int64, fb sat) sat {
			// im2col: (C/group)·Πkernel rows by Πoutput-spatial columns
			// (ConvTranspose: the input's spatial size), per image
			col := sat(1)
			for _, d := range w.dims[1:] {
				col = satMul(col, d.eval(env, fb))
			}
			spatial := sat(1)
			src := y.dims[2:]
			if n.OpType == "ConvTranspose" && len(x.dims) >= 3 {
				src = x.dims[2:]
				col = satMul(col, w.dims[1].eval(env, fb))
			}
			for _, d := range src {
				spatial = satMul(spatial, d.eval(env, fb))
			}
			return satMul(satMul(col, spatial), sat(y.size))
		}
	}
	return nil
}

// estimate returns the request's estimated peak working set in bytes.
func (mm *memoryModel) estimate(inputs map[string]*tensor.Tensor) sat {
	env := map[string]int64{}
	fallback := sat(1)
	var total sat
	for name, t := range inputs {
		total = satAdd(total, satMul(sat(t.Len()), sat(elemSize(t.DType))))
		for i, d := range t.Shape {
			fallback = max(fallback, sat(d))
			dims := mm.feeds[name]
			if i < len(dims) && len(dims[i].terms) == 1 && dims[i].terms[0].coef == 1 && len(dims[i].terms[0].syms) == 1 {
				env[dims[i].terms[0].syms[0]] = int64(d)
			}
		}
	}
	for _, v := range mm.values {
		total = satAdd(total, v.bytes(env, fallback))
	}
	var scratch sat
	for _, r := range mm.scratch {
		scratch = max(scratch, r(env, fallback))
	}
	total = satAdd(total, scratch)
	for _, o := range mm.outputs {
		total = satAdd(total, satAdd(o.bytes(env, fallback), satMul(o.elems(env, fallback), 24)))
	}
	// a run's bookkeeping (value tables, result maps, tensor headers), then
	// the allocator's size classes and page rounding: +25%
	total = satAdd(total, runOverhead)
	return satAdd(total, total/4)
}

// machineMemory is the memory this process may use: the cgroup limit
// (containers, Kubernetes) or the machine's total, whichever is smaller;
// 0 when neither can be read.
func machineMemory() int64 {
	var total int64
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					total = kb << 10
				}
			}
		}
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil && v > 0 && (total == 0 || v < total) {
			total = v
		}
	}
	return total
}

// humanBytes formats a byte count for messages: "3.2 GiB".
func humanBytes(n sat) string {
	if n >= satMax {
		return "more than 4 EiB"
	}
	f := float64(n)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"} {
		if f < 1024 || u == "PiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", n)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return ""
}
