package nn

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// Gemm and MatMul: float32 goes through the SIMD SGEMM of ops/linalg (with
// the right-hand matrix packed once per weight tensor), float64 and the
// integer types through a plain loop.

func init() {
	ops.Define(ops.Desc{Type: "Gemm", Since: 1, Grad: ops.GradRule{}, Kernel: halfCompute(newGemm)})
	ops.Define(ops.Desc{Type: "MatMul", Since: 1, Grad: ops.GradRule{}, Kernel: halfCompute(newMatMul)})
}

type linGemm struct {
	transA, transB bool
	alpha, beta    float32
	constB         bool // input 1 never changes: its packed form is cached
	threads        int
	packs          packCache
}

func newGemm(c *ops.Config) (ops.Op, error) {
	g := &linGemm{
		transA: c.Attrs.Int("transA", 0) != 0, transB: c.Attrs.Int("transB", 0) != 0,
		alpha: c.Attrs.Float("alpha", 1), beta: c.Attrs.Float("beta", 1),
		constB: c.InputIsConst(1), threads: max(c.Threads, 1),
	}
	if c.Opset < 7 && c.Attrs.Has("broadcast") && c.Attrs.Int("broadcast", 0) == 0 {
		return nil, ops.BadAttr("broadcast", "Gemm without broadcast (opset < 7) is not supported")
	}
	return g, nil
}

func (g *linGemm) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return g.RunWith(nil, in) }

// gemmShapes checks Gemm's inputs and returns m, n, k and C (nil when it
// does not contribute).
func (g *linGemm) gemmShapes(in []*tensor.Tensor) (m, n, k int, cIn *tensor.Tensor, err error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return 0, 0, 0, nil, err
	}
	a, b := in[0], in[1]
	if a.Rank() != 2 || b.Rank() != 2 {
		return 0, 0, 0, nil, fmt.Errorf("Gemm needs 2-D A and B, got %v and %v", a.Shape, b.Shape)
	}
	if a.DType != b.DType {
		return 0, 0, 0, nil, ops.BadInput(1, "dtype %v differs from A's %v", b.DType, a.DType)
	}
	m, k = a.Shape[0], a.Shape[1]
	if g.transA {
		m, k = k, m
	}
	kb, n := b.Shape[0], b.Shape[1]
	if g.transB {
		kb, n = n, kb
	}
	if kb != k {
		return 0, 0, 0, nil, fmt.Errorf("Gemm inner dimensions differ: op(A) is %d×%d, op(B) is %d×%d", m, k, kb, n)
	}
	if len(in) > 2 && in[2] != nil && g.beta != 0 {
		cIn = in[2]
		if cIn.DType != a.DType {
			return 0, 0, 0, nil, ops.BadInput(2, "dtype %v differs from A's %v", cIn.DType, a.DType)
		}
		if !broadcastsTo2D(cIn.Shape, m, n) {
			return 0, 0, 0, nil, ops.BadInput(2, "C of shape %v does not broadcast to %d×%d", cIn.Shape, m, n)
		}
	}
	return m, n, k, cIn, nil
}

// broadcastsTo2D reports whether shape (rank ≤ 2) broadcasts
// unidirectionally to m×n.
func broadcastsTo2D(shape []int, m, n int) bool {
	switch len(shape) {
	case 0:
		return true
	case 1:
		return shape[0] == 1 || shape[0] == n
	case 2:
		return (shape[0] == 1 || shape[0] == m) && (shape[1] == 1 || shape[1] == n)
	}
	return false
}

// RunWith computes alpha·op(A)·op(B) + beta·C.
func (g *linGemm) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(in) >= 2 && in[0] != nil && in[0].DType == tensor.Float32 {
		return g.runF32(ar, in, actNone, 0)
	}
	m, n, k, cIn, err := g.gemmShapes(in)
	if err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	out, err := ar.New(a.DType, []int{m, n})
	if err != nil {
		return nil, err
	}
	switch a.DType {
	case tensor.Float64:
		gemmLoop(g, a, b, cIn, out, m, n, k, tensor.Data[float64])
	case tensor.Int32:
		gemmLoop(g, a, b, cIn, out, m, n, k, tensor.Data[int32])
	case tensor.Int64:
		gemmLoop(g, a, b, cIn, out, m, n, k, tensor.Data[int64])
	case tensor.Uint32:
		gemmLoop(g, a, b, cIn, out, m, n, k, tensor.Data[uint32])
	case tensor.Uint64:
		gemmLoop(g, a, b, cIn, out, m, n, k, tensor.Data[uint64])
	default:
		return nil, ops.BadInput(0, "dtype %v not supported", a.DType)
	}
	return ar.Outputs(out), nil
}

