package rnn

import (
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// panelW is the number of output columns one packed panel holds.
const panelW = 4

// packed is a weight matrix B [n, k] (row-major, the ONNX W/R layout) stored
// as panels of panelW rows interleaved element by element, so that the
// multiply kernel streams one contiguous array: data[q*k+p][j] =
// B[q*panelW+j, p]. Rows past n are zero.
type packed[T tensor.Float] struct {
	n, k int
	data [][panelW]T
	// pb is the same matrix packed for the SIMD kernels of ops/linalg
	// (when is32); float32 products go there, float64 through the
	// portable loop. A value, so packing into arena scratch allocates
	// nothing.
	pb   linalg.PackedB
	is32 bool
}

// packRows packs rows [r0, r0+n) of the row-major matrix b with k columns,
// into scratch from a (nil: fresh memory; float64 always fresh).
func packRows[T tensor.Float](a *ops.Arena, b []T, r0, n, k int) packed[T] {
	if b32, ok := any(b).([]float32); ok {
		p := packed[T]{n: n, k: k, is32: true}
		linalg.PackBInto(&p.pb, a.Float32s(linalg.PackedSize(k, n)), true, k, n, b32[r0*k:], k)
		return p
	}
	np := (n + panelW - 1) / panelW
	out := make([][panelW]T, np*k)
	for q := 0; q < np; q++ {
		dst := out[q*k : (q+1)*k]
		for j := 0; j < panelW; j++ {
			r := q*panelW + j
			if r >= n {
				break
			}
			src := b[(r0+r)*k : (r0+r+1)*k]
			for p, v := range src {
				dst[p][j] = v
			}
		}
	}
	return packed[T]{n: n, k: k, data: out}
}

// rowBlock bounds the rows of A one pass over the panels touches, keeping
// that block of A in cache while every panel streams past it.
const rowBlock = 64

// gemmNT computes C[m, n] = A[m, k] · Bᵀ (+ bias[j] when bias is non-nil),
// overwriting C. A has row stride lda, C row stride ldc; B is packed. work
// is the float32 GEMM's A-panel scratch (linalg.WorkSize(m, k)).
func gemmNT[T tensor.Float](m int, a []T, lda int, b *packed[T], bias []T, c []T, ldc int, work []float32) {
	n, k := b.n, b.k
	if m == 0 || n == 0 {
		return
	}
	if b.is32 {
		a32, c32 := any(a).([]float32), any(c).([]float32)
		var bias32 []float32
		if bias != nil {
			bias32 = any(bias).([]float32)
		}
		// per row block of the product, so the block of C the bias was
		// just copied into is still in cache when the tiles add to it
		for i0 := 0; i0 < m; i0 += linalg.RowBlock {
			mb := min(linalg.RowBlock, m-i0)
			for i := i0; i < i0+mb; i++ {
				row := c32[i*ldc : i*ldc+n]
				if bias32 != nil {
					copy(row, bias32[:n])
				} else {
					clear(row)
				}
			}
			linalg.SgemmPackedWork(false, mb, 1, a32[i0*lda:], lda, &b.pb, 1, c32[i0*ldc:], ldc, work)
		}
		return
	}
	np := (n + panelW - 1) / panelW
	for i0 := 0; i0 < m; i0 += rowBlock {
		i1 := min(i0+rowBlock, m)
		for q := 0; q < np; q++ {
			panel := b.data[q*k : (q+1)*k]
			j0 := q * panelW
			w := min(panelW, n-j0)
			var z0, z1, z2, z3 T
			if bias != nil {
				bb := bias[j0 : j0+w]
				z0 = bb[0]
				if w > 1 {
					z1 = bb[1]
				}
				if w > 2 {
					z2 = bb[2]
				}
				if w > 3 {
					z3 = bb[3]
				}
			}
			// One row at a time: four accumulators, the A element and a
			// temporary fit the registers; wider blocks make the Go
			// compiler spill and run slower.
			for i := i0; i < i1; i++ {
				a0 := a[i*lda : i*lda+k]
				pp := panel[:len(a0)]
				c0, c1, c2, c3 := z0, z1, z2, z3
				for p, x := range a0 {
					bw := &pp[p]
					c0 += x * bw[0]
					c1 += x * bw[1]
					c2 += x * bw[2]
					c3 += x * bw[3]
				}
				store4(c[i*ldc+j0:], w, c0, c1, c2, c3)
			}
		}
	}
}

func store4[T tensor.Float](c []T, w int, v0, v1, v2, v3 T) {
	if w == 4 {
		c = c[:4]
		c[0], c[1], c[2], c[3] = v0, v1, v2, v3
		return
	}
	c[0] = v0
	if w > 1 {
		c[1] = v1
	}
	if w > 2 {
		c[2] = v2
	}
}
