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
	ops.Register("", "Gemm", 1, newGemm)
	ops.Register("", "MatMul", 1, func(c *ops.Config) (ops.Op, error) { return &linMatMul{}, nil })
}

type linGemm struct {
	transA, transB bool
	alpha, beta    float32
	packs          packCache
}

func newGemm(c *ops.Config) (ops.Op, error) {
	g := &linGemm{
		transA: c.Attrs.Int("transA", 0) != 0, transB: c.Attrs.Int("transB", 0) != 0,
		alpha: c.Attrs.Float("alpha", 1), beta: c.Attrs.Float("beta", 1),
	}
	if c.Opset < 7 && c.Attrs.Has("broadcast") && c.Attrs.Int("broadcast", 0) == 0 {
		return nil, ops.BadAttr("broadcast", "Gemm without broadcast (opset < 7) is not supported")
	}
	return g, nil
}

func (g *linGemm) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if a.Rank() != 2 || b.Rank() != 2 {
		return nil, fmt.Errorf("Gemm needs 2-D A and B, got %v and %v", a.Shape, b.Shape)
	}
	if a.DType != b.DType {
		return nil, ops.BadInput(1, "dtype %v differs from A's %v", b.DType, a.DType)
	}
	m, k := a.Shape[0], a.Shape[1]
	if g.transA {
		m, k = k, m
	}
	kb, n := b.Shape[0], b.Shape[1]
	if g.transB {
		kb, n = n, kb
	}
	if kb != k {
		return nil, fmt.Errorf("Gemm inner dimensions differ: op(A) is %d×%d, op(B) is %d×%d", m, k, kb, n)
	}
	out, err := tensor.New(a.DType, []int{m, n})
	if err != nil {
		return nil, err
	}
	var cIn *tensor.Tensor
	if len(in) > 2 && in[2] != nil && g.beta != 0 {
		cIn = in[2]
		if cIn.DType != a.DType {
			return nil, ops.BadInput(2, "dtype %v differs from A's %v", cIn.DType, a.DType)
		}
		if bs, err := tensor.BroadcastShapes(cIn.Shape, []int{m, n}); err != nil || cIn.Rank() > 2 || !tensor.SameShape(bs, []int{m, n}) {
			return nil, ops.BadInput(2, "C of shape %v does not broadcast to %d×%d", cIn.Shape, m, n)
		}
	}
	switch a.DType {
	case tensor.Float32:
		c := out.Float32s()
		beta := float32(0)
		if cIn != nil {
			fillBroadcast(c, cIn.Float32s(), cIn.Shape, m, n, g.beta)
			beta = 1
		}
		pb := g.packs.get(b, g.transB, k, n)
		linalg.SgemmPacked(g.transA, m, g.alpha, a.Float32s(), a.Shape[1], pb, beta, c, n)
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
	return []*tensor.Tensor{out}, nil
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

type linMatMul struct{ packs packCache }

func (mm *linMatMul) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
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
	as, bs := a.Shape, b.Shape
	if len(as) == 1 {
		as = []int{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int{bs[0], 1}
	}
	m, k, kb, n := as[len(as)-2], as[len(as)-1], bs[len(bs)-2], bs[len(bs)-1]
	if k != kb {
		return nil, fmt.Errorf("MatMul inner dimensions differ: %v × %v (%d vs %d)", a.Shape, b.Shape, k, kb)
	}
	batch, err := tensor.BroadcastShapes(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, fmt.Errorf("MatMul batch dims: %w", err)
	}
	outShape := append(append([]int{}, batch...), m, n)
	out, err := tensor.New(a.DType, outShape)
	if err != nil {
		return nil, err
	}
	nb := 1
	for _, d := range batch {
		nb *= d
	}
	// batch offsets of A and B (broadcast over the leading dims)
	aIdx := tensor.BroadcastIndex(as[:len(as)-2], batch)
	bIdx := tensor.BroadcastIndex(bs[:len(bs)-2], batch)
	if len(batch) == 0 {
		aIdx, bIdx = []int{0}, []int{0}
	}
	switch a.DType {
	case tensor.Float32:
		av, bv, o := a.Float32s(), b.Float32s(), out.Float32s()
		// a weight shared by every batch entry is packed once and cached
		sharedB := len(bs) == 2
		var pb *linalg.PackedB
		if sharedB {
			pb = mm.packs.get(&tensor.Tensor{DType: b.DType, Shape: bs, Data: b.Data}, false, k, n)
		}
		for i := 0; i < nb; i++ {
			ao := aIdx[i] * m * k
			co := i * m * n
			if sharedB && len(as) > 2 && allContiguous(aIdx) {
				// fold the batch into the rows: one large product
				linalg.SgemmPacked(false, nb*m, 1, av, k, pb, 0, o, n)
				break
			}
			if !sharedB {
				bo := bIdx[i] * k * n
				Sgemm(false, false, m, n, k, 1, av[ao:ao+m*k], k, bv[bo:bo+k*n], n, 0, o[co:co+m*n], n)
				continue
			}
			linalg.SgemmPacked(false, m, 1, av[ao:ao+m*k], k, pb, 0, o[co:co+m*n], n)
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
	// undo the 1-D promotions
	final := append([]int{}, batch...)
	if a.Rank() > 1 {
		final = append(final, m)
	}
	if b.Rank() > 1 {
		final = append(final, n)
	}
	out.Shape = final
	return []*tensor.Tensor{out}, nil
}

func allContiguous(idx []int) bool {
	for i, v := range idx {
		if v != i {
			return false
		}
	}
	return true
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