// runF32 is float32 Gemm followed by an activation (Dense with 2-D A).
func (g *linGemm) runF32(ar *ops.Arena, in []*tensor.Tensor, act actKind, leakyAlpha float32) ([]*tensor.Tensor, error) {
	m, n, k, cIn, err := g.gemmShapes(in)
	if err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	shape := [2]int{m, n}
	out, err := ar.Empty(tensor.Float32, shape[:])
	if err != nil {
		return nil, err
	}
	var c cView
	if cIn != nil {
		c = cView{data: cIn.Float32s(), kind: classifyC(cIn.Shape, m, n), beta: g.beta}
	}
	pb := g.packed(ar, b.Float32s(), k, n)
	g.product(g.transA, m, n, a.Float32s(), a.Shape[1], pb, c, out.Float32s(), act, leakyAlpha)
	return ar.Outputs(out), nil
}

// packed returns op(B) packed for the micro-kernels: cached when B is a
// constant, packed afresh otherwise (an arena buffer at the same address
// may hold new values on the next run).
func (g *linGemm) packed(ar *ops.Arena, b []float32, k, n int) linalg.PackedB {
	if g.constB {
		return *g.packs.getSlice(b, g.transB, k, n)
	}
	return packB(ar, g.transB, k, n, b)
}

// parallelWork is the number of multiply-adds below which a product stays
// on one goroutine. Handing a chunk over costs ~0.1 µs when a worker is
// spinning but several µs when it must be woken (a futex, and an
// inter-processor interrupt in a VM), and a spinning worker competes for
// the core when the machine is busy: measured on a shared 2-vCPU VM,
// splitting mlp4's 64-row layers (0.2-0.5 M multiply-adds, 4-11 µs) made
// them slower, while from 2 M multiply-adds (256×128×64) two threads
// gave 1.3-1.5×. Re-measured on a quiet machine with ops/parallel's
// polling workers: lowering this to split mlp4's layers (131 K and 524 K
// multiply-adds) still lost (rows/s 3.2 M → 2.3 M), the second core's
// cache misses on the rows the first wrote costing more than its share.
const parallelWork = 1 << 21

// product computes out (m×n) = act(alpha·op(A)·B + beta·C), splitting the
// rows over up to g.threads goroutines when there are enough of them.
func (g *linGemm) product(transA bool, m, n int, a []float32, lda int, pb linalg.PackedB, c cView, out []float32, act actKind, leakyAlpha float32) {
	if m == 0 || n == 0 {
		return
	}
	j := denseJob{transA: transA, alpha: g.alpha, a: a, lda: lda, pb: pb, c: c, out: out, n: n,
		block: m, act: act, leakyAlpha: leakyAlpha}
	if c.kind != cNone || act != actNone {
		j.block = blockRows(n, pb.K)
	}
	k := pb.K
	oneKBlock := k > 0 && linalg.WorkSize(6, k) == 6*k
	j.cFirst = c.kind != cNone && oneKBlock
	j.rowWise = !transA && g.alpha == 1 && n <= 16 && m > 1 && oneKBlock
	parts := 1
	if g.threads > 1 && m >= 32 && m*n*k >= parallelWork {
		parts = min(g.threads, m/16)
	}
	if parts <= 1 {
		j.rows(0, m)
		return
	}
	align := blockAlign(n)
	var buf [maxChunks + 1]int
	bounds := splitRows(&buf, m, parts, align)
	if len(bounds) <= 2 {
		j.rows(0, m)
		return
	}
	fanOut(&job{kind: jobDense, dense: j}, bounds)
}

