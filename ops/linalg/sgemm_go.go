package linalg

import "unsafe"

// The pure-Go tile kernel: what every kernel set falls back to, and all
// there is on riscv64, ppc64le, s390x, wasm and with -tags purego.
//
// A tile (up to 6 rows × 16 columns of C) is computed in small register
// blocks whose accumulators are plain local variables, so the compiler keeps
// them in registers for the whole k loop: 3 rows × 3 columns (nine
// accumulators, six loads per nine multiply-adds) for the interleaved 6-row
// panel and for groups of three A rows, 16 columns going 3+3+3+3+2+2 (a
// block reads at most one column past cols, inside the zero-padded
// panel; writes land in a local), 2 × 4, 2 × 2 and 1 × 4 for the rows left
// over; a full interleaved tile goes in twelve 2 × 4 blocks (fullTile). 3 × 3
// is the largest block the Go compiler allocates without spilling on amd64
// (15 usable XMM registers: nine sums, three A values, one B value and one
// product; the two-operand MULSS overwrites its destination, so a product
// needs a register of its own): 3 × 4 spills and runs slower than the old
// kernel. The blocks walk A and B by unsafe pointers with one k counter,
// two k steps per iteration; the caller checks by slicing that the k steps
// lie inside both slices. The blocks' sums gather in a 6×16 local and reach
// C row by row; k = 1 skips the blocks (oneK).
//
// Numerics: every element is summed as before — an accumulator starting
// at 0, a·b added in k order, then added to C — whatever block computes
// it, so a row's result never depends on the rows or columns around it,
// and the result is that of the one-accumulator loop bit for bit (on
// architectures where the compiler fuses a·b + s into one FMA it does so
// in every block alike).

// tileGo computes c[r·ldc+j] += Σ_q A(q, r)·b[q·16+j] for r < rows,
// j < cols ≤ 16, where A(q, r) is a[q·6+r] for an interleaved 6-row
// panel (inter) and a[r·lda+q] otherwise (the tileKernel contract). b holds
// k rows of 16 (zero padded past cols), so blocks may read a column past
// cols; they never write one.
func tileGo(rows, k int, a []float32, lda int, inter bool, b, c []float32, ldc, cols int) {
	if k <= 0 || rows <= 0 || cols <= 0 {
		return
	}
	b = b[:k*nr]
	rows = min(rows, mr)
	// the blocks' sums gather here and go to C row by row at the end: C is
	// read and written once per element in row order, as the old
	// one-accumulator kernel did (writing it two columns at a time from
	// each block ran 3× slower when C streams from memory, k = 1)
	if k == 1 {
		oneK(rows, a, lda, inter, b, c, ldc, cols)
		return
	}
	if inter && rows == mr && cols == nr && k >= directK {
		fullTile(k, a[:k*mr], b, c[:(mr-1)*ldc+nr], ldc)
		return
	}
	var acc [mr * nr]float32
	if inter {
		// an interleaved panel holds all six rows, so a partial one (never
		// passed by SgemmPackedWork) still goes in 3-row blocks, the rows
		// past rows landing in the local unused: every element is summed
		// by the same block loops, fused or not alike
		a = a[:k*mr]
		for r := 0; r < rows; r += 3 {
			for j := 0; j < cols; {
				if n := cols - j; n >= 3 && n != 4 {
					s := (*[2*nr + 3]float32)(acc[r*nr+j:])
					s[0], s[1], s[2], s[nr], s[nr+1], s[nr+2], s[2*nr], s[2*nr+1], s[2*nr+2] = inter3x3(k, &a[r], &b[j])
					j += 3
					continue
				}
				s := (*[2*nr + 2]float32)(acc[r*nr+j:])
				s[0], s[1], s[nr], s[nr+1], s[2*nr], s[2*nr+1] = inter3x2(k, &a[r], &b[j])
				j += 2
			}
		}
	} else {
		// threes, then twos; four rows go 2 + 2, so a single row (the
		// costliest per element: five loads per four multiply-adds) is
		// left only when rows is 1 (mod 3) and not 4
		r := 0
		for ; r+3 <= rows && rows-r != 4; r += 3 {
			a0 := a[r*lda:][:2*lda+k] // the three rows, checked once
			for j := 0; j < cols; {
				if n := cols - j; n >= 3 && n != 4 {
					s := (*[2*nr + 3]float32)(acc[r*nr+j:])
					s[0], s[1], s[2], s[nr], s[nr+1], s[nr+2], s[2*nr], s[2*nr+1], s[2*nr+2] = rows3x3(k, lda, &a0[0], &b[j])
					j += 3
					continue
				}
				s := (*[2*nr + 2]float32)(acc[r*nr+j:])
				s[0], s[1], s[nr], s[nr+1], s[2*nr], s[2*nr+1] = rows3x2(k, lda, &a0[0], &b[j])
				j += 2
			}
		}
		for ; r+2 <= rows; r += 2 {
			a0 := a[r*lda:][:lda+k] // both rows
			for j := 0; j < cols; {
				if cols-j > 2 {
					s := (*[nr + 4]float32)(acc[r*nr+j:])
					s[0], s[1], s[2], s[3], s[nr], s[nr+1], s[nr+2], s[nr+3] = rows2x4(k, lda, &a0[0], &b[j])
					j += 4
					continue
				}
				s := (*[nr + 2]float32)(acc[r*nr+j:])
				s[0], s[1], s[nr], s[nr+1] = rows2x2(k, lda, &a0[0], &b[j])
				j += 2
			}
		}
		if r < rows {
			a0 := a[r*lda:][:k]
			for j := 0; j < cols; j += 4 {
				s := (*[4]float32)(acc[r*nr+j:])
				s[0], s[1], s[2], s[3] = row1x4(k, &a0[0], &b[j])
			}
		}
	}
	for r := 0; r < rows; r++ {
		cr, ar := c[r*ldc:][:cols], acc[r*nr:][:cols]
		for j := range cr {
			cr[j] += ar[j]
		}
	}
}

