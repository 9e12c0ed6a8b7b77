// Package linalg holds mtlrun's dense float32 kernels: a packed SGEMM whose
// register tiles (6×16 blocks, 1–5-row leftover tiles, masked tiles for a
// partial column panel; AVX2 also 4×24 tiles spanning two panels) are Go
// assembly for AVX2+FMA and AVX-512,
// generated from one source by internal/asmgen and chosen at run time
// (KernelSet, MTLRUN_KERNELS), plus NEON tiles for arm64
// (internal/neongen, with the activations, cells and ops/nn's bias/Relu
// epilogues), with a pure-Go fallback that the `purego`
// build tag forces; vector sigmoid and tanh; and fused LSTM/GRU/RNN time
// steps (cell.go: product, gates and state update per tile of hidden
// units, every SIMD set). Op families (ops/nn, ops/rnn) call it; it
// knows nothing of tensors or graphs.
package linalg

import (
	"fmt"
	"sync"
)

// aPool recycles A-panel buffers so steady-state calls allocate nothing.
var aPool = sync.Pool{New: func() any { return new([]float32) }}

// Panel geometry: the micro-kernels compute mr×nr tiles of C from an A
// panel (k×mr, interleaved) and a B panel (k×nr, interleaved); the rows
// left over after the mr-row blocks go through one tile sized to them.
const (
	mr = 6
	nr = 16
	kc = 384 // k-block: an A and a B panel block stay in L1/L2
	// RowBlock is the row block of a product (a multiple of mr): its A block
	// (RowBlock×kc: 221 KB) stays in L2 while every column panel of B passes, so
	// a tall A (all time steps of a sequence at once) is read from memory
	// once, not once per 16 columns. Callers that prepare C (a bias copy)
	// do it per RowBlock rows too, so C is still in cache when the tiles add to it.
	RowBlock = 144
	// TileRows is a row count that whole tiles of every kernel set fill (the
	// 6-row blocks, AVX2's 4-row group tiles): a caller cutting a product
	// into row blocks cuts at multiples of it.
	TileRows = 12
)

// PackedB is a right-hand matrix laid out in k×16 column panels (zero
// padded), ready for the micro-kernels. Pack constant weights once and
// reuse them across calls.
type PackedB struct {
	K, N   int
	panels []float32 // ceil(N/16) panels of K×16
}

// PackB packs op(B) (k×n; B is n×k when transB) with leading dimension ldb.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	p := &PackedB{}
	PackBInto(p, make([]float32, PackedSize(k, n)), transB, k, n, b, ldb)
	return p
}

// PackedSize is the number of float32s a packed k×n matrix occupies.
func PackedSize(k, n int) int { return (n + nr - 1) / nr * k * nr }

// PackBInto is PackB into a caller's buffer of at least PackedSize(k, n)
// elements (arena scratch, say), so packing per call allocates nothing.
// p keeps a reference to buf.
func PackBInto(p *PackedB, buf []float32, transB bool, k, n int, b []float32, ldb int) {
	np := (n + nr - 1) / nr
	*p = PackedB{K: k, N: n, panels: buf[:np*k*nr]}
	clear(p.panels) // the padding columns must be zero
	for j := 0; j < np; j++ {
		dst := p.panels[j*k*nr : (j+1)*k*nr]
		c0 := j * nr
		cols := min(nr, n-c0)
		if !transB {
			for q := 0; q < k; q++ {
				copy(dst[q*nr:q*nr+cols], b[q*ldb+c0:q*ldb+c0+cols])
			}
		} else {
			for c := 0; c < cols; c++ {
				row := b[(c0+c)*ldb : (c0+c)*ldb+k]
				for q, v := range row {
					dst[q*nr+c] = v
				}
			}
		}
	}
}

// panel returns the k-rows [q0, q0+kk) of column panel j.
func (p *PackedB) panel(j, q0, kk int) []float32 {
	base := j*p.K*nr + q0*nr
	return p.panels[base : base+kk*nr]
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices:
// op(A) is m×k (A is k×m when transA), op(B) is k×n (B is n×k when transB).
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	SgemmPacked(transA, m, alpha, a, lda, PackB(transB, k, n, b, ldb), beta, c, ldc)
}

// SgemmPacked is Sgemm with a pre-packed B.
func SgemmPacked(transA bool, m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int) {
	SgemmPackedWork(transA, m, alpha, a, lda, pb, beta, c, ldc, nil)
}

// WorkSize is the scratch SgemmPackedWork needs for an m-row A with k
// columns (the packed A panels).
func WorkSize(m, k int) int { return ((m + mr - 1) / mr) * mr * min(k, kc) }

