//go:build amd64 && !purego

package linalg

import "unsafe"

// cellFrame is the operand block the fused-cell kernels read through one
// pointer (offsets are fixed in cell_amd64.s). Strides are in bytes.
type cellFrame struct {
	pw     unsafe.Pointer // this unit block's panel
	k1, k2 int            // input rows (I), recurrence rows (H)
	x      unsafe.Pointer
	ldx    int
	h      unsafe.Pointer
	ldh    int
	init   unsafe.Pointer // slot 0 of this unit block
	ldi    int
	hb     int            // bytes between slots in init (4·H)
	c      unsafe.Pointer // LSTM: cell state; GRU: the old h of this block
	ldc    int
	ho     unsafe.Pointer
	ldo    int
	mask   int            // live lanes of this block
	rb     unsafe.Pointer // GRU recurrence bias of the h gate, or nil
	bs     int            // bytes between the panels of consecutive blocks
	_      int            // (offset 136, unused)
	aux    unsafe.Pointer // GRU0: r⊙h rows (pass 1) or z rows (pass 2)
	ldaux  int
}

//go:noescape
func lstmCell4AVX512(f *cellFrame)

//go:noescape
func lstmCell1AVX512(f *cellFrame)

//go:noescape
func gruCell4AVX512(f *cellFrame)

//go:noescape
func gruCell1AVX512(f *cellFrame)

//go:noescape
func rnnCell4AVX512(f *cellFrame)

//go:noescape
func rnnCell1AVX512(f *cellFrame)

//go:noescape
func gru0ZR4AVX512(f *cellFrame)

//go:noescape
func gru0ZR1AVX512(f *cellFrame)

//go:noescape
func gru0N4AVX512(f *cellFrame)

//go:noescape
func gru0N1AVX512(f *cellFrame)

//go:noescape
func lstmCell1x4AVX512(f *cellFrame)

//go:noescape
func lstmCell1x2AVX512(f *cellFrame)

//go:noescape
func gruCell1x4AVX512(f *cellFrame)

//go:noescape
func gruCell1x2AVX512(f *cellFrame)

// cellAsmOn is read per call (not cached at init) so setKernel can switch it.
func cellAsmOn() bool { return useAVX512 }

func blockMask(w int) int { return 1<<w - 1 }

// cellAsm runs the rows in groups of four (unit blocks outside, rows
// inside: a block's panel stays in L1 while the row groups stream past it),
// then each leftover row over several unit blocks at once, since one row
// alone would leave the FMA units waiting on its four dependency chains.
func cellAsm(p *CellWeights, a *CellArgs, gru bool) {
	H, I, S := p.H, p.I, p.Slots
	K := I + H
	nb := (H + cellBlock - 1) / cellBlock
	bs := K * S * cellBlock // floats per unit block panel
	f := cellFrame{k1: I, k2: H, ldx: 4 * a.LdX, ldh: 4 * a.LdH, ldi: 4 * a.LdInit, hb: 4 * H,
		ldc: 4 * a.LdC, ldo: 4 * a.LdHOut, bs: 4 * bs}
	if gru {
		f.ldc = 4 * a.LdH // c is the old h of the block
	}
	setRow := func(r, u int) {
		c0 := u * cellBlock
		f.pw = unsafe.Pointer(&p.data[u*bs])
		if I > 0 {
			f.x = unsafe.Pointer(&a.X[r*a.LdX])
		}
		f.h = unsafe.Pointer(&a.H[r*a.LdH])
		f.init = unsafe.Pointer(&a.Init[r*a.LdInit+c0])
		if gru {
			f.c = unsafe.Pointer(&a.H[r*a.LdH+c0])
			f.rb = nil
			if a.RB != nil {
				f.rb = unsafe.Pointer(&a.RB[c0])
			}
		} else {
			f.c = unsafe.Pointer(&a.C[r*a.LdC+c0])
		}
		f.ho = unsafe.Pointer(&a.HOut[r*a.LdHOut+c0])
	}
	rows4 := a.Rows &^ 3
	for u := 0; u < nb; u++ {
		f.mask = blockMask(min(cellBlock, H-u*cellBlock))
		for r := 0; r < rows4; r += 4 {
			setRow(r, u)
			if gru {
				gruCell4AVX512(&f)
			} else {
				lstmCell4AVX512(&f)
			}
		}
	}
	full := H / cellBlock
	if !cellMulti {
		full = 0
	}
	for r := rows4; r < a.Rows; r++ {
		u := 0
		f.mask = blockMask(cellBlock)
		for ; u+4 <= full; u += 4 {
			setRow(r, u)
			if gru {
				gruCell1x4AVX512(&f)
			} else {
				lstmCell1x4AVX512(&f)
			}
		}
		for ; u+2 <= full; u += 2 {
			setRow(r, u)
			if gru {
				gruCell1x2AVX512(&f)
			} else {
				lstmCell1x2AVX512(&f)
			}
		}
		for ; u < nb; u++ {
			f.mask = blockMask(min(cellBlock, H-u*cellBlock))
			setRow(r, u)
			if gru {
				gruCell1AVX512(&f)
			} else {
				lstmCell1AVX512(&f)
			}
		}
	}
}

