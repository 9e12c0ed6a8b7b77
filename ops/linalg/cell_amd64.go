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
}

//go:noescape
func lstmCell4AVX512(f *cellFrame)

//go:noescape
func lstmCell1AVX512(f *cellFrame)

//go:noescape
func gruCell4AVX512(f *cellFrame)

//go:noescape
func gruCell1AVX512(f *cellFrame)

// cellAsmOn is read per call (not cached at init) so setKernel can switch it.
func cellAsmOn() bool { return useAVX512 }

func blockMask(w int) int { return 1<<w - 1 }

func lstmCellAsm(p *CellWeights, a *CellArgs) {
	H, I := p.H, p.I
	K := I + H
	nb := (H + cellBlock - 1) / cellBlock
	f := cellFrame{k1: I, k2: H, ldx: 4 * a.LdX, ldh: 4 * a.LdH, ldi: 4 * a.LdInit, hb: 4 * H,
		ldc: 4 * a.LdC, ldo: 4 * a.LdHOut}
	// unit blocks outside, rows inside: the block's panel stays in L1
	// while the row groups stream past it
	for u := 0; u < nb; u++ {
		f.pw = unsafe.Pointer(&p.data[u*K*4*cellBlock])
		f.mask = blockMask(min(cellBlock, H-u*cellBlock))
		c0 := u * cellBlock
		for r := 0; r < a.Rows; {
			if I > 0 {
				f.x = unsafe.Pointer(&a.X[r*a.LdX])
			}
			f.h = unsafe.Pointer(&a.H[r*a.LdH])
			f.init = unsafe.Pointer(&a.Init[r*a.LdInit+c0])
			f.c = unsafe.Pointer(&a.C[r*a.LdC+c0])
			f.ho = unsafe.Pointer(&a.HOut[r*a.LdHOut+c0])
			if a.Rows-r >= 4 {
				lstmCell4AVX512(&f)
				r += 4
			} else {
				lstmCell1AVX512(&f)
				r++
			}
		}
	}
}

func gruCellAsm(p *CellWeights, a *CellArgs) {
	H, I := p.H, p.I
	K := I + H
	nb := (H + cellBlock - 1) / cellBlock
	f := cellFrame{k1: I, k2: H, ldx: 4 * a.LdX, ldh: 4 * a.LdH, ldi: 4 * a.LdInit, hb: 4 * H,
		ldc: 4 * a.LdH, ldo: 4 * a.LdHOut}
	for u := 0; u < nb; u++ {
		f.pw = unsafe.Pointer(&p.data[u*K*3*cellBlock])
		f.mask = blockMask(min(cellBlock, H-u*cellBlock))
		c0 := u * cellBlock
		f.rb = nil
		if a.RB != nil {
			f.rb = unsafe.Pointer(&a.RB[c0])
		}
		for r := 0; r < a.Rows; {
			if I > 0 {
				f.x = unsafe.Pointer(&a.X[r*a.LdX])
			}
			f.h = unsafe.Pointer(&a.H[r*a.LdH])
			f.c = unsafe.Pointer(&a.H[r*a.LdH+c0])
			f.init = unsafe.Pointer(&a.Init[r*a.LdInit+c0])
			f.ho = unsafe.Pointer(&a.HOut[r*a.LdHOut+c0])
			if a.Rows-r >= 4 {
				gruCell4AVX512(&f)
				r += 4
			} else {
				gruCell1AVX512(&f)
				r++
			}
		}
	}
}