// fillBroadcast writes beta·C (unidirectionally broadcast to m×n) into c.
func fillBroadcast[T tensor.Number](c, cv []T, shape []int, m, n int, beta float32) {
	switch {
	case len(cv) == 1:
		v := T(float64(beta) * float64(cv[0]))
		for i := range c {
			c[i] = v
		}
	case len(cv) == m*n:
		for i, v := range cv {
			c[i] = T(float64(beta) * float64(v))
		}
	case len(cv) == n && (len(shape) == 1 || shape[0] == 1):
		// the usual bias vector: scale one row, copy it down
		row := c[:n]
		for j, v := range cv {
			row[j] = T(float64(beta) * float64(v))
		}
		for i := 1; i < m; i++ {
			copy(c[i*n:(i+1)*n], row)
		}
	default:
		idx := tensor.BroadcastIndex(shape, []int{m, n})
		for i, j := range idx {
			c[i] = T(float64(beta) * float64(cv[j]))
		}
	}
}

func gemmLoop[T tensor.Number](g *linGemm, a, b, cIn, out *tensor.Tensor, m, n, k int, get func(*tensor.Tensor) []T) {
	av, bv, o := get(a), get(b), get(out)
	if cIn != nil {
		fillBroadcast(o, get(cIn), cIn.Shape, m, n, g.beta)
	}
	lda, ldb := a.Shape[1], b.Shape[1]
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s T
			for q := 0; q < k; q++ {
				var x, y T
				if g.transA {
					x = av[q*lda+i]
				} else {
					x = av[i*lda+q]
				}
				if g.transB {
					y = bv[j*ldb+q]
				} else {
					y = bv[q*ldb+j]
				}
				s += x * y
			}
			o[i*n+j] += T(float64(g.alpha) * float64(s))
		}
	}
}

type linMatMul struct{ gemm linGemm }

func newMatMul(c *ops.Config) (ops.Op, error) {
	return &linMatMul{gemm: linGemm{alpha: 1, constB: c.InputIsConst(1), threads: max(c.Threads, 1)}}, nil
}

func (mm *linMatMul) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return mm.RunWith(nil, in) }