// cellMulti enables the several-blocks-per-row kernels (tests and
// benchmarks compare against the block-at-a-time ones).
var cellMulti = true

func lstmCellAsm(p *CellWeights, a *CellArgs) { cellAsm(p, a, false) }

func gruCellAsm(p *CellWeights, a *CellArgs) { cellAsm(p, a, true) }

// gru0CellAsm runs the two passes of a linear_before_reset=0 GRU step:
// z and r⊙h for every row and unit block, then the h gate, whose product
// needs all of r⊙h.
func gru0CellAsm(p *GRU0Weights, a *CellArgs, z, rh []float32) {
	H, I := p.ZR.H, p.ZR.I
	K := I + H
	nb := (H + cellBlock - 1) / cellBlock
	rows4 := a.Rows &^ 3
	f := cellFrame{k1: I, k2: H, ldx: 4 * a.LdX, ldi: 4 * a.LdInit, hb: 4 * H, ldc: 4 * a.LdH}
	pass := func(zr bool) {
		slots, data := 1, p.N.data
		if zr {
			slots, data = 2, p.ZR.data
		}
		for u := 0; u < nb; u++ {
			c0 := u * cellBlock
			f.pw = unsafe.Pointer(&data[u*K*slots*cellBlock])
			f.mask = blockMask(min(cellBlock, H-c0))
			for r := 0; r < a.Rows; {
				if I > 0 {
					f.x = unsafe.Pointer(&a.X[r*a.LdX])
				}
				f.c = unsafe.Pointer(&a.H[r*a.LdH+c0])
				if zr {
					f.h, f.ldh = unsafe.Pointer(&a.H[r*a.LdH]), 4*a.LdH
					f.init = unsafe.Pointer(&a.Init[r*a.LdInit+c0])
					f.ho, f.ldo = unsafe.Pointer(&z[r*H+c0]), 4*H
					f.aux, f.ldaux = unsafe.Pointer(&rh[r*H+c0]), 4*H
				} else {
					f.h, f.ldh = unsafe.Pointer(&rh[r*H]), 4*H
					f.init = unsafe.Pointer(&a.Init[r*a.LdInit+2*H+c0])
					f.ho, f.ldo = unsafe.Pointer(&a.HOut[r*a.LdHOut+c0]), 4*a.LdHOut
					f.aux, f.ldaux = unsafe.Pointer(&z[r*H+c0]), 4*H
				}
				four := r < rows4
				switch {
				case zr && four:
					gru0ZR4AVX512(&f)
				case zr:
					gru0ZR1AVX512(&f)
				case four:
					gru0N4AVX512(&f)
				default:
					gru0N1AVX512(&f)
				}
				if four {
					r += 4
				} else {
					r++
				}
			}
		}
	}
	pass(true)
	pass(false)
}

// rnnCellAsm: unit blocks outside, rows in groups of four inside.
func rnnCellAsm(p *CellWeights, a *CellArgs) {
	H, I := p.H, p.I
	K := I + H
	nb := (H + cellBlock - 1) / cellBlock
	rows4 := a.Rows &^ 3
	f := cellFrame{k1: I, k2: H, ldx: 4 * a.LdX, ldh: 4 * a.LdH, ldi: 4 * a.LdInit, ldo: 4 * a.LdHOut}
	for u := 0; u < nb; u++ {
		c0 := u * cellBlock
		f.pw = unsafe.Pointer(&p.data[u*K*cellBlock])
		f.mask = blockMask(min(cellBlock, H-c0))
		for r := 0; r < a.Rows; {
			if I > 0 {
				f.x = unsafe.Pointer(&a.X[r*a.LdX])
			}
			f.h = unsafe.Pointer(&a.H[r*a.LdH])
			f.init = unsafe.Pointer(&a.Init[r*a.LdInit+c0])
			f.ho = unsafe.Pointer(&a.HOut[r*a.LdHOut+c0])
			if r < rows4 {
				rnnCell4AVX512(&f)
				r += 4
			} else {
				rnnCell1AVX512(&f)
				r++
			}
		}
	}
}
