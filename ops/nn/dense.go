package nn

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// Dense (domain ai.mtlrun) is the fused layer the runtime's fusion pass
// emits for Gemm → activation and MatMul → Add → activation: Gemm's inputs
// and attributes, A of any rank ≥ 1 when transA = 0 (MatMul's flattening of
// leading dims, with a row-vector C), and an "activation" applied to each
// block of output rows right after its product, while it is still in
// cache. It never appears in a model file.
//
// Its results are bit-for-bit those of the unfused nodes: the product is
// computed exactly as Gemm and MatMul compute it (same packed kernel, and
// every row's result is independent of how rows are blocked), C is added
// after the product as Add would add it, and the activations are the ones
// ops/math applies. Float32 Gemm itself runs through the same code with no
// activation.

// What the descriptors of the private fused ops say in place of rules.
var (
	privateShape  = ops.NoShapeRule("private op made by a session's fusion pass; shapeinfer reads model graphs, which never hold it")
	privateGrad   = ops.NotDifferentiable("private inference-only op: training differentiates the unfused model graph")
	privateExport = "never exported: the fusion that makes it is private to a session"
)

func init() {
	ops.Define(ops.Desc{Domain: "ai.mtlrun", Type: "Dense", Since: 1, Shape: privateShape, Grad: privateGrad, Traits: ops.Private, Export: privateExport, Kernel: newDense})
}

type actKind uint8

const (
	actNone actKind = iota
	actRelu
	actLeakyRelu
	actSigmoid
	actTanh
	// actGeluErf+form, form 0…geluForms-1: GELU's exported erf form (see
	// GeluErf); the activation's alpha is its scale c.
	actGeluErf
	// actGeluTanh+form: GELU's tanh form (see GeluTanh).
	actGeluTanh = actGeluErf + geluForms
)

// actAlign is the element alignment of the blocks an activation is applied
// to. linalg.Sigmoid and Tanh run full SIMD vectors and finish a slice's
// tail with scalar code whose last bits may differ, so to match ops/math
// (which applies them to the whole output at once) every block but the last
// must start at a multiple of the vector width; 64 covers any width up to
// 2048 bits.
const actAlign = 64

type dense struct {
	gemm       *linGemm
	act        actKind
	leakyAlpha float32
}

func newDense(c *ops.Config) (ops.Op, error) {
	g, err := newGemm(c)
	if err != nil {
		return nil, err
	}
	d := &dense{gemm: g.(*linGemm), leakyAlpha: c.Attrs.Float("activation_alpha", 0.01)}
	switch s := c.Attrs.String("activation", ""); s {
	case "":
		d.act = actNone
	case "Relu":
		d.act = actRelu
	case "LeakyRelu":
		d.act = actLeakyRelu
	case "Sigmoid":
		d.act = actSigmoid
	case "Tanh":
		d.act = actTanh
	case "GeluErf":
		form := c.Attrs.Int("gelu_form", 0)
		if form < 0 || form >= geluForms {
			return nil, ops.BadAttr("gelu_form", "must be 0…%d, got %d", geluForms-1, form)
		}
		d.act = actGeluErf + actKind(form)
	case "GeluTanh":
		form := c.Attrs.Int("gelu_form", 0)
		if form < 0 || form >= geluForms {
			return nil, ops.BadAttr("gelu_form", "must be 0…%d, got %d", geluForms-1, form)
		}
		d.act = actGeluTanh + actKind(form)
	default:
		return nil, ops.BadAttr("activation", "unknown activation %q", s)
	}
	return d, nil
}

func (d *dense) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return d.RunWith(nil, in) }