// directK is the depth from which a full interleaved tile adds each
// block's sums straight into C (fullTile): the block's k loop then
// outweighs C's scattered accesses, and the clearing, storing and reloading
// of the 6×16 local go.
const directK = 8

// fullTile is tileGo for a whole interleaved 6×16 tile with k ≥ directK:
// twelve 2×4 blocks (inter2x4: eight sums, as fast as 3×3 at GOAMD64=v1
// and faster than the 3×3 + 3×2 mix where a·b + s fuses, since 3×2's six
// sums cannot hide the FMA latency), each adding its sums to C itself, so
// the elements' sums are those of the gathered path bit for bit.
func fullTile(k int, a, b, c []float32, ldc int) {
	for r := 0; r < mr; r += 2 {
		c0, c1 := c[r*ldc:][:nr], c[(r+1)*ldc:][:nr]
		ar := &a[r]
		for j := 0; j < nr; j += 4 {
			s00, s01, s02, s03, s10, s11, s12, s13 := inter2x4(k, ar, &b[j])
			d0, d1 := (*[4]float32)(c0[j:]), (*[4]float32)(c1[j:])
			d0[0] += s00
			d0[1] += s01
			d0[2] += s02
			d0[3] += s03
			d1[0] += s10
			d1[1] += s11
			d1[2] += s12
			d1[3] += s13
		}
	}
}

// oneK is tileGo for k = 1 (a one-feature input projection): each C
// element gets one product, added straight to C row by row. The blocks'
// per-call cost (16 calls of six results per tile) outweighs a single k
// step, and the 6×16 local would be cleared, written and read again for
// it (the old shortK loop through the local took 6 % of the seed LSTM at
// batch 64). The product is rounded before the add (the conversion keeps
// compilers that fuse a·b + s from fusing it), as the blocks' 0 + a·b is.
func oneK(rows int, a []float32, lda int, inter bool, b, c []float32, ldc, cols int) {
	for r := 0; r < rows; r++ {
		var av float32
		if inter {
			av = a[r]
		} else {
			av = a[r*lda]
		}
		cr := c[r*ldc:][:cols]
		bq := b[:len(cr)]
		for j := range cr {
			cr[j] += float32(av * bq[j])
		}
	}
}

// The blocks below take raw pointers to their first A and B elements and
// k ≥ 1, the number of steps; the caller has checked (by slicing) that k
// steps lie inside both slices. Walking pointers with unsafe.Add leaves the
// k loop with one counter and constant offsets: no bounds checks, no
// re-slicing (whose length and capacity updates, and the masking that
// keeps a zero-length slice's pointer in bounds, were a third of the old
// loop's instructions). A pointer is only advanced while steps remain, so
// it never points past its slice (checkptr holds under -race).
//
// Each loop is a do-while: the step for an odd k first, then two k steps
// per iteration and the exit test before the pointers advance. That shape
// matters to the compiler, not to the arithmetic: the accumulators' phis
// then sit in the loop's own block, so the adds feeding them count as
// used in that block and the scheduler keeps them in source order next to
// their multiplies; with the test at the top (a separate header block) it
// hoisted every load and multiply above all the adds, so all the products
// were live at once (a 3×3 block spilled, 3×2 ran ~10 % slower). Source
// order here interleaves loads, multiplies and adds so few registers are
// live: a 3×3 block needs nine accumulators, three A values, one B value
// and one product (14 of amd64's 15 usable XMM registers).

