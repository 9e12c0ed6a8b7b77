package main

import "fmt"

// Spilling AVX2 group kernels. Two rows × 4 accumulators leave the FMA
// pipes no slack (latency 4 × 2 pipes wants ≥ 8 independent sums, and
// every k step also loads 4 panel vectors and broadcasts 2 inputs), so the
// AVX2 LSTM and GRU groups take 3 rows: 12 accumulators (Y0-Y11), the
// rows' broadcasts (Y12-Y14) and a single panel register (Y15) that each
// slot's vector passes through on its way to the 3 rows' FMAs — 4 loads +
// 3 broadcasts per 12 FMAs instead of 6 per 8. The gate arithmetic needs
// 8 registers besides a row's 4 accumulators, so after the multiply-adds
// the rows after the first go to the stack frame and come back one row at
// a time; the sums and their order are the 2-row kernel's.

// spill reports whether the kernel's accumulators outgrow what the gate
// arithmetic leaves (AVX2: Y13-Y15 are its constants, 5 temporaries).
// A twoPhase kernel spills too: its epilogue takes the registers of
// every row but the first.
func (k kernel) spill() bool {
	return k.twoPhase() || !k.s.avx512() && !k.gate && k.chunks == 1 && k.rows*k.k.A+5 > 13
}

// units are a kernel's rows × chunks, row-major: the epilogue's unit of
// work (one vector of each accumulator).
func (k kernel) units() int { return k.rows * k.chunks }

// unit is unit u's row and chunk.
func (k kernel) unit(u int) (row, j int) { return u / k.chunks, u % k.chunks }

// frame is the kernel's stack frame in bytes: the spilled rows, and o
// and c' of every row (twoPhase).
func (k kernel) frame() int {
	n := 0
	if k.spill() {
		n = (k.units() - 1) * k.k.A * k.s.vb()
	}
	if k.twoPhase() {
		n += 2 * k.units() * k.s.vb()
	}
	return n + k.pipeFrame()
}

// spillRegs: accumulators first, then the broadcasts, one panel register
// last. The gate temporaries follow the first row's accumulators (free
// once the other rows are spilled); the mask (a partial chunk's starting
// values) borrows the panel register before the loop.
func (k kernel) spillRegs() regs {
	var r regs
	n := k.units() * k.k.A
	v := func(i int) string { return fmt.Sprintf("%s%d", k.s.reg, i) }
	for i := 0; i < n; i++ {
		r.acc = append(r.acc, v(i))
	}
	for i := 0; i < k.rows; i++ {
		r.bcast = append(r.bcast, v(n+i))
	}
	r.panel = []string{v(n + k.rows)}
	if n+k.rows+1 > 16 || k.k.A+5 > 13 {
		panic(fmt.Sprintf("%s: out of registers", k.name()))
	}
	a := k.k.A
	r.t1, r.t2, r.t3, r.t4, r.mask = v(a), v(a+1), v(a+2), v(a+3), v(a+4)
	return r
}

// streamBody is one k step of a spilling kernel: broadcast the rows'
// inputs, then each slot's panel vector into the one panel register and
// on to every row's accumulator.
func (k kernel) streamBody(e *emitter, r regs, m []int) {
	for row := 0; row < k.rows; row++ {
		e.p("VBROADCASTSS %s, %s", rowAddr(row), r.bcast[row])
	}
	for s := 0; s < k.k.S; s++ {
		e.p("VMOVUPS %d(AX), %s", s*64, r.panel[0])
		for row := 0; row < k.rows; row++ {
			e.p("VFMADD231PS %s, %s, %s", r.bcast[row], r.panel[0], k.acc(r, row, 0, m[s]))
		}
	}
}

// spillOut stores the accumulators of units 1.. to the stack frame.
func (k kernel) spillOut(e *emitter, r regs) regs {
	for u := 1; u < k.units(); u++ {
		row, j := k.unit(u)
		for a := 0; a < k.k.A; a++ {
			e.p("VMOVUPS %s, %d(SP)", k.acc(r, row, j, a), k.spillOff(u, a))
		}
	}
	return r
}