// RunWith computes act(alpha·op(A)·op(B) + beta·C).
func (d *dense) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if a.DType != tensor.Float32 || b.DType != tensor.Float32 {
		return nil, fmt.Errorf("Dense needs float32 A and B, got %v and %v", a.DType, b.DType)
	}
	if a.Rank() == 2 || d.gemm.transA {
		return d.gemm.runF32(ar, in, d.act, d.leakyAlpha)
	}
	// MatMul semantics: leading dims of A are rows
	if a.Rank() < 1 || b.Rank() != 2 {
		return nil, fmt.Errorf("Dense needs A of rank ≥ 1 and 2-D B, got %v and %v", a.Shape, b.Shape)
	}
	k := a.Shape[a.Rank()-1]
	m := a.Len() / max(k, 1)
	if k == 0 {
		m = 1
		for _, v := range a.Shape[:a.Rank()-1] {
			m *= v
		}
	}
	kb, n := b.Shape[0], b.Shape[1]
	if d.gemm.transB {
		kb, n = n, kb
	}
	if kb != k {
		return nil, fmt.Errorf("Dense inner dimensions differ: A is %v, op(B) is %d×%d", a.Shape, kb, n)
	}
	var c cView
	var shape [8]int
	os := append(shape[:0], a.Shape[:a.Rank()-1]...)
	if len(in) > 2 && in[2] != nil && d.gemm.beta != 0 {
		ct := in[2]
		if ct.DType != tensor.Float32 || !ct.IsRowVector(n) {
			return nil, ops.BadInput(2, "C of shape %v must be [%d] or [1 %d] when A has rank %d", ct.Shape, n, n, a.Rank())
		}
		c = cView{data: ct.Float32s(), kind: cRow, beta: d.gemm.beta}
		if a.Rank() == 1 && ct.Rank() == 2 {
			os = append(os, 1) // [n] + [1 n] broadcasts to [1 n]
		}
	}
	os = append(os, n)
	out, err := ar.Empty(tensor.Float32, os)
	if err != nil {
		return nil, err
	}
	pb := d.gemm.packed(ar, b.Float32s(), k, n)
	d.gemm.product(false, m, n, a.Float32s(), k, pb, c, out.Float32s(), d.act, d.leakyAlpha)
	return ar.Outputs(out), nil
}

// cKind is how C broadcasts over the m×n output.
type cKind uint8

const (
	cNone cKind = iota
	cScalar
	cRow  // one value per column
	cCol  // one value per row
	cFull // m×n
)

type cView struct {
	data []float32
	kind cKind
	beta float32
}

// classifyC says how a C of the given shape (already checked to broadcast
// unidirectionally to m×n, rank ≤ 2) is laid out.
func classifyC(shape []int, m, n int) cKind {
	l := 1
	for _, d := range shape {
		l *= d
	}
	switch {
	case l == 1:
		return cScalar
	case len(shape) == 2 && shape[0] == m && shape[1] == n:
		return cFull
	case len(shape) == 2 && shape[1] == 1:
		return cCol
	default:
		return cRow
	}
}

// denseJob is the float32 product out = act(alpha·op(A)·B + beta·C) over
// m rows, one value copy per worker.
type denseJob struct {
	transA bool
	alpha  float32
	a      []float32
	lda    int
	pb     linalg.PackedB
	c      cView
	out    []float32 // m×n, row stride n
	n      int
	block  int // rows per block
	// cFirst: C is written first and the product added to it, which is
	// bitwise the same as adding C after the product when the product is
	// one k-block (the kernels sum into zeroed registers and add those to
	// C once: acc + c either way); over several k-blocks it is not.
	cFirst bool
	// rowWise: one linalg call per row. A product with one column panel
	// (n ≤ 16) costs less than packing A for it, and linalg's one-row path
	// reads A in place; its rows come out bitwise as in the blocked
	// product (linalg keeps the one-row and six-row kernels' summation
	// order the same).
	rowWise bool
	// keep: out already holds the values the product is added to
	// (DenseGroup's bias columns, written before the product for the
	// reason cFirst is); no C, no activation, beta 1.
	keep       bool
	act        actKind
	leakyAlpha float32
}

// blockRows picks the rows per block: a multiple of blockAlign(n), about
// 16 KB of output so the block is still in L1 when the bias and the
// activation pass over it. With k×n weights of bigWeights floats or more
// (they do not stay in L2, so every block streams them from L3 or memory
// again) the block is up to linalg.RowBlock rows instead, the output
// block then passing through L2: mlp_gelu at batch 64 (1 and 2 MB of
// weights), avx2 under `bench --vs-ort`, p50 ratio 1.02-1.08 with 12-row
// blocks, 0.94-0.99 with one 64-row block.
func blockRows(n, k int) int {
	base := blockAlign(n)
	if k*n >= bigWeights {
		return base * max(1, linalg.RowBlock/base)
	}
	return base * max(1, 4096/max(n*base, 1))
}

