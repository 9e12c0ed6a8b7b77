package nn

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// DenseGroup (domain ai.mtlrun) is what the runtime's fusion pass emits for
// sibling task heads: H products act_i(A·op(W_i) + C_i) of the same A, each
// a few columns wide. Run as H Dense nodes, A would be read (and, above one
// row, packed) once per head and every head would pay a product call for a
// 16-column panel it fills with 1 to 8 columns. Here op(W_0) … op(W_{H-1})
// sit side by side in one K×ΣN matrix, packed once (cached when every W_i
// is a constant), A is multiplied by it once, and each head's column block
// is copied out and finished.
//
// Inputs: A, then W_i, C_i for each head (C_i may be absent). Attributes:
// transB (for every W_i), activations and activation_alphas (one entry per
// head, both optional).
//
// Output i is bit for bit what ai.mtlrun:Dense gives for head i alone, shape
// included, which is why fusion can never change a model's results. That
// holds because:
//   - linalg's product computes every output element from its own column of
//     the packed B and its own row of A, with a summation order that depends
//     only on K (k-blocks of 384, the kernels' fixed FMA order): not on N,
//     on the element's column panel, on edge-panel handling (the kernel's
//     accumulators start at +0, so they are never −0 and 0 + acc == acc), on
//     the number of rows, or on the one-row versus six-row kernel (which
//     linalg keeps identical; TestRowWiseMatchesBlocked);
//   - C is combined with the product exactly as Dense combines it: written
//     first and the product added to it when K is one k-block (Dense's
//     cFirst), added afterwards (the same expression, or biasRelu where
//     Dense uses it) when K spans several k-blocks or is 0;
//   - each activation runs over the head's whole output tensor, so
//     linalg.Sigmoid/Tanh put the same elements in their vector body and
//     scalar tail as ops/math (and Dense, whose row blocks start at
//     multiples of actAlign elements) do.

func init() {
	ops.Define(ops.Desc{Domain: "ai.mtlrun", Type: "DenseGroup", Since: 1, Shape: privateShape, Grad: privateGrad, Traits: ops.Private, Export: privateExport, Kernel: newDenseGroup})
}

type denseGroup struct {
	transB bool
	heads  int       // H, or 0 when the node does not say (taken from the inputs)
	acts   []actKind // nil: no activation on any head
	alphas []float32 // LeakyRelu alpha per head, parallel to acts
	// constIn is Config.ConstInputs (nil: unknown, every input may be
	// cached); the wide packed weights are cached only when every W_i is
	// constant.
	constIn []bool
	threads int
	packs   groupPackCache
}

func newDenseGroup(c *ops.Config) (ops.Op, error) {
	g := &denseGroup{threads: max(c.Threads, 1), constIn: append([]bool(nil), c.ConstInputs...)}
	if c.ConstInputs == nil {
		g.constIn = nil
	}
	switch tb := c.Attrs.Int("transB", 0); tb {
	case 0, 1:
		g.transB = tb == 1
	default:
		return nil, ops.BadAttr("transB", "must be 0 or 1, got %d", tb)
	}
	if c.NumInputs > 0 {
		// A, then W_i and C_i per head (a trailing absent C may be left out)
		if c.NumInputs < 2 {
			return nil, fmt.Errorf("DenseGroup needs A and at least one head's W, got %d inputs", c.NumInputs)
		}
		g.heads = c.NumInputs / 2
	}
	if c.NumOutputs > 0 && g.heads > 0 && c.NumOutputs != g.heads {
		return nil, fmt.Errorf("DenseGroup with %d heads (%d inputs) has %d outputs, want %d", g.heads, c.NumInputs, c.NumOutputs, g.heads)
	}
	names := c.Attrs.Strings("activations")
	alphas := c.Attrs.Floats("activation_alphas")
	if c.Attrs.Has("activations") {
		if len(names) == 0 {
			return nil, ops.BadAttr("activations", "is empty; leave it out for no activations")
		}
		if g.heads > 0 && len(names) != g.heads {
			return nil, ops.BadAttr("activations", "has %d entries for %d heads", len(names), g.heads)
		}
		g.heads = len(names)
		g.acts = make([]actKind, len(names))
		for i, s := range names {
			k, ok := actByName(s)
			if !ok {
				return nil, ops.BadAttr("activations", "head %d: unknown activation %q", i, s)
			}
			g.acts[i] = k
		}
	}
	if c.Attrs.Has("activation_alphas") {
		if g.heads > 0 && len(alphas) != g.heads {
			return nil, ops.BadAttr("activation_alphas", "has %d entries for %d heads", len(alphas), g.heads)
		}
		if g.acts != nil {
			g.alphas = append([]float32(nil), alphas...)
		}
	}
	if g.acts != nil && g.alphas == nil {
		// Dense's default activation_alpha
		g.alphas = make([]float32, len(g.acts))
		for i := range g.alphas {
			g.alphas[i] = 0.01
		}
	}
	return g, nil
}