// inter3x3 returns Σ_q a[q·6+r]·b[q·16+j] for r, j < 3 over k steps of an
// interleaved 6-row panel (a and b point at the block's first row and
// column): nine accumulators, six loads per nine multiply-adds.
func inter3x3(k int, a, b *float32) (s00, s01, s02, s10, s11, s12, s20, s21, s22 float32) {
	pa, pb := unsafe.Pointer(a), unsafe.Pointer(b)
	if k&1 != 0 {
		a0 := *(*float32)(pa)
		a1 := *(*float32)(unsafe.Add(pa, 4))
		a2 := *(*float32)(unsafe.Add(pa, 8))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		s20 += a2 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		s21 += a2 * b1
		b2 := *(*float32)(unsafe.Add(pb, 8))
		s02 += a0 * b2
		s12 += a1 * b2
		s22 += a2 * b2
		if k--; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 4*mr), unsafe.Add(pb, 4*nr)
	}
	for {
		a0 := *(*float32)(pa)
		a1 := *(*float32)(unsafe.Add(pa, 4))
		a2 := *(*float32)(unsafe.Add(pa, 8))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		s20 += a2 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		s21 += a2 * b1
		b2 := *(*float32)(unsafe.Add(pb, 8))
		s02 += a0 * b2
		s12 += a1 * b2
		s22 += a2 * b2
		a0 = *(*float32)(unsafe.Add(pa, 4*mr))
		a1 = *(*float32)(unsafe.Add(pa, 4*mr+4))
		a2 = *(*float32)(unsafe.Add(pa, 4*mr+8))
		b0 = *(*float32)(unsafe.Add(pb, 4*nr))
		s00 += a0 * b0
		s10 += a1 * b0
		s20 += a2 * b0
		b1 = *(*float32)(unsafe.Add(pb, 4*nr+4))
		s01 += a0 * b1
		s11 += a1 * b1
		s21 += a2 * b1
		b2 = *(*float32)(unsafe.Add(pb, 4*nr+8))
		s02 += a0 * b2
		s12 += a1 * b2
		s22 += a2 * b2
		if k -= 2; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 8*mr), unsafe.Add(pb, 8*nr)
	}
}

// inter3x2 is inter3x3 for two columns (the last four or two of a panel).
func inter3x2(k int, a, b *float32) (s00, s01, s10, s11, s20, s21 float32) {
	pa, pb := unsafe.Pointer(a), unsafe.Pointer(b)
	if k&1 != 0 {
		a0 := *(*float32)(pa)
		a1 := *(*float32)(unsafe.Add(pa, 4))
		a2 := *(*float32)(unsafe.Add(pa, 8))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		s20 += a2 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		s21 += a2 * b1
		if k--; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 4*mr), unsafe.Add(pb, 4*nr)
	}
	for {
		a0 := *(*float32)(pa)
		a1 := *(*float32)(unsafe.Add(pa, 4))
		a2 := *(*float32)(unsafe.Add(pa, 8))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		s20 += a2 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		s21 += a2 * b1
		a0 = *(*float32)(unsafe.Add(pa, 4*mr))
		a1 = *(*float32)(unsafe.Add(pa, 4*mr+4))
		a2 = *(*float32)(unsafe.Add(pa, 4*mr+8))
		b0 = *(*float32)(unsafe.Add(pb, 4*nr))
		s00 += a0 * b0
		s10 += a1 * b0
		s20 += a2 * b0
		b1 = *(*float32)(unsafe.Add(pb, 4*nr+4))
		s01 += a0 * b1
		s11 += a1 * b1
		s21 += a2 * b1
		if k -= 2; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 8*mr), unsafe.Add(pb, 8*nr)
	}
}