// reload brings unit u's accumulators back into the first unit's registers.
func (k kernel) reload(e *emitter, r regs, u int) {
	for a := 0; a < k.k.A; a++ {
		e.p("VMOVUPS %d(SP), %s", k.spillOff(u, a), k.acc(r, 0, 0, a))
	}
}

func (k kernel) spillOff(u, a int) int { return ((u-1)*k.k.A + a) * k.s.vb() }

// twoPhase reports whether an AVX2 LSTM kernel of several rows runs its
// gate arithmetic in two passes over the rows. One row's arithmetic is a
// chain — the gates, c' = f⊙c + i⊙g, then tanh(c') and h' = o⊙tanh(c') —
// ~120 cycles long for ~130 instructions; row by row, the next row's
// gates cannot all enter the out-of-order window while a row waits on its
// tanh(c'). The first pass does the gates and c' of every row (c' and o to
// the stack frame), the second the rows' tanh(c') and h', all independent.
// A GRU likewise: z, r and nx + r⊙nh first, then n = tanh(·) and
// h' = n + z⊙(h - n). The operations and their order per element are
// those of one pass.
//
// The one-row kernels over two chunks (the halves of a packed block) do
// the same over their chunks: two independent chains again.
func (k kernel) twoPhase() bool {
	return !k.s.avx512() && (k.k == kLSTM || k.k == kGRU) && k.units() > 1 && (k.rows == 1 || k.chunks == 1)
}

// phaseOff is the frame offset of unit u's o (w = 0) or c' (w = 1); GRU:
// z and nx + r⊙nh.
func (k kernel) phaseOff(u, w int) int {
	base := 0
	if k.spill() {
		base = (k.units() - 1) * k.k.A * k.s.vb()
	}
	return base + (2*u+w)*k.s.vb()
}

// epilogueTwoPhase is epilogueRows for twoPhase kernels (one chunk,
// accumulators in Y0-Y3 row by row). Activations go two at a time,
// interleaved (cellact.go): temporaries Y4-Y7 and Y8-Y11, Y12 the old c,
// Y4 a partial chunk's mask once the activations are done.
func (k kernel) epilogueTwoPhase(e *emitter, r regs, part, keep bool) {
	const mask = "Y4"
	load := func(mem, dst string) {
		if part {
			e.p("VMOVUPS 0(R14), %s", mask)
			e.p("VMASKMOVPS %s, %s, %s", mem, mask, dst)
			return
		}
		e.p("VMOVUPS %s, %s", mem, dst)
	}
	store := func(src, mem string) {
		if part {
			e.p("VMOVUPS 0(R14), %s", mask)
			e.p("VMASKMOVPS %s, %s, %s", src, mask, mem)
			return
		}
		e.p("VMOVUPS %s, %s", src, mem)
	}
	ta := []string{"Y4", "Y5", "Y6", "Y7"}
	tb := []string{"Y8", "Y9", "Y10", "Y11"}
	pair := func(l ...[]string) {
		for _, op := range interleave(l...) {
			e.p("%s", op)
		}
	}
	e.p("MOVQ cellFrame_c(DI), DX")
	e.p("MOVQ cellFrame_ho(DI), BX")
	e.p("MOVQ cellFrame_ldc(DI), R8")
	e.p("MOVQ cellFrame_ldo(DI), R9")
	e.p("GATECONST256")
	if k.k == kGRU {
		k.gruTwoPhase(e, r, part, load, store, pair, ta, tb)
		return
	}
	vb := k.s.vb()
	// pass 1: the gates and c'
	for u := 0; u < k.units(); u++ {
		row, j := k.unit(u)
		if u > 0 {
			k.reload(e, r, u)
		}
		if row > 0 && j == 0 {
			e.p("ADDQ R8, DX")
			if keep {
				e.p("ADDQ R11, R10")
			}
		}
		a := func(i int) string { return k.acc(r, 0, 0, i) }
		pair(sigOps(a(0), ta[0], ta[1], ta[2]), sigOps(a(1), tb[0], tb[1], tb[2]))
		pair(sigOps(a(2), ta[0], ta[1], ta[2]), tanhOps(a(3), tb[0], tb[1], tb[2]))
		if keep {
			if j == 0 {
				e.p("LEAQ (R10)(R12*2), R13")
			}
			store(a(0), fmt.Sprintf("%d(R10)", j*vb))
			store(a(1), fmt.Sprintf("%d(R10)(R12*1)", j*vb))
			store(a(2), fmt.Sprintf("%d(R10)(R12*2)", j*vb))
			store(a(3), fmt.Sprintf("%d(R13)(R12*1)", j*vb))
		}
		dx := fmt.Sprintf("%d(DX)", j*vb)
		load(dx, "Y12")
		e.p("VMULPS %s, Y12, Y12", a(2))
		e.p("VFMADD231PS %s, %s, Y12", a(0), a(3))
		store("Y12", dx)
		e.p("VMOVUPS Y12, %d(SP)", k.phaseOff(u, 1))
		e.p("VMOVUPS %s, %d(SP)", a(1), k.phaseOff(u, 0))
	}
	// pass 2: h' = o⊙tanh(c'), two units at a time
	for u0 := 0; u0 < k.units(); u0 += 2 {
		n := k.tanhFromStack(e, u0, pair, ta, tb)
		for i := 0; i < n; i++ {
			y := fmt.Sprintf("Y%d", i)
			row, j := k.unit(u0 + i)
			if row > 0 && j == 0 {
				e.p("ADDQ R9, BX")
				if keep {
					e.p("ADDQ CX, SI")
				}
			}
			if keep {
				store(y, fmt.Sprintf("%d(SI)", j*vb))
			}
			e.p("VMULPS %d(SP), %s, %s", k.phaseOff(u0+i, 0), y, y)
			store(y, fmt.Sprintf("%d(BX)", j*vb))
		}
	}
	k.ret(e)
}

