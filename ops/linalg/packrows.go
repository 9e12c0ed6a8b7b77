package linalg

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