// bigWeights is the weight count (floats) from which blockRows makes
// blocks as tall as the SGEMM's own row block: 256 KB.
const bigWeights = 64 << 10

// blockAlign is the row granularity of blocks and thread chunks: a
// multiple of linalg.TileRows (whole tiles on every kernel set: a 6-row
// block left AVX2's 4-row tiles a 2-row remainder in every block) that
// makes every block start at a multiple of actAlign elements.
func blockAlign(n int) int { return lcm(linalg.TileRows, actAlign/gcd(n, actAlign)) }

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func lcm(a, b int) int { return a / gcd(a, b) * b }

// rows computes output rows [r0, r1) block by block.
func (j *denseJob) rows(r0, r1 int) {
	n := j.n
	for b0 := r0; b0 < r1; b0 += j.block {
		b1 := min(r1, b0+j.block)
		var a []float32
		if j.transA {
			a = j.a[b0:]
		} else {
			a = j.a[b0*j.lda:]
		}
		out := j.out[b0*n : b1*n]
		if j.keep {
			j.gemm(a, b1-b0, 1, out)
			continue
		}
		if epi, beta, ok := j.epilogue(); ok {
			// GELU (and the bias) per column strip, in L1 (see epilogue)
			if beta == 1 {
				j.setC(out, b0, b1)
			}
			linalg.SgemmPackedEpi(b1-b0, a, j.lda, &j.pb, beta, out, n, nil, &epi)
			continue
		}
		if j.cFirst {
			// C first, the product added to it: one pass fewer
			j.setC(out, b0, b1)
			j.gemm(a, b1-b0, 1, out)
			applyAct(out, j.act, j.leakyAlpha)
			continue
		}
		j.gemm(a, b1-b0, 0, out)
		if j.c.kind == cRow && j.c.beta == 1 && (j.act == actNone || j.act == actRelu) {
			// the usual bias (+ Relu): one pass per row
			bias := j.c.data[:n]
			for r := 0; r < b1-b0; r++ {
				row := out[r*n : r*n+n]
				if j.act == actRelu {
					biasRelu(row, bias)
					continue
				}
				biasAdd(row, bias)
			}
			continue
		}
		j.addC(out, b0, b1)
		applyAct(out, j.act, j.leakyAlpha)
	}
}

// epilogue says whether the block's activation (and bias) can run as
// linalg's SGEMM epilogue, on each column strip right after its sums are
// complete, while it is in L1, instead of a pass over the whole block:
// GELU's erf form on a kernel set with the epilogue kernel, for a product
// the tiles take in place. It returns the epilogue and the beta the
// product takes: 1 when C is written first (cFirst; the epilogue adds no
// bias), else 0, a row bias then added by the epilogue or, on AVX2 with
// one k block, by the tiles (linalg.EpilogueBiasInTiles): either is the
// bias pass's float32 add, acc + bias, the bits of cFirst's bias + acc.
func (j *denseJob) epilogue() (linalg.Epilogue, float32, bool) {
	if j.act < actGeluErf || j.act >= actGeluTanh || j.transA || j.alpha != 1 || j.rowWise || !linalg.GeluEpilogue() {
		return linalg.Epilogue{}, 0, false
	}
	form := int(j.act - actGeluErf)
	epi := linalg.Epilogue{Scale: j.leakyAlpha, Div: form&1 == 0, Order: form >> 1}
	switch {
	case j.c.kind == cRow && j.c.beta == 1 && (!j.cFirst || linalg.EpilogueBiasInTiles()):
		epi.Bias = j.c.data[:j.n]
		return epi, 0, true
	case j.cFirst:
		return epi, 1, true
	case j.c.kind == cNone:
		return epi, 0, true
	}
	return linalg.Epilogue{}, 0, false
}

