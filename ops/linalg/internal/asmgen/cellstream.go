package main

import "fmt"

// Batch 1 on AVX2: the one-row several-chunk kernels (the two halves of
// one packed block) loop over cellFrame_nblk consecutive blocks in one
// call instead of one call per block, and the LSTM and GRU ones run a
// block's gate arithmetic while the next block's products stream (below).
//
// At batch 1 a step streams the whole packed panel (LSTM(256): 1 MB,
// about this L2) through one row's 8 accumulators. One call per 16-unit
// block paid the Go-side call and pointer setup 16 times a step (~0.5 %),
// and each block's gate arithmetic, a latency-bound chain of ~270
// instructions, filled the out-of-order window at the block boundary so
// that the next block's panel loads waited behind it (~4 %). The loop
// keeps the pointers in the frame: after a block it adds cellFrame_pstep
// to the panel pointer and cellFrame_ustep to init, c, ho (and gates, tc,
// rb when set) and starts the next block. Each block's sums and gates are
// the one-block kernel's, in the same order.
//
// Measured and dropped (paired CPU time against the AVX-512 kernel,
// noise ±2 %): software prefetch of the panel 1, 2, 4 or 8 KB ahead in
// the k loop (T0: no gain; T1/T2: 5-15 % slower), of the next block's
// first rows before the gates, or of the next block's Init; the k loop
// unrolled by 2; the FMAs in address order; one 16-byte load and
// in-lane permutes for four rows' broadcasts instead of four broadcast
// loads; the tasks spread over k2/11 rows instead of k2/16.

// loops reports whether the kernel runs cellFrame_nblk blocks per call.
func (k kernel) loops() bool {
	return !k.s.avx512() && k.rows == 1 && k.chunks > 1 && !k.gate
}

// blockTop labels the start of a block of a looping kernel.
func (k kernel) blockTop(e *emitter, name string) {
	if k.pipelines() {
		e.p("MOVQ $0, %d(SP)", k.pipeFlag())
	}
	if k.loops() {
		e.raw(name + "_blk:\n")
	}
}

// ret ends an epilogue: the function, or for a looping kernel the block.
func (k kernel) ret(e *emitter) {
	if k.loops() {
		e.p("JMP %s_next", k.name())
		e.raw("\n")
		return
	}
	e.p("VZEROUPPER")
	e.p("RET")
	e.raw("\n")
}

// blockNext steps a looping kernel's frame to the next block, if any.
// The pointers move only when another block follows, so they never leave
// their slices.
func (k kernel) blockNext(e *emitter, name string) {
	if !k.loops() {
		return
	}
	e.raw(name + "_next:\n")
	e.p("DECQ cellFrame_nblk(DI)")
	e.p("JLE %s_done", name)
	e.p("MOVQ cellFrame_pstep(DI), AX")
	e.p("ADDQ AX, cellFrame_pw(DI)")
	e.p("MOVQ cellFrame_ustep(DI), AX")
	e.p("ADDQ AX, cellFrame_init(DI)")
	e.p("ADDQ AX, cellFrame_c(DI)")
	e.p("ADDQ AX, cellFrame_ho(DI)")
	opt := []string{"rb"}
	if k.k == kLSTM {
		opt = []string{"gates", "tc"}
	}
	for _, f := range opt {
		e.p("CMPQ cellFrame_%s(DI), $0", f)
		e.p("JEQ %s_adv%s", name, f)
		e.p("ADDQ AX, cellFrame_%s(DI)", f)
		e.raw(name + "_adv" + f + ":\n")
	}
	e.p("JMP %s_blk", name)
	e.raw(name + "_done:\n")
	e.p("VZEROUPPER")
	e.p("RET")
	e.raw("\n")
}

