package main

// Batch 1 on AVX2: the one-row several-chunk kernels (the two halves of
// one packed block) loop over cellFrame_nblk consecutive blocks in one
// call instead of one call per block.
//
// At batch 1 a step streams the whole packed panel (LSTM(256): 1 MB,
// about this L2) through one row's 8 accumulators. One call per 16-unit
// block cost the Go-side call and pointer setup 16 times a step, and each
// block's gate arithmetic (a latency-bound chain) stalled the stream at
// the block boundary with nothing of the next block in flight. The loop
// keeps the pointers in the frame: after a block's epilogue it adds
// cellFrame_pstep to the panel pointer and cellFrame_ustep to init, c, ho
// (and gates, tc, rb when set) and starts the next block. Each block's
// sums and gates are the one-block kernel's, in the same order.
// (Software prefetch of the panel — rows ahead in the k loop, or the next
// block's first rows before the epilogue — measured no faster: the
// hardware prefetcher already follows the stream.)

// loops reports whether the kernel runs cellFrame_nblk blocks per call.
func (k kernel) loops() bool {
	return !k.s.avx512() && k.rows == 1 && k.chunks > 1 && !k.gate
}

// blockTop labels the start of a block of a looping kernel.
func (k kernel) blockTop(e *emitter, name string) {
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