// SgemmPackedWork is SgemmPacked with the A-panel scratch supplied by the
// caller (at least WorkSize(m, k) elements; nil takes it from a pool), so a
// kernel with an arena allocates nothing, not even after a GC empties the
// pool.
func SgemmPackedWork(transA bool, m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int, work []float32) {
	sgemmWork(transA, m, alpha, a, lda, pb, beta, c, ldc, work, nil)
}

// sgemmWork is SgemmPackedWork, then epi (if not nil) over C: per column
// strip right after the strip's last k block where the tiles allow it,
// else over all of C at the end.
func sgemmWork(transA bool, m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int, work []float32, epi *Epilogue) {
	n, k := pb.N, pb.K
	if m == 0 || n == 0 {
		return
	}
	if ldc < n || len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("linalg: C of %d elements (ldc %d) cannot hold %d×%d", len(c), ldc, m, n))
	}
	if m > RowBlock {
		for i0 := 0; i0 < m; i0 += RowBlock {
			mb := min(RowBlock, m-i0)
			ai := a[i0:] // A is k×m: the block's columns
			if !transA {
				ai = a[i0*lda:]
			}
			sgemmWork(transA, mb, alpha, ai, lda, pb, beta, c[i0*ldc:], ldc, work, epi)
		}
		return
	}
	// the group tiles can overwrite C instead of clearing it first
	overwrite := beta == 0 && k > 0 && alpha == 1 && !transA && packInPlace() && groupsTake(m) && m > 1
	if !overwrite {
		scaleC(m, n, beta, c, ldc)
	}
	if k == 0 || alpha == 0 {
		epi.apply(c, ldc, m, 0, n)
		return
	}
	if m == 1 && alpha == 1 && !transA && k <= kc {
		// a single row (the batch-1 recurrence) needs no packing: the
		// one-row kernel reads A directly
		gemv(k, n, a[:k], pb, c[:n])
		epi.apply(c, ldc, 1, 0, n)
		return
	}
	np := (n + nr - 1) / nr
	if !transA && alpha == 1 && packInPlace() {
		if sgemmGroups(m, n, k, a, lda, pb, c, ldc, epi, overwrite) {
			return // AVX2's 4×24 tiles
		}
		// the tiles read A's rows where they are
		for q0 := 0; q0 < k; q0 += kc {
			kk := min(kc, k-q0)
			for j := 0; j < np; j++ {
				bp := pb.panel(j, q0, kk)
				c0 := j * nr
				cols := min(nr, n-c0)
				for i := 0; i+mr <= m; i += mr {
					tileKernel(mr, kk, a[i*lda+q0:], lda, false, bp, c[i*ldc+c0:], ldc, cols)
				}
				if full := m / mr * mr; full < m {
					tileKernel(m-full, kk, a[full*lda+q0:], lda, false, bp, c[full*ldc+c0:], ldc, cols)
				}
				if q0+kk == k {
					epi.apply(c, ldc, m, c0, cols)
				}
			}
		}
		return
	}
	need := WorkSize(m, k)
	var apack []float32
	if len(work) >= need {
		apack = work[:need]
	} else {
		bufp := aPool.Get().(*[]float32)
		if cap(*bufp) < need {
			*bufp = make([]float32, need)
		}
		apack = (*bufp)[:need]
		defer aPool.Put(bufp)
	}
	for q0 := 0; q0 < k; q0 += kc {
		kk := min(kc, k-q0)
		packA(transA, m, kk, q0, alpha, a, lda, apack)
		full := m / mr
		for j := 0; j < np; j++ {
			bp := pb.panel(j, q0, kk)
			c0 := j * nr
			cols := min(nr, n-c0)
			for i := 0; i < full; i++ {
				tileKernel(mr, kk, apack[i*mr*kk:(i+1)*mr*kk], 0, true, bp, c[i*mr*ldc+c0:], ldc, cols)
			}
			// leftover rows, one after another in the A panel, in one tile
			// sized to them
			if rem := m - full*mr; rem > 0 {
				tileKernel(rem, kk, apack[full*mr*kk:], kk, false, bp, c[full*mr*ldc+c0:], ldc, cols)
			}
			if q0+kk == k {
				epi.apply(c, ldc, m, c0, cols)
			}
		}
	}
}