// The LSTM and GRU looping kernels also pipeline the gate arithmetic: a
// block that another block follows (and no gates are kept) leaves its 8
// sums in the stack frame (pending) instead of running its epilogue, and
// the next block's h phase runs that epilogue in pieces (tasks) between
// segments of its k loop, where the out-of-order window holds each piece
// together with streaming multiply-adds instead of stalling the stream on
// the chain. The k loop takes Y0-Y7 (sums) and Y8 (the broadcast, dead
// between rows); a task takes Y8-Y12 and the gate constants Y13-Y15. The
// last block runs the epilogue as before. A task's instructions per
// element are the two-pass epilogue's (epilogueTwoPhase, gruTwoPhase),
// with the same operands (a product's operands may be swapped: exact
// either way), so the bits are the same.

// pipelines reports whether the kernel runs pending epilogues as tasks.
func (k kernel) pipelines() bool { return k.loops() && (k.k == kLSTM || k.k == kGRU) }

// unitTasks is how many tasks one unit's epilogue takes: LSTM, its 4 gate
// activations, then c', tanh(c') and h'; GRU, z and r, then
// n = tanh(nx + r⊙nh) and h'.
func (k kernel) unitTasks() int {
	if k.k == kGRU {
		return 3
	}
	return k.k.A + 1
}

// pipeTasks is how many tasks a pending block's epilogue takes.
func (k kernel) pipeTasks() int { return k.units() * k.unitTasks() }

// The pipelined kernel's frame after the epilogue's: the pending sums,
// then the flag saying a pending block exists.
func (k kernel) pipeBase() int        { return k.frame() - k.pipeFrame() }
func (k kernel) pipeFlag() int        { return k.pipeBase() + k.units()*k.k.A*k.s.vb() }
func (k kernel) pendOff(u, a int) int { return k.pipeBase() + (u*k.k.A+a)*k.s.vb() }

func (k kernel) pipeFrame() int {
	if !k.pipelines() {
		return 0
	}
	return k.units()*k.k.A*k.s.vb() + 8
}

// streamPhases is a looping kernel's multiply-adds: the x rows, then the
// h rows, the latter in segments with the pending block's tasks between
// them when there is one, then the choice between leaving this block's
// sums pending and running its epilogue now (at name_epi, which finish
// follows).
func (k kernel) streamPhases(e *emitter, r regs, name string) {
	e.p("MOVQ cellFrame_k1(DI), CX")
	e.p("MOVQ cellFrame_x(DI), SI")
	k.rowLoop(e, r, k.k.xmap, name+"_x")
	e.p("MOVQ cellFrame_k2(DI), CX")
	e.p("MOVQ cellFrame_h(DI), SI")
	if !k.pipelines() {
		k.rowLoop(e, r, k.k.hmap, name+"_h")
		return
	}
	e.p("CMPQ %d(SP), $0", k.pipeFlag())
	e.p("JNE %s_pipe", name)
	k.rowLoop(e, r, k.k.hmap, name+"_h")
	e.p("JMP %s_hdone", name)
	// segments of k2/16 rows (may be 0), a task after each of the first
	// pipeTasks, then the rest of the rows (k2 - pipeTasks·(k2/16) > 0)
	e.raw(name + "_pipe:\n")
	e.p("GATECONST256")
	e.p("MOVQ CX, R9")
	e.p("SHRQ $4, CX")
	e.p("MOVQ CX, R8")
	nt := k.pipeTasks()
	for t := 0; t < nt; t++ {
		if t > 0 {
			e.p("MOVQ R8, CX")
		}
		k.rowLoop(e, r, k.k.hmap, fmt.Sprintf("%s_seg%d", name, t))
		k.task(e, t)
	}
	e.p("IMUL3Q $%d, R8, R8", nt)
	e.p("MOVQ R9, CX")
	e.p("SUBQ R8, CX")
	k.rowLoop(e, r, k.k.hmap, name+"_rest")
	e.raw(name + "_hdone:\n")
	e.p("CMPQ cellFrame_nblk(DI), $1")
	e.p("JLE %s_epi", name)
	e.p("CMPQ cellFrame_gates(DI), $0")
	e.p("JNE %s_epi", name)
	for u := 0; u < k.units(); u++ {
		for a := 0; a < k.k.A; a++ {
			e.p("VMOVUPS %s, %d(SP)", k.acc(r, 0, u, a), k.pendOff(u, a))
		}
	}
	e.p("MOVQ $1, %d(SP)", k.pipeFlag())
	e.p("JMP %s_next", name)
	e.raw(name + "_epi:\n")
}