// actByName maps Dense's activation names to their kinds.
func actByName(s string) (actKind, bool) {
	switch s {
	case "":
		return actNone, true
	case "Relu":
		return actRelu, true
	case "LeakyRelu":
		return actLeakyRelu, true
	case "Sigmoid":
		return actSigmoid, true
	case "Tanh":
		return actTanh, true
	}
	return actNone, false
}

func (g *denseGroup) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return g.RunWith(nil, in) }

// numHeads is H for these inputs: A, W_0, C_0, …, W_{H-1}[, C_{H-1}].
func (g *denseGroup) numHeads(in []*tensor.Tensor) (int, error) {
	h := g.heads
	if h == 0 {
		h = len(in) / 2
	}
	if h < 1 || (len(in) != 1+2*h && len(in) != 2*h) {
		return 0, fmt.Errorf("DenseGroup with %d heads needs %d inputs (A, then W and C per head), got %d", h, 1+2*h, len(in))
	}
	return h, nil
}

// head i's bias, or nil.
func headC(in []*tensor.Tensor, i int) *tensor.Tensor {
	if j := 2 + 2*i; j < len(in) {
		return in[j]
	}
	return nil
}

func (g *denseGroup) act(i int) (actKind, float32) {
	if g.acts == nil {
		return actNone, 0
	}
	return g.acts[i], g.alphas[i]
}

// RunWith computes every head's act_i(A·op(W_i) + C_i).
func (g *denseGroup) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	h, k, m, offs, allConst, err := g.check(ar, in)
	if err != nil {
		return nil, err
	}
	return g.compute(ar, in, h, k, m, offs, allConst, nil, nil)
}

// check validates the inputs and returns the number of heads, A's inner
// dimension and rows, the heads' column offsets in the wide product
// (offs[i] is head i's first column, offs[h] the width; arena scratch)
// and whether every W_i is constant.
func (g *denseGroup) check(ar *ops.Arena, in []*tensor.Tensor) (h, k, m int, offs []int, allConst bool, err error) {
	h, err = g.numHeads(in)
	if err != nil {
		return
	}
	a := in[0]
	if a == nil {
		err = ops.BadInput(0, "required input A is missing")
		return
	}
	if a.DType != tensor.Float32 || a.Rank() < 1 {
		err = ops.BadInput(0, "DenseGroup needs float32 A of rank ≥ 1, got %v %v", a.DType, a.Shape)
		return
	}
	// rows and inner dimension as Dense takes them (MatMul's flattening)
	k = a.Shape[a.Rank()-1]
	m = 1
	for _, d := range a.Shape[:a.Rank()-1] {
		m *= d
	}
	offs = ar.Ints(h + 1)
	allConst = true
	for i := 0; i < h; i++ {
		wi := 1 + 2*i
		w := in[wi]
		if w == nil {
			err = ops.BadInput(wi, "head %d: weight W is missing", i)
			return
		}
		if w.DType != tensor.Float32 || w.Rank() != 2 {
			err = ops.BadInput(wi, "head %d: W must be 2-D float32, got %v %v", i, w.DType, w.Shape)
			return
		}
		kb, n := w.Shape[0], w.Shape[1]
		if g.transB {
			kb, n = n, kb
		}
		if kb != k {
			err = ops.BadInput(wi, "head %d: inner dimensions differ: A is %v, op(W) is %d×%d", i, a.Shape, kb, n)
			return
		}
		if c := headC(in, i); c != nil && (c.DType != tensor.Float32 || !c.IsRowVector(n)) {
			err = ops.BadInput(wi+1, "head %d: C of %v %v must be float32 [%d] or [1 %d]", i, c.DType, c.Shape, n, n)
			return
		}
		offs[i+1] = offs[i] + n
		allConst = allConst && g.inputIsConst(wi)
	}
	return
}

