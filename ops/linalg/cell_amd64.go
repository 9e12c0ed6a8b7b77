//go:build amd64 && !purego

package linalg

import "unsafe"

//go:generate go run ./internal/asmgen

// cellFrame is the operand block the fused-cell kernels read through one
// pointer; cell_amd64.s reads its fields at the offsets go_asm.h gives
// (cellFrame_pw, ...). Strides are in bytes.
type cellFrame struct {
	pw     unsafe.Pointer // this chunk's panel
	k1, k2 int            // input rows (I), recurrence rows (H)
	x      unsafe.Pointer
	ldx    int
	h      unsafe.Pointer
	ldh    int
	init   unsafe.Pointer // slot 0 of this chunk
	ldi    int
	hb     int            // bytes between slots in init (4·H)
	c      unsafe.Pointer // LSTM: cell state; GRU: the old h of this chunk
	ldc    int
	ho     unsafe.Pointer
	ldo    int
	mask   int            // AVX-512: live lanes of this chunk (bit mask)
	lanes  unsafe.Pointer // AVX2: lane masks of this chunk, 8 int32 per chunk
	part   int            // AVX2: nonzero when some lane is not live
	rb     unsafe.Pointer // GRU recurrence bias of the h gate, or nil
	bs     int            // bytes between the panels of consecutive packed blocks
	aux    unsafe.Pointer // GRU0: r⊙h rows (pass 1) or z rows (pass 2)
	ldaux  int
	gates  unsafe.Pointer // LSTM: activated gates out (slots hb apart), or nil
	ldg    int
	tc     unsafe.Pointer // LSTM, with gates: tanh(c') out
	ldt    int
	n      int // gate-pass kernels (…GatesAVX2): rows
	nblk   int // a looping kernel (multiKernel.loops): blocks this call
	pstep  int // bytes from one block's panel to the next one's (±bs)
	ustep  int // bytes from one block's units to the next one's (±64)
}

// The cell kinds, indexing the generated kernel tables.
const (
	kindLstmCell = iota
	kindGruCell
	kindGru0ZR
	kindGru0N
	kindRnnCell
	cellKinds
)

// cellKernels are one instruction set's kernels of one cell kind
// (cellkern_amd64.go, generated with cell_amd64.s).
type cellKernels struct {
	lanes int           // units per chunk: 16 (ZMM) or 8 (YMM, half a packed block)
	rows  int           // rows of the group kernel
	group int           // rows × 1 chunk (callCell id)
	one   int           // 1 row × 1 chunk
	multi []multiKernel // 1 row × n full chunks, widest first
	gate  int           // grows × 1 chunk, gates only (blocked step), -1 if none
	grows int           // rows of the gate kernel
	gate1 int           // 1 row × 1 chunk, gates only
}

// multiKernel is a one-row kernel over n full chunks at once: more
// independent accumulators hide the FMA latency a single row has. A
// looping one (AVX2: n chunks are one packed block) runs f.nblk such
// blocks per call, pstep and ustep apart (internal/asmgen/cellstream.go).
type multiKernel struct {
	n, id int
	loops bool
}

// laneTab gives, from &laneTab[16-w], the AVX2 lane masks of a chunk pair
// whose first w units are live (w ≤ 16).
var laneTab = [32]int32{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}

// cellAsmOn is read per call (not cached at init) so setKernel can switch it.
func cellAsmOn() bool { return useAVX2 }

// cellSet returns the kernels of one kind for the kernel set in use.
func cellSet(kind int) *cellKernels {
	if useAVX512 {
		return &cellKernelsAVX512[kind]
	}
	return &cellKernelsAVX2[kind]
}

func blockMask(w int) int { return 1<<w - 1 }

// setLive sets the frame's live-lane fields for a chunk of w live units
// (w ≤ lanes).
func (f *cellFrame) setLive(w, lanes int) {
	f.mask = blockMask(min(w, 16))
	f.lanes = unsafe.Pointer(&laneTab[16-min(w, 16)])
	f.part = 0
	if w < lanes {
		f.part = 1
	}
}