// rowLoop runs CX rows (may be 0) from AX (panel) and SI (inputs).
func (k kernel) rowLoop(e *emitter, r regs, m []int, label string) {
	e.p("TESTQ CX, CX")
	e.p("JZ %s_end", label)
	e.raw(label + ":\n")
	k.body(e, r, m)
	e.p("DECQ CX")
	e.p("JNZ %s", label)
	e.raw(label + "_end:\n")
}

// task t of the pending block's epilogue; the frame's c and ho already
// point at the current block, ustep past the pending one's.
func (k kernel) task(e *emitter, t int) {
	u, a := t/k.unitTasks(), t%k.unitTasks()
	z, tt := "Y8", []string{"Y9", "Y10", "Y11", "Y12"}
	if a < k.unitTasks()-1 {
		ops := sigOps
		if a == 3 {
			ops = tanhOps
		}
		e.p("VMOVUPS %d(SP), %s", k.pendOff(u, a), z)
		for _, op := range ops(z, tt[0], tt[1], tt[2]) {
			e.p("%s", op)
		}
		e.p("VMOVUPS %s, %d(SP)", z, k.pendOff(u, a))
		return
	}
	vb := k.s.vb()
	if k.k == kGRU {
		// n = tanh(nx + r⊙nh), h' = n + z⊙(h - n), h the old state (c)
		e.p("VMOVUPS %d(SP), %s", k.pendOff(u, 1), tt[0])
		e.p("VMOVUPS %d(SP), %s", k.pendOff(u, 2), z)
		e.p("VFMADD231PS %d(SP), %s, %s", k.pendOff(u, 3), tt[0], z)
		for _, op := range tanhOps(z, tt[0], tt[1], tt[2]) {
			e.p("%s", op)
		}
		e.p("MOVQ cellFrame_c(DI), DX")
		e.p("SUBQ cellFrame_ustep(DI), DX")
		e.p("VMOVUPS %d(DX), %s", u*vb, tt[0])
		e.p("VSUBPS %s, %s, %s", z, tt[0], tt[0])
		e.p("VFMADD231PS %d(SP), %s, %s", k.pendOff(u, 0), tt[0], z)
		k.storeHO(e, z, u)
		return
	}
	// c' = f⊙c + i⊙g, h' = o⊙tanh(c')
	e.p("MOVQ cellFrame_c(DI), DX")
	e.p("SUBQ cellFrame_ustep(DI), DX")
	e.p("VMOVUPS %d(DX), %s", u*vb, z)
	e.p("VMULPS %d(SP), %s, %s", k.pendOff(u, 2), z, z)
	e.p("VMOVUPS %d(SP), %s", k.pendOff(u, 0), tt[0])
	e.p("VFMADD231PS %d(SP), %s, %s", k.pendOff(u, 3), tt[0], z)
	e.p("VMOVUPS %s, %d(DX)", z, u*vb)
	for _, op := range tanhOps(z, tt[0], tt[1], tt[2]) {
		e.p("%s", op)
	}
	e.p("VMULPS %d(SP), %s, %s", k.pendOff(u, 1), z, z)
	k.storeHO(e, z, u)
}

// storeHO stores the pending block's unit u of h'.
func (k kernel) storeHO(e *emitter, z string, u int) {
	e.p("MOVQ cellFrame_ho(DI), BX")
	e.p("SUBQ cellFrame_ustep(DI), BX")
	e.p("VMOVUPS %s, %d(BX)", z, u*k.s.vb())
}