// tanhFromStack loads the phase-1 values of units u0 and u0+1 (only u0
// when it is the last) from the stack into Y0 and Y1 and takes their tanh
// as one paired instruction list; it returns how many units it took.
func (k kernel) tanhFromStack(e *emitter, u0 int, pair func(...[]string), ta, tb []string) int {
	n := min(2, k.units()-u0)
	e.p("VMOVUPS %d(SP), Y0", k.phaseOff(u0, 1))
	if n == 1 {
		pair(tanhOps("Y0", ta[0], ta[1], ta[2]))
		return 1
	}
	e.p("VMOVUPS %d(SP), Y1", k.phaseOff(u0+1, 1))
	pair(tanhOps("Y0", ta[0], ta[1], ta[2]), tanhOps("Y1", tb[0], tb[1], tb[2]))
	return 2
}

// gruTwoPhase is epilogueTwoPhase's GRU (accumulators z r nx nh).
func (k kernel) gruTwoPhase(e *emitter, r regs, part bool, load, store func(string, string), pair func(...[]string), ta, tb []string) {
	vb := k.s.vb()
	// pass 1: z, r and nx + r⊙nh
	for u := 0; u < k.units(); u++ {
		if u > 0 {
			k.reload(e, r, u)
		}
		a := func(i int) string { return k.acc(r, 0, 0, i) }
		pair(sigOps(a(0), ta[0], ta[1], ta[2]), sigOps(a(1), tb[0], tb[1], tb[2]))
		e.p("VFMADD231PS %s, %s, %s", a(1), a(3), a(2))
		e.p("VMOVUPS %s, %d(SP)", a(2), k.phaseOff(u, 1))
		e.p("VMOVUPS %s, %d(SP)", a(0), k.phaseOff(u, 0))
	}
	// pass 2: n = tanh(·), h' = n + z⊙(h - n), two units at a time
	for u0 := 0; u0 < k.units(); u0 += 2 {
		n := k.tanhFromStack(e, u0, pair, ta, tb)
		for i := 0; i < n; i++ {
			y := fmt.Sprintf("Y%d", i)
			row, j := k.unit(u0 + i)
			if row > 0 && j == 0 {
				e.p("ADDQ R8, DX")
				e.p("ADDQ R9, BX")
			}
			load(fmt.Sprintf("%d(DX)", j*vb), "Y12")
			e.p("VSUBPS %s, Y12, Y12", y)
			e.p("VFMADD231PS %d(SP), Y12, %s", k.phaseOff(u0+i, 0), y)
			store(y, fmt.Sprintf("%d(BX)", j*vb))
		}
	}
	k.ret(e)
}