// chunkOff is the offset in floats of chunk c (of lanes units) in a packed
// panel whose blocks are bs floats apart.
func chunkOff(c, lanes, bs int) int {
	return c*lanes/cellBlock*bs + c*lanes%cellBlock
}

// cellAsm runs the rows in groups (chunks outside, rows inside: a chunk's
// panel stays in L1 while the row groups stream past it), then each
// leftover row over several chunks at once.
func cellAsm(p *CellWeights, a *CellArgs, gru bool) {
	if a.Gates == nil && blockedStep(p, a.Rows) {
		cellBlocked(p, a, gru)
		return
	}
	kind := kindLstmCell
	if gru {
		kind = kindGruCell
	}
	ks := cellSet(kind)
	L := ks.lanes
	H, I, S := p.H, p.I, p.Slots
	K := I + H
	nc := (H + L - 1) / L
	bs := K * S * cellBlock // floats per packed block panel
	f := cellFrame{k1: I, k2: H, ldx: 4 * a.LdX, ldh: 4 * a.LdH, ldi: 4 * a.LdInit, hb: 4 * H,
		ldc: 4 * a.LdC, ldo: 4 * a.LdHOut, bs: 4 * bs, ldg: 4 * a.LdGates, ldt: 4 * a.LdTanhC}
	if gru {
		f.ldc = 4 * a.LdH // c is the old h of the chunk
	}
	setRow := func(r, c int) {
		c0 := c * L
		f.pw = unsafe.Pointer(&p.data[chunkOff(c, L, bs)])
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
		if a.Gates != nil {
			f.gates = unsafe.Pointer(&a.Gates[r*a.LdGates+c0])
			f.tc = unsafe.Pointer(&a.TanhC[r*a.LdTanhC+c0])
		}
	}
	R := ks.rows
	rowsG := a.Rows - a.Rows%R
	for c := 0; c < nc; c++ {
		f.setLive(H-c*L, L)
		for r := 0; r < rowsG; r += R {
			setRow(r, c)
			callCell(ks.group, &f)
		}
	}
	full := H / L
	if !cellMulti {
		full = 0
	}
	back := stepBackward(a)
	for r := rowsG; r < a.Rows; r++ {
		if back {
			// the same calls, last chunk first (see stepBackward)
			c := 0
			var seg [4][3]int // first chunk, chunks per call, calls
			ns := 0
			for _, m := range ks.multi {
				if n := (full - c) / m.n; n > 0 && ns < len(seg) {
					seg[ns] = [3]int{c, m.n, n}
					ns++
					c += n * m.n
				}
			}
			for cc := nc - 1; cc >= c; cc-- {
				f.setLive(H-cc*L, L)
				setRow(r, cc)
				callCell(ks.one, &f)
			}
			f.setLive(cellBlock, L)
			for i := ns - 1; i >= 0; i-- {
				id, loops := ks.multi[0].id, ks.multi[0].loops
				for _, m := range ks.multi {
					if m.n == seg[i][1] {
						id, loops = m.id, m.loops
					}
				}
				if loops && cellLoopBlocks {
					setRow(r, seg[i][0]+(seg[i][2]-1)*seg[i][1])
					f.nblk, f.pstep, f.ustep = seg[i][2], -f.bs*seg[i][1]*L/cellBlock, -4*seg[i][1]*L
					callCell(id, &f)
					continue
				}
				for k := seg[i][2] - 1; k >= 0; k-- {
					setRow(r, seg[i][0]+k*seg[i][1])
					callCell(id, &f)
				}
			}
			continue
		}
		c := 0
		f.setLive(cellBlock, L)
		for _, m := range ks.multi {
			if n := (full - c) / m.n; m.loops && cellLoopBlocks && n > 0 {
				setRow(r, c)
				f.nblk, f.pstep, f.ustep = n, f.bs*m.n*L/cellBlock, 4*m.n*L
				callCell(m.id, &f)
				c += n * m.n
			}
			for ; c+m.n <= full; c += m.n {
				setRow(r, c)
				callCell(m.id, &f)
			}
		}
		for ; c < nc; c++ {
			f.setLive(H-c*L, L)
			setRow(r, c)
			callCell(ks.one, &f)
		}
	}
}