// compute is RunWith after check, with the wide packed weights given
// (pre, a bound group's) or, when pre is nil, from the cache (allConst)
// or packed for this run; the outputs and the wide product come from own
// (a bound group's buffers) or, when own is nil, from ar.
func (g *denseGroup) compute(ar *ops.Arena, in []*tensor.Tensor, h, k, m int, offs []int, allConst bool, pre *linalg.PackedB, own *groupOwn) ([]*tensor.Tensor, error) {
	a := in[0]
	total := offs[h]

	var outs []*tensor.Tensor
	var wide []float32 // zeroed: heads without C start at 0
	if own != nil {
		var err error
		if outs, wide, err = own.get(in, h, m, offs); err != nil {
			return nil, err
		}
	} else {
		// the result list first: Outputs copies the H entries it is
		// given (here placeholders) into a list the arena keeps, which is
		// then filled in place, so no slice of H tensors is allocated per
		// run
		outs = ar.Outputs(in[:h]...)
		var shape [8]int
		for i := 0; i < h; i++ {
			t, err := ar.Empty(tensor.Float32, headShape(&shape, in, i, offs[i+1]-offs[i]))
			if err != nil {
				return nil, err
			}
			outs[i] = t
		}
	}
	if m == 0 || total == 0 {
		return outs, nil
	}

	// Dense's cFirst condition: K is one k-block of linalg's product
	oneKBlock := k > 0 && linalg.WorkSize(6, k) == 6*k
	if wide == nil {
		wide = ar.Float32s(m * total)
	}
	if oneKBlock {
		// the first row holds every head's C (or 0), then fillRows
		// repeats it
		row := wide[:total]
		for i := 0; i < h; i++ {
			part := row[offs[i]:offs[i+1]]
			if c := headC(in, i); c != nil {
				copy(part, c.Float32s())
			} else {
				clear(part)
			}
		}
		fillRows(wide[:m*total], row)
	}
	if k > 0 && pre != nil && m < 6 {
		// a bound group on a few rows (a stream step): product's
		// row-wise path, called directly
		av := a.Float32s()
		for r := 0; r < m; r++ {
			linalg.SgemmPacked(false, 1, 1, av[r*k:], k, pre, 1, wide[r*total:], total)
		}
	} else if k > 0 {
		var pb linalg.PackedB
		if pre != nil {
			pb = *pre
		} else if allConst {
			pb = *g.packs.get(in, offs, g.transB, k)
		} else {
			pb = packB(ar, g.transB, k, total, concatW(ar.Float32s(k*total), in, offs, g.transB, k))
		}
		g.product(ar, m, a.Float32s(), k, pb, wide)
	}

	for i := 0; i < h; i++ {
		off, n := offs[i], offs[i+1]-offs[i]
		o := outs[i].Float32s()
		// heads are a few columns wide: an element loop, not a copy
		// call per row
		src := wide[off:]
		for r := 0; r < m; r++ {
			d, s := o[r*n:r*n+n], src[r*total:r*total+n]
			for j := range d {
				d[j] = s[j]
			}
		}
		act, alpha := g.act(i)
		if c := headC(in, i); c != nil && !oneKBlock {
			// C after the product, as Dense adds it over several k-blocks:
			// its one-pass bias (+ Relu) for a row C, else add then act
			bias := c.Float32s()[:n]
			rowC := a.Rank() != 2 || classifyC(c.Shape, m, n) == cRow
			if rowC && act == actRelu {
				for r := 0; r < m; r++ {
					biasRelu(o[r*n:r*n+n], bias)
				}
				continue
			}
			for r := 0; r < m; r++ {
				biasAdd(o[r*n:r*n+n], bias)
			}
		}
		applyAct(o, act, alpha)
	}
	return outs, nil
}

// headShape is head i's output shape (n columns), in shape's storage:
// A's leading dims, then n.
func headShape(shape *[8]int, in []*tensor.Tensor, i, n int) []int {
	a := in[0]
	os := append(shape[:0], a.Shape[:a.Rank()-1]...)
	if c := headC(in, i); c != nil && a.Rank() == 1 && c.Rank() == 2 {
		os = append(os, 1) // as Dense: [n] + [1 n] broadcasts to [1 n]
	}
	return append(os, n)
}

func (g *denseGroup) inputIsConst(i int) bool {
	return g.constIn == nil || (i < len(g.constIn) && g.constIn[i])
}