// rows3x3 returns Σ_q aᵣ[q]·b[q·16+j] over k steps for three rows aᵣ
// (contiguous in k, lda apart from a) and three columns (b points at the
// block's first column). One A pointer with the rows at constant offsets
// keeps the loop to two pointer updates.
func rows3x3(k, lda int, a, b *float32) (s00, s01, s02, s10, s11, s12, s20, s21, s22 float32) {
	pa, pb := unsafe.Pointer(a), unsafe.Pointer(b)
	o1, o2 := 4*lda, 8*lda
	if k&1 != 0 {
		a0, a1, a2 := *(*float32)(pa), *(*float32)(unsafe.Add(pa, o1)), *(*float32)(unsafe.Add(pa, o2))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		s20 += a2 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		s21 += a2 * b1
		b2 := *(*float32)(unsafe.Add(pb, 8))
		s02 += a0 * b2
		s12 += a1 * b2
		s22 += a2 * b2
		if k--; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 4), unsafe.Add(pb, 4*nr)
	}
	for {
		a0, a1, a2 := *(*float32)(pa), *(*float32)(unsafe.Add(pa, o1)), *(*float32)(unsafe.Add(pa, o2))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		s20 += a2 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		s21 += a2 * b1
		b2 := *(*float32)(unsafe.Add(pb, 8))
		s02 += a0 * b2
		s12 += a1 * b2
		s22 += a2 * b2
		a0, a1, a2 = *(*float32)(unsafe.Add(pa, 4)), *(*float32)(unsafe.Add(pa, o1+4)), *(*float32)(unsafe.Add(pa, o2+4))
		b0 = *(*float32)(unsafe.Add(pb, 4*nr))
		s00 += a0 * b0
		s10 += a1 * b0
		s20 += a2 * b0
		b1 = *(*float32)(unsafe.Add(pb, 4*nr+4))
		s01 += a0 * b1
		s11 += a1 * b1
		s21 += a2 * b1
		b2 = *(*float32)(unsafe.Add(pb, 4*nr+8))
		s02 += a0 * b2
		s12 += a1 * b2
		s22 += a2 * b2
		if k -= 2; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 8), unsafe.Add(pb, 8*nr)
	}
}

// rows3x2 is rows3x3 for two columns.
func rows3x2(k, lda int, a, b *float32) (s00, s01, s10, s11, s20, s21 float32) {
	pa, pb := unsafe.Pointer(a), unsafe.Pointer(b)
	o1, o2 := 4*lda, 8*lda
	if k&1 != 0 {
		a0, a1, a2 := *(*float32)(pa), *(*float32)(unsafe.Add(pa, o1)), *(*float32)(unsafe.Add(pa, o2))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		s20 += a2 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		s21 += a2 * b1
		if k--; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 4), unsafe.Add(pb, 4*nr)
	}
	for {
		a0, a1, a2 := *(*float32)(pa), *(*float32)(unsafe.Add(pa, o1)), *(*float32)(unsafe.Add(pa, o2))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		s20 += a2 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		s21 += a2 * b1
		a0, a1, a2 = *(*float32)(unsafe.Add(pa, 4)), *(*float32)(unsafe.Add(pa, o1+4)), *(*float32)(unsafe.Add(pa, o2+4))
		b0 = *(*float32)(unsafe.Add(pb, 4*nr))
		s00 += a0 * b0
		s10 += a1 * b0
		s20 += a2 * b0
		b1 = *(*float32)(unsafe.Add(pb, 4*nr+4))
		s01 += a0 * b1
		s11 += a1 * b1
		s21 += a2 * b1
		if k -= 2; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 8), unsafe.Add(pb, 8*nr)
	}
}

// rows2x2 is rows3x2 for two rows.
func rows2x2(k, lda int, a, b *float32) (s00, s01, s10, s11 float32) {
	pa, pb := unsafe.Pointer(a), unsafe.Pointer(b)
	o1 := 4 * lda
	if k&1 != 0 {
		a0, a1 := *(*float32)(pa), *(*float32)(unsafe.Add(pa, o1))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		if k--; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 4), unsafe.Add(pb, 4*nr)
	}
	for {
		a0, a1 := *(*float32)(pa), *(*float32)(unsafe.Add(pa, o1))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		a0, a1 = *(*float32)(unsafe.Add(pa, 4)), *(*float32)(unsafe.Add(pa, o1+4))
		b0 = *(*float32)(unsafe.Add(pb, 4*nr))
		s00 += a0 * b0
		s10 += a1 * b0
		b1 = *(*float32)(unsafe.Add(pb, 4*nr+4))
		s01 += a0 * b1
		s11 += a1 * b1
		if k -= 2; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 8), unsafe.Add(pb, 8*nr)
	}
}