// cellLoopBlocks lets a looping multiKernel run all its blocks in one
// call (benchmarks compare against one call per block).
var cellLoopBlocks = true

// cellMulti enables the several-chunks-per-row kernels (tests and
// benchmarks compare against the chunk-at-a-time ones).
var cellMulti = true

func lstmCellAsm(p *CellWeights, a *CellArgs) { cellAsm(p, a, false) }

func gruCellAsm(p *CellWeights, a *CellArgs) { cellAsm(p, a, true) }

// gru0CellAsm runs the two passes of a linear_before_reset=0 GRU step:
// z and r⊙h for every row and chunk, then the h gate, whose product needs
// all of r⊙h.
func gru0CellAsm(p *GRU0Weights, a *CellArgs, z, rh []float32) {
	H, I := p.ZR.H, p.ZR.I
	K := I + H
	f := cellFrame{k1: I, k2: H, ldx: 4 * a.LdX, ldi: 4 * a.LdInit, hb: 4 * H, ldc: 4 * a.LdH}
	pass := func(zr bool) {
		slots, data, ks := 1, p.N.data, cellSet(kindGru0N)
		if zr {
			slots, data, ks = 2, p.ZR.data, cellSet(kindGru0ZR)
		}
		L, R := ks.lanes, ks.rows
		nc := (H + L - 1) / L
		rowsG := a.Rows - a.Rows%R
		for c := 0; c < nc; c++ {
			c0 := c * L
			f.pw = unsafe.Pointer(&data[chunkOff(c, L, K*slots*cellBlock)])
			f.setLive(H-c0, L)
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
				if r < rowsG {
					callCell(ks.group, &f)
					r += R
				} else {
					callCell(ks.one, &f)
					r++
				}
			}
		}
	}
	pass(true)
	pass(false)
}

// rnnCellAsm: chunks outside, row groups inside.
func rnnCellAsm(p *CellWeights, a *CellArgs) {
	H, I := p.H, p.I
	K := I + H
	ks := cellSet(kindRnnCell)
	L, R := ks.lanes, ks.rows
	nc := (H + L - 1) / L
	rowsG := a.Rows - a.Rows%R
	f := cellFrame{k1: I, k2: H, ldx: 4 * a.LdX, ldh: 4 * a.LdH, ldi: 4 * a.LdInit, ldo: 4 * a.LdHOut}
	for c := 0; c < nc; c++ {
		c0 := c * L
		f.pw = unsafe.Pointer(&p.data[chunkOff(c, L, K*cellBlock)])
		f.setLive(H-c0, L)
		for r := 0; r < a.Rows; {
			if I > 0 {
				f.x = unsafe.Pointer(&a.X[r*a.LdX])
			}
			f.h = unsafe.Pointer(&a.H[r*a.LdH])
			f.init = unsafe.Pointer(&a.Init[r*a.LdInit+c0])
			f.ho = unsafe.Pointer(&a.HOut[r*a.LdHOut+c0])
			if r < rowsG {
				callCell(ks.group, &f)
				r += R
			} else {
				callCell(ks.one, &f)
				r++
			}
		}
	}
}

// cellBackMode forces the single rows' chunk order backward (1) or
// forward (-1); 0 alternates (tests compare the orders).
var cellBackMode = 0

// stepBackward reports whether this step's single rows should visit the
// hidden-unit chunks last first. Alternating the direction from step to
// step lets the chunks a step touched last — their panel still in L1 —
// come first in the next one, so a panel a little larger than L1 (LSTM(64):
// 66 KB) is not streamed from L2 in full every step. The chunk order
// changes no result (each chunk's sums are its own). The parity comes from
// where the step writes: consecutive steps write consecutive rows of Y (or
// alternate between two state buffers), |HOut - H| apart.
func stepBackward(a *CellArgs) bool {
	if cellBackMode != 0 {
		return cellBackMode > 0
	}
	h := uintptr(unsafe.Pointer(&a.H[0]))
	o := uintptr(unsafe.Pointer(&a.HOut[0]))
	d := o - h
	if h > o {
		d = h - o
	}
	return d != 0 && (o/d)&1 == 1
}
