package linalg

import "fmt"

// Packing B a block of rows at a time: a product whose right-hand matrix
// is produced row block by row block (the gate gradients of a recurrent
// backward pass, one time step after another) packs each block while it
// is still in cache, instead of packing the whole matrix from memory
// afterwards.

// PackBRowsInit makes p an unfilled k×n packed matrix over buf (at least
// PackedSize(k, n) elements); PackBRows then fills it. Nothing is cleared:
// every row must be written before p is multiplied.
func PackBRowsInit(p *PackedB, buf []float32, k, n int) {
	np := (n + nr - 1) / nr
	*p = PackedB{K: k, N: n, panels: buf[:np*k*nr]}
}

// PackBRows writes rows [q0, q0+kk) of B (row-major, kk×n, leading
// dimension ldb, the block's first row at b[0]) into p, zeroing the
// padding columns of the last panel.
func PackBRows(p *PackedB, q0, kk int, b []float32, ldb int) {
	n := p.N
	if q0 < 0 || kk < 0 || q0+kk > p.K {
		panic("linalg: PackBRows: rows out of range")
	}
	if kk == 0 {
		return
	}
	_ = b[(kk-1)*ldb+n-1]
	np := (n + nr - 1) / nr
	for j := 0; j < np; j++ {
		c0 := j * nr
		cols := min(nr, n-c0)
		dst := p.panels[j*p.K*nr+q0*nr : j*p.K*nr+(q0+kk)*nr]
		if cols == nr {
			// four 16-byte array copies a row, each one SSE move (copy's
			// call, and the memmove call a 64-byte array copy compiles
			// to, cost as much as the move at this size)
			for q := 0; q < kk; q++ {
				d, s := dst[q*nr:q*nr+nr], b[q*ldb+c0:q*ldb+c0+nr]
				*(*[4]float32)(d) = *(*[4]float32)(s)
				*(*[4]float32)(d[4:]) = *(*[4]float32)(s[4:])
				*(*[4]float32)(d[8:]) = *(*[4]float32)(s[8:])
				*(*[4]float32)(d[12:]) = *(*[4]float32)(s[12:])
			}
			continue
		}
		for q := 0; q < kk; q++ {
			d := dst[q*nr : q*nr+nr]
			copy(d, b[q*ldb+c0:q*ldb+c0+cols])
			clear(d[cols:])
		}
	}
}

// Packing A a column at a time: the left-hand matrix of a weight gradient,
// zᵀ with z = [H | X | 1] one row per step and batch row, is transposed;
// packing it for the tiles (packA's transposed case) strides through z
// after the fact. A caller that lays out z anyway writes each of its rows
// straight into the packed form (PackAColumn) and multiplies with
// SgemmPackedA, which packs nothing.

// PackedASize is the number of float32s an m×k left-hand matrix packed by
// PackAColumn occupies.
func PackedASize(m, k int) int { return m * k }

// PackAColumn writes column q of an m×k left-hand matrix A (col, m values)
// into dst (at least PackedASize(m, k)), laid out as SgemmPackedA reads
// it: packA's layout, full blocks of 6 rows interleaved, then each
// leftover row as a contiguous k-vector.
func PackAColumn(dst []float32, m, k, q int, col []float32) {
	if q < 0 || q >= k || len(col) < m || len(dst) < m*k {
		panic("linalg: PackAColumn: column out of range or operands too short")
	}
	full := m / mr
	for i := 0; i < full; i++ {
		// a 16- and an 8-byte array move, each one load and one store (a
		// 24-byte array move compiles to a memmove call)
		d, s := dst[i*mr*k+q*mr:i*mr*k+q*mr+mr], col[i*mr:i*mr+mr]
		*(*[4]float32)(d) = *(*[4]float32)(s)
		*(*[2]float32)(d[4:]) = *(*[2]float32)(s[4:])
	}
	d := dst[full*mr*k:]
	for r := full * mr; r < m; r++ {
		d[(r-full*mr)*k+q] = col[r]
	}
}

// SgemmPackedA adds A·B to C (m×n, row-major, leading dimension ldc), for
// an m×k A that PackAColumn packed and a k×n B packed by PackB or
// PackBRows. Each element of C gets the sum SgemmPacked gives for the same
// operands when k ≤ 384 (one k block).
func SgemmPackedA(m int, a []float32, pb *PackedB, c []float32, ldc int) {
	n, k := pb.N, pb.K
	if m == 0 || n == 0 || k == 0 {
		return
	}
	if len(a) < m*k || ldc < n || len(c) < (m-1)*ldc+n {
		panic(fmt.Sprintf("linalg: SgemmPackedA of %d×%d×%d: A of %d, C of %d elements (ldc %d)", m, n, k, len(a), len(c), ldc))
	}
	full := m / mr
	np := (n + nr - 1) / nr
	for j := 0; j < np; j++ {
		bp := pb.panel(j, 0, k)
		c0 := j * nr
		cols := min(nr, n-c0)
		for i := 0; i < full; i++ {
			tileKernel(mr, k, a[i*mr*k:(i+1)*mr*k], 0, true, bp, c[i*mr*ldc+c0:], ldc, cols)
		}
		if rem := m - full*mr; rem > 0 {
			tileKernel(rem, k, a[full*mr*k:], k, false, bp, c[full*mr*ldc+c0:], ldc, cols)
		}
	}
}
