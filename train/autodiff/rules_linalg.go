package autodiff

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops/linalg"

	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	register("MatMul", typed(gradMatMul[float32], gradMatMul[float64]), nil)
	register("Gemm", typed(gradGemm[float32], gradGemm[float64]), nil)
}

// gemmAcc computes c += op(a)·op(b) for row-major a (m×k, or k×m when ta),
// b (k×n, or n×k when tb). It is the one matrix product of the backward
// pass; float32 goes through the same loop order the compiler vectorises.
func gemmAcc[T tensor.Float](ta, tb bool, m, n, k int, a, b, c []T) {
	lda, ldb := k, n
	if ta {
		lda = m
	}
	if tb {
		ldb = k
	}
	if a32, ok := any(a).([]float32); ok {
		linalg.Sgemm(ta, tb, m, n, k, 1, a32, lda, any(b).([]float32), ldb, 1, any(c).([]float32), n)
		return
	}
	gemmLoop(ta, tb, m, n, k, a, lda, b, ldb, c, n)
}

func gradMatMul[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	A, B := c.In[0], c.In[1]
	as, bs := append([]int{}, A.Shape...), append([]int{}, B.Shape...)
	if len(as) == 1 {
		as = []int{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int{bs[0], 1}
	}
	m, k, n := as[len(as)-2], as[len(as)-1], bs[len(bs)-1]
	batch, err := tensor.BroadcastShapes(as[:len(as)-2], bs[:len(bs)-2])
	if err != nil {
		return nil, err
	}
	nb := prod(batch)
	aFull := bcast(data[T](A), as, append(append([]int{}, batch...), m, k))
	bFull := bcast(data[T](B), bs, append(append([]int{}, batch...), k, n))
	gy := gradOr[T](c, 0)
	if len(gy) != nb*m*n {
		return nil, fmt.Errorf("gradient has %d elements, expected %d", len(gy), nb*m*n)
	}
	out := make([]*tensor.Tensor, 2)
	if c.Need[0] {
		ga := make([]T, nb*m*k)
		for b := 0; b < nb; b++ {
			gemmAcc(false, true, m, k, n, gy[b*m*n:], bFull[b*k*n:], ga[b*m*k:(b+1)*m*k])
		}
		out[0] = like(A, sumTo(ga, append(append([]int{}, batch...), m, k), as))
	}
	if c.Need[1] {
		gb := make([]T, nb*k*n)
		for b := 0; b < nb; b++ {
			gemmAcc(true, false, k, n, m, aFull[b*m*k:], gy[b*m*n:], gb[b*k*n:(b+1)*k*n])
		}
		out[1] = like(B, sumTo(gb, append(append([]int{}, batch...), k, n), bs))
	}
	return out, nil
}

func gradGemm[T tensor.Float](c *Ctx) ([]*tensor.Tensor, error) {
	A, B := c.In[0], c.In[1]
	ta, tb := c.Attrs.Int("transA", 0) != 0, c.Attrs.Int("transB", 0) != 0
	alpha, beta := T(c.Attrs.Float("alpha", 1)), T(c.Attrs.Float("beta", 1))
	m, k := A.Shape[0], A.Shape[1]
	if ta {
		m, k = k, m
	}
	n := B.Shape[1]
	if tb {
		n = B.Shape[0]
	}
	gy := gradOr[T](c, 0)
	out := make([]*tensor.Tensor, len(c.In))
	if c.Need[0] {
		// dA = alpha·gY·op(B)ᵀ, laid out as A (transposed back when ta)
		ga := make([]T, m*k)
		gemmAcc(false, !tb, m, k, n, gy, data[T](B), ga)
		if ta {
			ga = transpose2(ga, m, k)
		}
		scale(ga, alpha)
		out[0] = like(A, ga)
	}
	if c.Need[1] {
		// dB = alpha·op(A)ᵀ·gY
		gb := make([]T, k*n)
		gemmAcc(!ta, false, k, n, m, data[T](A), gy, gb)
		if tb {
			gb = transpose2(gb, k, n)
		}
		scale(gb, alpha)
		out[1] = like(B, gb)
	}
	if len(c.In) > 2 && c.In[2] != nil && c.Need[2] {
		gc := sumTo(gy, []int{m, n}, c.In[2].Shape)
		gc = append([]T(nil), gc...)
		scale(gc, beta)
		out[2] = like(c.In[2], gc)
	}
	return out, nil
}

func transpose2[T tensor.Float](x []T, rows, cols int) []T {
	out := make([]T, len(x))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			out[j*rows+i] = x[i*cols+j]
		}
	}
	return out
}

func scale[T tensor.Float](x []T, s T) {
	if s == 1 {
		return
	}
	for i := range x {
		x[i] *= s
	}
}
