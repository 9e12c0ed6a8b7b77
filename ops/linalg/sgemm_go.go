package linalg

// The pure-Go tile kernel: what every kernel set falls back to, and all
// there is on riscv64, ppc64le, s390x, wasm and with -tags purego.
//
// A tile (up to 6 rows × 16 columns of C) is computed in small register
// blocks whose accumulators are plain local variables, so the compiler keeps
// them in registers for the whole k loop: 3 rows × 2 columns (six
// accumulators, five loads per k step) for the interleaved 6-row panel and
// for groups of three A rows, 2 × 2 and 1 × 4 for what is left. Blocks no
// larger than that are what the Go compiler allocates without spilling on
// amd64 (15 usable XMM registers; the mul result needs a temporary since
// the two-operand MULSS overwrites its destination): a 2 × 4 or 1 × 8 block
// already spills there, a 3 × 4 one runs slower than the old kernel. The
// inner loops walk A and B by reslicing, so they index with constants
// after one length test per step and carry no bounds checks (checked with
// -gcflags=-d=ssa/check_bce); the interleaved loop is unrolled by two k
// steps to halve the loop overhead. The blocks' sums gather in a 6×16
// local and reach C row by row; k = 1 skips the blocks (shortK).
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
	var acc [mr * nr]float32
	if k < tileGoMinK {
		shortK(&acc, rows, k, a, lda, inter, b)
	} else if inter {
		a = a[:k*mr]
		r := 0
		for ; r+3 <= rows; r += 3 {
			for j := 0; j < cols; j += 2 {
				s := (*[2*nr + 2]float32)(acc[r*nr+j:])
				s[0], s[1], s[nr], s[nr+1], s[2*nr], s[2*nr+1] = inter3x2(a[r:], b[j:])
			}
		}
		for ; r < rows; r++ {
			// never taken by SgemmPackedWork (interleaved panels have 6
			// rows); kept so the contract holds for any rows
			for j := 0; j < cols; j++ {
				var s float32
				for q := 0; q < k; q++ {
					s += a[q*mr+r] * b[q*nr+j]
				}
				acc[r*nr+j] = s
			}
		}
	} else {
		r := 0
		for ; r+3 <= rows; r += 3 {
			a0, a1, a2 := a[r*lda:][:k], a[(r+1)*lda:][:k], a[(r+2)*lda:][:k]
			for j := 0; j < cols; j += 2 {
				s := (*[2*nr + 2]float32)(acc[r*nr+j:])
				s[0], s[1], s[nr], s[nr+1], s[2*nr], s[2*nr+1] = rows3x2(a0, a1, a2, b[j:])
			}
		}
		if r+2 <= rows {
			a0, a1 := a[r*lda:][:k], a[(r+1)*lda:][:k]
			for j := 0; j < cols; j += 2 {
				s := (*[nr + 2]float32)(acc[r*nr+j:])
				s[0], s[1], s[nr], s[nr+1] = rows2x2(a0, a1, b[j:])
			}
			r += 2
		}
		if r < rows {
			a0 := a[r*lda:][:k]
			for j := 0; j < cols; j += 4 {
				s := (*[4]float32)(acc[r*nr+j:])
				s[0], s[1], s[2], s[3] = row1x4(a0, b[j:])
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

// tileGoMinK is the shortest k the register blocks take: below it their
// per-call cost (16 calls of six results per tile) outweighs the k steps
// (an input projection with one feature, k = 1, ran 1.3× slower through
// them than through shortK; at k = 2 and 3 they break even, at 4 they
// are 1.2× faster, at 6 1.4×).
const tileGoMinK = 2

// shortK is tileGo's product for k < tileGoMinK: each row's 16 sums
// updated in memory per k step (the loop the blocks replaced), from 0, k
// in order like the blocks.
func shortK(acc *[mr * nr]float32, rows, k int, a []float32, lda int, inter bool, b []float32) {
	for q := 0; q < k; q++ {
		bq := (*[nr]float32)(b[q*nr:])
		for r := 0; r < rows; r++ {
			var av float32
			if inter {
				av = a[q*mr+r]
			} else {
				av = a[r*lda+q]
			}
			accR := (*[nr]float32)(acc[r*nr:])
			for j := range accR {
				accR[j] += av * bq[j]
			}
		}
	}
}

// inter3x2 returns Σ_q a[q·6+r]·b[q·16+j] for r, j < 3, 2 (a and b start
// at the block's first row and column): six accumulators, two k steps per
// iteration.
func inter3x2(a, b []float32) (s00, s01, s10, s11, s20, s21 float32) {
	for len(a) >= mr+3 && len(b) >= nr+2 {
		a0, a1, a2 := a[0], a[1], a[2]
		b0, b1 := b[0], b[1]
		s00 += a0 * b0
		s01 += a0 * b1
		s10 += a1 * b0
		s11 += a1 * b1
		s20 += a2 * b0
		s21 += a2 * b1
		a0, a1, a2 = a[mr], a[mr+1], a[mr+2]
		b0, b1 = b[nr], b[nr+1]
		s00 += a0 * b0
		s01 += a0 * b1
		s10 += a1 * b0
		s11 += a1 * b1
		s20 += a2 * b0
		s21 += a2 * b1
		if len(a) < 2*mr || len(b) < 2*nr {
			// that was the last pair of steps
			return
		}
		a, b = a[2*mr:], b[2*nr:]
	}
	if len(a) >= 3 && len(b) >= 2 {
		// an odd k: one step left
		a0, a1, a2 := a[0], a[1], a[2]
		b0, b1 := b[0], b[1]
		s00 += a0 * b0
		s01 += a0 * b1
		s10 += a1 * b0
		s11 += a1 * b1
		s20 += a2 * b0
		s21 += a2 * b1
	}
	return
}

// rows3x2 returns Σ_q aᵣ[q]·b[q·16+j] for three rows aᵣ of equal length
// and two columns (b starts at the block's first column).
func rows3x2(a0, a1, a2, b []float32) (s00, s01, s10, s11, s20, s21 float32) {
	a1, a2 = a1[:len(a0)], a2[:len(a0)]
	for q, x := range a0 {
		if len(b) < 2 {
			break
		}
		y, z := a1[q], a2[q]
		b0, b1 := b[0], b[1]
		s00 += x * b0
		s01 += x * b1
		s10 += y * b0
		s11 += y * b1
		s20 += z * b0
		s21 += z * b1
		if len(b) < nr {
			break
		}
		b = b[nr:]
	}
	return
}

// rows2x2 is rows3x2 for two rows.
func rows2x2(a0, a1, b []float32) (s00, s01, s10, s11 float32) {
	a1 = a1[:len(a0)]
	for q, x := range a0 {
		if len(b) < 2 {
			break
		}
		y := a1[q]
		b0, b1 := b[0], b[1]
		s00 += x * b0
		s01 += x * b1
		s10 += y * b0
		s11 += y * b1
		if len(b) < nr {
			break
		}
		b = b[nr:]
	}
	return
}

// row1x4 returns Σ_q a[q]·b[q·16+j] for one row and four columns (b
// starts at the block's first column, at least 4 from the panel's end).
func row1x4(a, b []float32) (s0, s1, s2, s3 float32) {
	for _, x := range a {
		if len(b) < 4 {
			break
		}
		bq := b[:4]
		s0 += x * bq[0]
		s1 += x * bq[1]
		s2 += x * bq[2]
		s3 += x * bq[3]
		if len(b) < nr {
			break
		}
		b = b[nr:]
	}
	return
}