func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// packA lays out alpha·op(A)[:, q0:q0+kk]: full row blocks interleaved as
// kk×mr panels, then leftover rows each as a contiguous kk-vector (the
// one-row kernel reads them as they are, so they need no zero padding).
// It is pure data movement plus, when alpha ≠ 1, one float32 multiply per
// element, so its output is bit for bit that of the obvious loop
// (packARef in the tests); alpha == 1 skips the multiply, which changes
// nothing since 1·v == v. With AVX-512 the full blocks at alpha == 1 are
// transposed by assembly (packBlock6, pack_amd64.s).
func packA(transA bool, m, kk, q0 int, alpha float32, a []float32, lda int, dst []float32) {
	if kk <= 0 {
		return
	}
	full := m / mr
	dst = dst[:m*kk] // one check for the whole output
	if transA {
		packAT(full, m, kk, q0, alpha, a, lda, dst)
		return
	}
	for i := 0; i < full; i++ {
		base := i*mr*lda + q0
		d := dst[i*mr*kk : (i+1)*mr*kk]
		if alpha == 1 && packBlock6(d, a[base:], lda, kk) {
			continue
		}
		packBlock6Go(d, a[base:], lda, kk, alpha)
	}
	// leftover rows are contiguous in A as in the panel: a copy (or one
	// scaling pass) per row
	d := dst[full*mr*kk:]
	for r := full * mr; r < m; r++ {
		row := a[r*lda+q0:][:kk]
		if alpha == 1 {
			copy(d[:kk], row)
		} else {
			out := d[:kk]
			for q, v := range row {
				out[q] = alpha * v
			}
		}
		d = d[kk:]
	}
}

// packBlock6Go packs one 6-row block, d[q*6+r] = alpha·a[r*lda+q] for
// q < kk, in Go. It is a function of its own so the compiler keeps its
// few values in registers (written inline in packA, beside the call to
// the assembly, its alpha ≠ 1 loop ran ~1.5× slower).
func packBlock6Go(d, a []float32, lda, kk int, alpha float32) {
	// reslice the six rows to kk once: the loops then index them without
	// bounds checks (q < kk == len(rᵢ)), and d is walked six at a time so
	// its checks fold into the loop condition
	r0 := a[:kk]
	r1 := a[lda:][:kk]
	r2 := a[2*lda:][:kk]
	r3 := a[3*lda:][:kk]
	r4 := a[4*lda:][:kk]
	r5 := a[5*lda:][:kk]
	if alpha == 1 {
		for q := 0; q < kk && len(d) >= mr; q++ {
			d[0], d[1], d[2], d[3], d[4], d[5] = r0[q], r1[q], r2[q], r3[q], r4[q], r5[q]
			d = d[mr:]
		}
		return
	}
	for q := 0; q < kk && len(d) >= mr; q++ {
		d[0], d[1], d[2], d[3], d[4], d[5] = alpha*r0[q], alpha*r1[q], alpha*r2[q], alpha*r3[q], alpha*r4[q], alpha*r5[q]
		d = d[mr:]
	}
}

// packAT is packA for a transposed A (k×m): the six values a panel row
// wants, op(A)[i*6:i*6+6, q], are contiguous in A's row q, so each panel
// row is one six-element copy (or six multiplies).
func packAT(full, m, kk, q0 int, alpha float32, a []float32, lda int, dst []float32) {
	for i := 0; i < full; i++ {
		d := dst[i*mr*kk : (i+1)*mr*kk]
		off := q0*lda + i*mr
		for q := 0; q < kk && len(d) >= mr; q++ {
			s := a[off : off+mr : off+mr]
			if alpha == 1 {
				d[0], d[1], d[2], d[3], d[4], d[5] = s[0], s[1], s[2], s[3], s[4], s[5]
			} else {
				d[0], d[1], d[2], d[3], d[4], d[5] = alpha*s[0], alpha*s[1], alpha*s[2], alpha*s[3], alpha*s[4], alpha*s[5]
			}
			d = d[mr:]
			off += lda
		}
	}
	// a leftover row of op(A) is a column of A: strided reads
	d := dst[full*mr*kk:]
	for r := full * mr; r < m; r++ {
		out := d[:kk]
		off := q0*lda + r
		for q := range out {
			out[q] = alpha * a[off]
			off += lda
		}
		d = d[kk:]
	}
}

// tileGo, the portable tile kernel, is in sgemm_go.go.

// gemv computes c[:n] += a[:k]·B for packed B with k ≤ kc.
func gemv(k, n int, a []float32, pb *PackedB, c []float32) {
	np := (n + nr - 1) / nr
	for j := 0; j < np; j++ {
		c0 := j * nr
		tileKernel(1, k, a, k, false, pb.panel(j, 0, k), c[c0:], 0, min(nr, n-c0))
	}
}
