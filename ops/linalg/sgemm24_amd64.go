//go:build amd64 && !purego

package linalg

import "unsafe"

// groupMask is laneTab seen from a group's view: &laneTab[16-c] holds 8
// lane masks whose first c (1…8) are set.
func groupMask(c int) unsafe.Pointer { return unsafe.Pointer(&laneTab[16-c]) }

// sgemmGroups computes C += A·B on AVX2 for an A read in place (alpha 1,
// not transposed) with the panel-pair tiles (sgemm32_amd64.s: every whole
// 32 columns, see pairColumns) and the group tiles (sgemm24_amd64.s: the
// columns left), reporting false
// (doing nothing) when the caller should use the 6-row tiles instead: a
// short product whose rows 4-row tiles would leave 2 or 3 of (a 2-row
// tile does poorly what one 6-row tile does). Per k block of kc, per 24
// columns (three groups of 8, a group being either half of a 16-wide
// packed panel: the tiles take a pointer per group), every 4 rows of A,
// then the 1–3 rows left; the last column tiles have the 1–4 groups left
// (4 as 2 + 2) and the last masks its last group when N is not a multiple
// of 8; epi (if not nil) runs on each column strip after its last k
// block, while the strip is in L1. The 4-row tiles also prefetch the
// B panel lines of the column tile that comes next (nextPanels), a line
// per 4 k, so that tile's first rows do not wait on L3 for weights that
// do not fit L2 (1 MB and 2 MB in mlp_gelu). Each element is
// summed in k order within a k block, then added to C, as every other
// AVX2 tile sums it, so a row's result does not depend on the path.
//
// With overwrite, C's old values are not read: the first k block's tiles
// add a row of zeros instead (C = A·B without clearing C first; the sums
// are never −0, so + 0 changes no bit), or, when it is the only k block,
// epi's bias row, which the epilogue then does not add again (acc + bias,
// the bits of a bias pass after the product).
func sgemmGroups(m, n, k int, a []float32, lda int, pb *PackedB, c []float32, ldc int, epi *Epilogue, overwrite bool) bool {
	if !groupsTake(m) {
		return false
	}
	var bias []float32
	if overwrite && k <= kc && epi != nil && epi.Bias != nil {
		bias = epi.Bias[:n]
		e := *epi
		e.Bias = nil
		epi = &e
	}
	// bounds the assembly relies on: every A row read to k, every C row to
	// n; B reads stay inside the panels, which cover ceil(n/16) panels of k
	_ = a[(m-1)*lda+k-1]
	_ = c[(m-1)*ldc+n-1]
	groups := (n + 7) / 8
	_ = pb.panels[((groups+1)/2)*k*nr-1]
	// off(g, q0) is the float offset of group g's k row q0 in the panels
	off := func(g, q0 int) int { return (g/2)*k*nr + q0*nr + (g%2)*8 }
	for q0 := 0; q0 < k; q0 += kc {
		kk := min(kc, k-q0)
		g0 := pairColumns(m, n, k, a, lda, pb, c, ldc, epi, overwrite, bias, q0)
		for g0 < groups {
			w := tileGroups(groups - g0)
			pf := nextPanels(groups, k, q0, g0, w)
			perTile := groupPrefetchLines * (kk / 4) // lines a 4-row tile prefetches
			cols := min(8*w, n-8*g0)
			masked := cols < 8*w
			b0 := off(g0, q0)
			var d1, d2 int
			if w > 1 {
				d1 = 4 * (off(g0+1, q0) - b0)
			}
			if w > 2 {
				d2 = 4 * (off(g0+2, q0) - b0)
			}
			mask := groupMask(cols - 8*(w-1))
			bp := unsafe.Pointer(&pb.panels[b0])
			fi := (w-1)*2 + boolInt(masked)
			// the addend: C, or (overwrite, first k block) one row
			var row unsafe.Pointer
			if overwrite && q0 == 0 {
				row = unsafe.Pointer(&zeroRow[0])
				if bias != nil {
					row = unsafe.Pointer(&bias[8*g0 : 8*g0+cols][0])
				}
			}
			i := 0
			for ; i < m; i += 4 {
				id := 3*6 + fi
				if m-i < 4 {
					id = (m-i-1)*6 + fi
				}
				ci := unsafe.Pointer(&c[i*ldc+8*g0])
				s, lds := ci, 4*ldc
				if row != nil {
					s, lds = row, 0
				}
				if m-i >= 4 {
					if p := pf.line(pb, (i/4)*perTile); p != nil {
						callGroupTilePF(id, kk, unsafe.Pointer(&a[i*lda+q0]), 4*lda, bp, d1, d2, ci, 4*ldc, mask, s, lds, p)
						continue
					}
				}
				callGroupTile(id, kk, unsafe.Pointer(&a[i*lda+q0]), 4*lda, bp, d1, d2, ci, 4*ldc, mask, s, lds)
			}
			if q0+kk == k {
				epi.apply(c, ldc, m, 8*g0, cols)
			}
			g0 += w
		}
	}
	return true
}

// tileGroups is the width in groups of the column tile that starts with
// left groups to go: 3, but 2 + 2 for the last 4 (not 3 + 1: a
// one-group tile has a quarter of the accumulators).
func tileGroups(left int) int {
	if left == 4 {
		return 2
	}
	return min(3, left)
}

// groupPrefetchLines is the cache lines a prefetching 4-row tile touches
// per 4 k (asmgen's groupPrefetch).
const groupPrefetchLines = 1