// gemm computes out (rows×n) = op(A)·B + beta·out for the rows of a.
func (j *denseJob) gemm(a []float32, rows int, beta float32, out []float32) {
	if !j.rowWise {
		linalg.SgemmPacked(j.transA, rows, j.alpha, a, j.lda, &j.pb, beta, out, j.n)
		return
	}
	for r := 0; r < rows; r++ {
		linalg.SgemmPacked(false, 1, 1, a[r*j.lda:], j.lda, &j.pb, beta, out[r*j.n:], j.n)
	}
}

// setC writes beta·C for rows [b0, b1) into out.
func (j *denseJob) setC(out []float32, b0, b1 int) {
	c, n := j.c, j.n
	if c.beta != 1 {
		clear(out)
		j.addC(out, b0, b1)
		return
	}
	switch c.kind {
	case cScalar:
		v := c.data[0]
		for i := range out {
			out[i] = v
		}
	case cRow:
		fillRows(out[:(b1-b0)*n], c.data[:n])
	case cCol:
		for r := 0; r < b1-b0; r++ {
			v := c.data[b0+r]
			row := out[r*n : r*n+n]
			for x := range row {
				row[x] = v
			}
		}
	case cFull:
		copy(out, c.data[b0*n:b1*n])
	}
}

// fillRows sets every len(row)-element row of out (a whole number of
// them) to row: the first copied, then what is filled copied after
// itself, doubling, so m rows take about log₂ m copies instead of m
// (64 rows of a few to a few hundred floats: the calls were most of it).
func fillRows(out, row []float32) {
	if len(out) == 0 {
		return
	}
	done := copy(out, row)
	for done < len(out) {
		done += copy(out[done:], out[:done])
	}
}

// addC adds beta·C to rows [b0, b1) held in out, after the product, in the
// order Add would: out = product + beta·C.
func (j *denseJob) addC(out []float32, b0, b1 int) {
	c, n := j.c, j.n
	if c.kind == cNone {
		return
	}
	scale := func(v float32) float32 { return float32(float64(c.beta) * float64(v)) }
	if c.beta == 1 {
		scale = nil
	}
	switch c.kind {
	case cScalar:
		v := c.data[0]
		if scale != nil {
			v = scale(v)
		}
		for i := range out {
			out[i] += v
		}
	case cRow:
		bias := c.data[:n]
		for r := 0; r < b1-b0; r++ {
			row := out[r*n : r*n+n]
			if scale == nil {
				biasAdd(row, bias)
				continue
			}
			for x, v := range bias {
				row[x] += scale(v)
			}
		}
	case cCol:
		for r := 0; r < b1-b0; r++ {
			v := c.data[b0+r]
			if scale != nil {
				v = scale(v)
			}
			row := out[r*n : r*n+n]
			for x := range row {
				row[x] += v
			}
		}
	case cFull:
		src := c.data[b0*n : b1*n]
		if scale == nil {
			for i, v := range src {
				out[i] += v
			}
			return
		}
		for i, v := range src {
			out[i] += scale(v)
		}
	}
}

// relu is max(v, 0) bit for bit as Go's builtin computes it (negative
// values and −0 give +0, a NaN keeps its payload with the sign cleared),
// without the builtin's branches, which mispredict on mixed signs.
func relu(v float32) float32 {
	u := math.Float32bits(v)
	keep := ^uint32(int32(u)>>31) | uint32(int32(0x7f800000-(u&0x7fffffff))>>31)>>1
	return math.Float32frombits(u & keep)
}

// applyAct applies an activation in place, exactly as ops/math's float32
// kernels do: Relu is max(x, 0) (NaN stays NaN), LeakyRelu multiplies
// negative values by alpha, Sigmoid and Tanh are linalg's vector functions,
// GeluErf the unfused Div/Erf/Add/Mul/Mul (alpha is its scale).
func applyAct(x []float32, act actKind, alpha float32) {
	switch act {
	case actRelu:
		reluSlice(x)
	case actLeakyRelu:
		leakyRelu(x, alpha)
	case actSigmoid:
		linalg.Sigmoid(x)
	case actTanh:
		linalg.Tanh(x)
	default:
		if act >= actGeluTanh {
			geluTanh(x, int(act-actGeluTanh))
		} else if act >= actGeluErf {
			geluErf(x, alpha, int(act-actGeluErf))
		}
	}
}