// RunWith is numpy's matmul: 1-D operands are promoted to a row (A) or a
// column (B) and the promotion undone in the result; leading dims
// broadcast. A 2-D B shared by every batch entry is packed once (cached
// when constant) and the batch folded into the rows of one product.
func (mm *linMatMul) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if a.DType != b.DType {
		return nil, ops.BadInput(1, "dtype %v differs from A's %v", b.DType, a.DType)
	}
	if a.Rank() == 0 || b.Rank() == 0 {
		return nil, fmt.Errorf("MatMul needs inputs of rank ≥ 1, got %v and %v", a.Shape, b.Shape)
	}
	var abuf, bbuf [2]int
	as, bs := a.Shape, b.Shape
	if len(as) == 1 {
		abuf = [2]int{1, as[0]}
		as = abuf[:]
	}
	if len(bs) == 1 {
		bbuf = [2]int{bs[0], 1}
		bs = bbuf[:]
	}
	m, k, kb, n := as[len(as)-2], as[len(as)-1], bs[len(bs)-2], bs[len(bs)-1]
	if k != kb {
		return nil, fmt.Errorf("MatMul inner dimensions differ: %v × %v (%d vs %d)", a.Shape, b.Shape, k, kb)
	}
	aB, bB := as[:len(as)-2], bs[:len(bs)-2]
	nbd := max(len(aB), len(bB))
	shape := ar.Ints(nbd + 2)
	batch := shape[:nbd]
	for i := range batch {
		da, db := 1, 1
		if j := i - (nbd - len(aB)); j >= 0 {
			da = aB[j]
		}
		if j := i - (nbd - len(bB)); j >= 0 {
			db = bB[j]
		}
		switch {
		case da == db || db == 1:
			batch[i] = da
		case da == 1:
			batch[i] = db
		default:
			return nil, fmt.Errorf("MatMul batch dims of %v and %v do not broadcast", a.Shape, b.Shape)
		}
	}
	nb := 1
	for _, d := range batch {
		nb *= d
	}
	// the result's shape, with the 1-D promotions undone
	final := batch
	if a.Rank() > 1 {
		final = append(final, m)
	}
	if b.Rank() > 1 {
		final = append(final, n)
	}
	var out *tensor.Tensor
	var err error
	if a.DType == tensor.Float32 {
		out, err = ar.Empty(a.DType, final) // every element is written
	} else {
		out, err = ar.New(a.DType, final)
	}
	if err != nil {
		return nil, err
	}
	if a.DType == tensor.Float32 && len(bB) == 0 {
		// B shared by every batch entry: the batch is more rows
		pb := mm.gemm.packed(ar, b.Float32s(), k, n)
		mm.gemm.product(false, nb*m, n, a.Float32s(), k, pb, cView{}, out.Float32s(), actNone, 0)
		return ar.Outputs(out), nil
	}
	aIdx, bIdx := ar.Ints(nb), ar.Ints(nb)
	batchOffsets(aIdx, aB, batch)
	batchOffsets(bIdx, bB, batch)
	switch a.DType {
	case tensor.Float32:
		av, bv, o := a.Float32s(), b.Float32s(), out.Float32s()
		var pb linalg.PackedB
		var panels []float32
		if m > 2 {
			panels = ar.Float32s(linalg.PackedSize(k, n))
		}
		for i := 0; i < nb; i++ {
			ao, bo, co := aIdx[i]*m*k, bIdx[i]*k*n, i*m*n
			if m <= 2 {
				// a row or two: dot products, no packing
				Sgemm(false, false, m, n, k, 1, av[ao:ao+m*k], k, bv[bo:bo+k*n], n, 0, o[co:co+m*n], n)
				continue
			}
			linalg.PackBInto(&pb, panels, false, k, n, bv[bo:bo+k*n], n)
			linalg.SgemmPacked(false, m, 1, av[ao:ao+m*k], k, &pb, 0, o[co:co+m*n], n)
		}
	case tensor.Float64:
		matmulLoop(a, b, out, nb, m, n, k, aIdx, bIdx, tensor.Data[float64])
	case tensor.Int32:
		matmulLoop(a, b, out, nb, m, n, k, aIdx, bIdx, tensor.Data[int32])
	case tensor.Int64:
		matmulLoop(a, b, out, nb, m, n, k, aIdx, bIdx, tensor.Data[int64])
	case tensor.Uint32:
		matmulLoop(a, b, out, nb, m, n, k, aIdx, bIdx, tensor.Data[uint32])
	case tensor.Uint64:
		matmulLoop(a, b, out, nb, m, n, k, aIdx, bIdx, tensor.Data[uint64])
	default:
		return nil, ops.BadInput(0, "dtype %v not supported", a.DType)
	}
	return ar.Outputs(out), nil
}

// batchOffsets writes, for every flat index i over the batch shape, the
// flat index into src (right-aligned, broadcast where src has 1 or lacks
// the dim).
func batchOffsets(dst, src, batch []int) {
	if len(batch) == 0 {
		dst[0] = 0
		return
	}
	off := len(batch) - len(src)
	for i := range dst {
		rem, idx, stride := i, 0, 1
		for d := len(batch) - 1; d >= 0; d-- {
			p := rem % batch[d]
			rem /= batch[d]
			if j := d - off; j >= 0 {
				if src[j] != 1 {
					idx += p * stride
				}
				stride *= src[j]
			}
		}
		dst[i] = idx
	}
}

func matmulLoop[T tensor.Number](a, b, out *tensor.Tensor, nb, m, n, k int, aIdx, bIdx []int, get func(*tensor.Tensor) []T) {
	av, bv, o := get(a), get(b), get(out)
	for bi := 0; bi < nb; bi++ {
		ao, bo, co := aIdx[bi]*m*k, bIdx[bi]*k*n, bi*m*n
		for i := 0; i < m; i++ {
			for q := 0; q < k; q++ {
				x := av[ao+i*k+q]
				if x == 0 {
					continue
				}
				row := bv[bo+q*n : bo+q*n+n]
				dst := o[co+i*n : co+i*n+n]
				for j, y := range row {
					dst[j] += x * y
				}
			}
		}
	}
}