// panelRuns are the B panel lines the column tile after the current one
// reads and the current one does not: up to two runs of n 64-byte k rows
// (one per 16-wide panel), from float offsets off[0], off[1].
type panelRuns struct {
	off  [2]int
	runs int
	n    int
}

// nextPanels finds the lines of the column tile that follows tile
// (q0, g0, w) of a product with groups groups and k rows: the next 24
// columns of the k block, else the next k block's first; nothing after
// the last. A panel the current tile shares with the next one (a
// 16-wide panel split between them) is skipped: it is being read now.
func nextPanels(groups, k, q0, g0, w int) panelRuns {
	var r panelRuns
	h, q := g0+w, q0
	if h >= groups {
		h, q = 0, q0+kc
		if q >= k {
			return r
		}
	}
	hw := tileGroups(groups - h)
	r.n = min(kc, k-q)
	for p := h / 2; p <= (h+hw-1)/2; p++ {
		if q == q0 && p == (g0+w-1)/2 {
			continue
		}
		r.off[r.runs] = p*k*nr + q*nr
		r.runs++
	}
	return r
}

// line is the address of the runs' line l (counted over both runs), or
// nil past the last.
func (r *panelRuns) line(pb *PackedB, l int) unsafe.Pointer {
	if r.n == 0 || l >= r.runs*r.n {
		return nil
	}
	return unsafe.Pointer(&pb.panels[r.off[l/r.n]+(l%r.n)*nr])
}

// pairColumns runs k block q0 of the product over every whole 32 columns
// of C from the left with the panel-pair tiles (sgemm32_amd64.s), which
// leave no narrow tile at the right edge when N is a multiple of 32
// (mlp_gelu's 1024 and 512; the 4×24 group tiles ended those in two
// 4×16 tiles, 8 accumulators, 7 % of the run for 4.7 % of the work):
// rows in threes, the last 1, 2 or 4 (2 + 2) by the 1- and 2-row tiles,
// the 3-row ones prefetching the next tile's panels as sgemmGroups'
// do. Elements are summed as in the group tiles, so the bits do not
// change. It returns the group the remaining columns start at.
func pairColumns(m, n, k int, a []float32, lda int, pb *PackedB, c []float32, ldc int, epi *Epilogue, overwrite bool, bias []float32, q0 int) int {
	groups := (n + 7) / 8
	kk := min(kc, k-q0)
	d := 4 * k * nr // bytes between two panels' same k row
	// row tiles: 3 rows each, then the rest: 1 or 2 rows, or 4 as 2 + 2
	nt, rest := m/3, m%3
	if rest == 1 && m >= 4 {
		nt, rest = nt-1, 4
	}
	r0 := 3 * nt
	g0 := 0
	for ; 8*(g0+4) <= n; g0 += 4 {
		bp := unsafe.Pointer(&pb.panels[(g0/2)*k*nr+q0*nr])
		var row unsafe.Pointer
		if overwrite && q0 == 0 {
			row = unsafe.Pointer(&zeroRow[0])
			if bias != nil {
				row = unsafe.Pointer(&bias[8*g0 : 8*g0+32][0])
			}
		}
		// at row i: A, C and the addend
		at := func(i int) (ai, ci, s unsafe.Pointer, lds int) {
			ci = unsafe.Pointer(&c[i*ldc+8*g0])
			s, lds = ci, 4*ldc
			if row != nil {
				s, lds = row, 0
			}
			return unsafe.Pointer(&a[i*lda+q0]), ci, s, lds
		}
		// the next tile's two panels: the next 32 columns, else the next
		// k block's first; the first pfT row tiles prefetch them (kk/4
		// lines of each per tile). Where the next tile has one panel only
		// the kernel's second prefetch (pf + d) points past the panels: a
		// prefetch never faults, and reads nothing into a register.
		pfT, nextK, pfOff := 0, 0, 0
		if h := g0 + 4; h < groups {
			nextK, pfOff = kk, (h/2)*k*nr+q0*nr
		} else if q0+kc < k {
			nextK, pfOff = min(kc, k-q0-kc), (q0+kc)*nr
		}
		if per := kk / 4; per > 0 && nextK > 0 {
			pfT = min(nt, (nextK+per-1)/per)
		}
		i := 0
		if pfT > 0 {
			ai, ci, s, lds := at(0)
			sgemmWP3x32AVX2(pfT, kk, ai, 4*lda, bp, d, ci, 4*ldc, s, lds, unsafe.Pointer(&pb.panels[pfOff]))
			i = 3 * pfT
		}
		if i < r0 {
			ai, ci, s, lds := at(i)
			sgemmW3x32AVX2(nt-pfT, kk, ai, 4*lda, bp, d, ci, 4*ldc, s, lds, nil)
		}
		if rest > 0 {
			ai, ci, s, lds := at(r0)
			if rest > 1 {
				sgemmW2x32AVX2(rest/2, kk, ai, 4*lda, bp, d, ci, 4*ldc, s, lds, nil)
			} else {
				sgemmW1x32AVX2(1, kk, ai, 4*lda, bp, d, ci, 4*ldc, s, lds, nil)
			}
		}
		if q0+kk == k {
			epi.apply(c, ldc, m, 8*g0, 32)
		}
	}
	return g0
}

// zeroRow is the row of zeros an overwriting first k block adds (a
// panel-pair tile reads at most 32 columns of it).
var zeroRow [32]float32

// groupsTake reports whether sgemmGroups computes an m-row product.
func groupsTake(m int) bool { return m%4 == 0 || m >= 12 }