// product adds A (m×k) times the packed wide matrix to out (m×ΣN), which
// holds the heads' biases (or zeros), splitting rows over threads as Dense
// does: only above parallelWork multiply-adds.
func (g *denseGroup) product(ar *ops.Arena, m int, a []float32, k int, pb linalg.PackedB, out []float32) {
	n := pb.N
	// Below six rows, one linalg call per row (reading A in place) beats
	// packing A. Above, unlike Dense's one-panel rule, the blocked product:
	// the heads together fill their panel(s), and on mlp4's heads (64 rows,
	// K 64, 15 columns) it measured ~4.1 µs against ~5.1 µs row by row.
	// Both give the same bits (TestRowWiseMatchesBlocked).
	j := denseJob{alpha: 1, a: a, lda: k, pb: pb, out: out, n: n, block: m, keep: true, rowWise: m < 6}
	parts := 1
	if g.threads > 1 && m >= 32 && m*n*k >= parallelWork {
		parts = min(g.threads, m/16)
	}
	if parts <= 1 {
		if j.rowWise {
			j.rows(0, m)
			return
		}
		// A-panel scratch from the arena rather than linalg's pool, which
		// a GC may empty; not cleared: packing writes what the tiles read
		// (and AVX2's in-place tiles read none of it), and clearing its
		// ~100 KB took ~1 % of mlp_gelu's batch-64 run
		linalg.SgemmPackedWork(false, m, 1, a, k, &pb, 1, out, n, ar.EmptyFloat32s(linalg.WorkSize(m, k)))
		return
	}
	// rows are independent, so any split gives the same bits; six-row
	// boundaries keep the micro-kernel's blocks whole
	var buf [maxChunks + 1]int
	bounds := splitRows(&buf, m, parts, 6)
	if len(bounds) <= 2 {
		j.rows(0, m)
		return
	}
	fanOut(&job{kind: jobDense, dense: j}, bounds)
}

// concatW writes op(W_0) … op(W_{H-1}) side by side into dst and returns
// it, laid out for PackB: K×ΣN row-major when !transB, and when transB the
// ΣN×K stack of the W_i themselves (each is N_i×K), i.e. the transposed
// wide matrix, which is just the W_i one after another.
func concatW(dst []float32, in []*tensor.Tensor, offs []int, transB bool, k int) []float32 {
	h := len(offs) - 1
	total := offs[h]
	dst = dst[:k*total]
	for i := 0; i < h; i++ {
		w := in[1+2*i].Float32s()
		off, n := offs[i], offs[i+1]-offs[i]
		if transB {
			copy(dst[off*k:(off+n)*k], w)
			continue
		}
		for q := 0; q < k; q++ {
			copy(dst[q*total+off:q*total+off+n], w[q*n:q*n+n])
		}
	}
	return dst
}

// groupPackCache keeps the packed wide matrix of the last set of constant
// weights, keyed by the data address and length of every W_i and the
// heads' widths. Like packCache it holds references to the slices it
// packed, so their addresses cannot be reused while cached; different
// weights (after training, say) simply repack.
type groupPackCache struct {
	mu     sync.Mutex
	ws     [][]float32
	offs   []int
	k      int
	transB bool
	packed *linalg.PackedB
}

func (p *groupPackCache) get(in []*tensor.Tensor, offs []int, transB bool, k int) *linalg.PackedB {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hit(in, offs, transB, k) {
		return p.packed
	}
	h := len(offs) - 1
	total := offs[h]
	ldb := total
	if transB {
		ldb = k
	}
	p.packed = linalg.PackB(transB, k, total, concatW(make([]float32, k*total), in, offs, transB, k), ldb)
	p.ws = p.ws[:0]
	for i := 0; i < h; i++ {
		p.ws = append(p.ws, in[1+2*i].Float32s())
	}
	p.offs = append(p.offs[:0], offs...)
	p.k, p.transB = k, transB
	return p.packed
}

func (p *groupPackCache) hit(in []*tensor.Tensor, offs []int, transB bool, k int) bool {
	if p.packed == nil || p.k != k || p.transB != transB || len(p.offs) != len(offs) {
		return false
	}
	for i, o := range offs {
		if p.offs[i] != o {
			return false
		}
	}
	for i, old := range p.ws {
		w := in[1+2*i].Float32s()
		// an empty W contributes no columns: its address does not matter
		if len(w) != len(old) || (len(w) > 0 && unsafe.SliceData(w) != unsafe.SliceData(old)) {
			return false
		}
	}
	return true
}