// inter2x4 returns Σ_q a[q·6+r]·b[q·16+j] for r, j < 2, 4 over k steps
// of an interleaved 6-row panel: eight sums, six loads per eight
// multiply-adds.
func inter2x4(k int, a, b *float32) (s00, s01, s02, s03, s10, s11, s12, s13 float32) {
	pa, pb := unsafe.Pointer(a), unsafe.Pointer(b)
	if k&1 != 0 {
		a0, a1 := *(*float32)(pa), *(*float32)(unsafe.Add(pa, 4))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		b2 := *(*float32)(unsafe.Add(pb, 8))
		s02 += a0 * b2
		s12 += a1 * b2
		b3 := *(*float32)(unsafe.Add(pb, 12))
		s03 += a0 * b3
		s13 += a1 * b3
		if k--; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 4*mr), unsafe.Add(pb, 4*nr)
	}
	for {
		a0, a1 := *(*float32)(pa), *(*float32)(unsafe.Add(pa, 4))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		b2 := *(*float32)(unsafe.Add(pb, 8))
		s02 += a0 * b2
		s12 += a1 * b2
		b3 := *(*float32)(unsafe.Add(pb, 12))
		s03 += a0 * b3
		s13 += a1 * b3
		a0, a1 = *(*float32)(unsafe.Add(pa, 4*mr)), *(*float32)(unsafe.Add(pa, 4*mr+4))
		b0 = *(*float32)(unsafe.Add(pb, 4*nr))
		s00 += a0 * b0
		s10 += a1 * b0
		b1 = *(*float32)(unsafe.Add(pb, 4*nr+4))
		s01 += a0 * b1
		s11 += a1 * b1
		b2 = *(*float32)(unsafe.Add(pb, 4*nr+8))
		s02 += a0 * b2
		s12 += a1 * b2
		b3 = *(*float32)(unsafe.Add(pb, 4*nr+12))
		s03 += a0 * b3
		s13 += a1 * b3
		if k -= 2; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 8*mr), unsafe.Add(pb, 8*nr)
	}
}

// rows2x4 is rows2x2 for four columns (b at least 4 from the panel's end).
func rows2x4(k, lda int, a, b *float32) (s00, s01, s02, s03, s10, s11, s12, s13 float32) {
	pa, pb := unsafe.Pointer(a), unsafe.Pointer(b)
	o1 := 4 * lda
	if k&1 != 0 {
		a0, a1 := *(*float32)(pa), *(*float32)(unsafe.Add(pa, o1))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		b2 := *(*float32)(unsafe.Add(pb, 8))
		s02 += a0 * b2
		s12 += a1 * b2
		b3 := *(*float32)(unsafe.Add(pb, 12))
		s03 += a0 * b3
		s13 += a1 * b3
		if k--; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 4), unsafe.Add(pb, 4*nr)
	}
	for {
		a0, a1 := *(*float32)(pa), *(*float32)(unsafe.Add(pa, o1))
		b0 := *(*float32)(pb)
		s00 += a0 * b0
		s10 += a1 * b0
		b1 := *(*float32)(unsafe.Add(pb, 4))
		s01 += a0 * b1
		s11 += a1 * b1
		b2 := *(*float32)(unsafe.Add(pb, 8))
		s02 += a0 * b2
		s12 += a1 * b2
		b3 := *(*float32)(unsafe.Add(pb, 12))
		s03 += a0 * b3
		s13 += a1 * b3
		a0, a1 = *(*float32)(unsafe.Add(pa, 4)), *(*float32)(unsafe.Add(pa, o1+4))
		b0 = *(*float32)(unsafe.Add(pb, 4*nr))
		s00 += a0 * b0
		s10 += a1 * b0
		b1 = *(*float32)(unsafe.Add(pb, 4*nr+4))
		s01 += a0 * b1
		s11 += a1 * b1
		b2 = *(*float32)(unsafe.Add(pb, 4*nr+8))
		s02 += a0 * b2
		s12 += a1 * b2
		b3 = *(*float32)(unsafe.Add(pb, 4*nr+12))
		s03 += a0 * b3
		s13 += a1 * b3
		if k -= 2; k == 0 {
			return
		}
		pa, pb = unsafe.Add(pa, 8), unsafe.Add(pb, 8*nr)
	}
}

// row1x4 returns Σ_q a[q]·b[q·16+j] over k steps for one row and four
// columns (b points at the block's first column, at least 4 from the
// panel's end).
func row1x4(k int, a, b *float32) (s00, s01, s02, s03 float32) {
	pa, pb := unsafe.Pointer(a), unsafe.Pointer(b)
	for {
		a0 := *(*float32)(pa)
		b0 := *(*float32)(pb)
		b1 := *(*float32)(unsafe.Add(pb, 4))
		b2 := *(*float32)(unsafe.Add(pb, 8))
		b3 := *(*float32)(unsafe.Add(pb, 12))
		s00 += a0 * b0
		s01 += a0 * b1
		s02 += a0 * b2
		s03 += a0 * b3
		if k--; k <= 0 {
			return
		}
		pa = unsafe.Add(pa, 4)
		pb = unsafe.Add(pb, 4*nr)
	}
}
