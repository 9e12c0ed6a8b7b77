package main

import "fmt"

// geluErfRows<set>: the one-pass GELU (erf form) over a strided block of
// rows, optionally adding a bias row first: the SGEMM's epilogue, applied
// to a column strip of C right after its sums are complete, while the
// strip is still in L1 (linalg.Epilogue). Each vector takes the
// instructions geluErf<set> gives it (and the bias add is the one VADDPS
// a separate bias pass would do), so the results are those of the bias
// pass followed by the one-pass GELU, bit for bit.
//
// variant = 3·div + order as for geluErf, plus 6 when bias is added.

func geluRowsDecl(s *isa) string {
	return fmt.Sprintf("//go:noescape\nfunc geluErfRows%s(x unsafe.Pointer, rows, n, stride int, bias unsafe.Pointer, c float32, variant int)\n\n", s.suffix)
}

// geluRowsKernel emits geluErfRows<set>: per row, the whole vectors of n,
// then one masked vector for the rest; rows are stride bytes apart.
func geluRowsKernel(e *emitter, s *isa) {
	r := erfRegsOf(s)
	name := "geluErfRows" + s.suffix
	erfRowsEntry(e, name, r.c)
	load := func(row int, dst string) { e.p("VMOVUPS %s, %s", erfRow(row), dst) }
	load(erfRowAbs, r.abs)
	load(erfRowClamp, r.clamp)
	load(erfRowOne, r.one)
	load(erfRowHalf, r.half)
	erfRowsSplit(e, s)
	if s.avx512() {
		e.p("MOVQ R11, CX")
		e.p("MOVL $1, DX")
		e.p("SHLL CX, DX")
		e.p("DECL DX")
		e.p("KMOVW DX, K1")
	} else {
		erfAVX2Mask(e, r.mask)
	}
	erfVariantJump(e, name)
	bv := fmt.Sprintf("%s7", s.reg) // the bias vector
	for v := 0; v < 12; v++ {
		bias := v >= 6
		lbl := fmt.Sprintf("%s_v%d", name, v)
		erfRowStart(e, lbl)
		e.p("TESTQ CX, CX")
		e.p("JZ %s_tail", lbl)
		e.raw(lbl + "_loop:\n")
		step := func(masked bool) {
			erfLoad(e, s, r, "(DI)", r.x, masked)
			if bias {
				erfLoad(e, s, r, "(R10)", bv, masked)
				e.p("VADDPS %s, %s, %s", bv, r.x, r.x)
			}
			erfCompute(e, s, r, v%6)
			erfStore(e, s, r, masked)
		}
		step(false)
		e.p("ADDQ $%d, DI", s.vb())
		e.p("ADDQ $%d, R10", s.vb())
		e.p("DECQ CX")
		e.p("JNZ %s_loop", lbl)
		erfRowEnd(e, lbl, name, func() { step(true) })
	}
	erfDone(e, name)
}

// erfRowStart starts variant lbl's code and each of its rows: DI walks
// the row from AX, R10 the bias from SI, CX counts its whole vectors.
func erfRowStart(e *emitter, lbl string) {
	e.raw(lbl + ":\n")
	e.raw(lbl + "_row:\n")
	e.p("MOVQ AX, DI")
	e.p("MOVQ SI, R10")
	e.p("MOVQ R13, CX")
}

// erfRowEnd ends a row of an erf/GELU rows kernel: its masked last
// vector when R11 says there is one (masked), then the next row (AX +=
// R12) while BX counts rows, then on to name_done.
func erfRowEnd(e *emitter, lbl, name string, masked func()) {
	e.raw(lbl + "_tail:\n")
	e.p("TESTQ R11, R11")
	e.p("JZ %s_next", lbl)
	masked()
	e.raw(lbl + "_next:\n")
	e.p("ADDQ R12, AX")
	e.p("DECQ BX")
	e.p("JNZ %s_row", lbl)
	e.p("JMP %s_done", name)
}

// erfRowsEntry starts a rows kernel (x, rows, n, stride, bias, c,
// variant): AX the row, BX the rows, CX n, R12 the stride, SI the bias, R8
// the variant, c broadcast into register c.
func erfRowsEntry(e *emitter, name, c string) {
	e.raw(fmt.Sprintf("// func %s(x unsafe.Pointer, rows, n, stride int, bias unsafe.Pointer, c float32, variant int)\nTEXT ·%s(SB), NOSPLIT, $0-56\n", name, name))
	e.p("MOVQ x+0(FP), AX") // row start
	e.p("MOVQ rows+8(FP), BX")
	e.p("MOVQ n+16(FP), CX")
	e.p("MOVQ stride+24(FP), R12")
	e.p("MOVQ bias+32(FP), SI")
	e.p("VBROADCASTSS c+40(FP), %s", c)
	e.p("MOVQ variant+48(FP), R8")
}

// erfRowsSplit splits n (CX) into whole vectors per row (R13) and the
// partial vector's lanes (R11).
func erfRowsSplit(e *emitter, s *isa) {
	e.p("MOVQ CX, R11")
	e.p("ANDQ $%d, R11", s.lanes-1) // the partial vector's lanes
	e.p("SHRQ $%d, CX", map[int]int{8: 3, 16: 4}[s.lanes])
	e.p("MOVQ CX, R13") // whole vectors per row
}

// erfAVX2Mask loads into mask the AVX2 lane mask of a row's last R11
// lanes.
func erfAVX2Mask(e *emitter, mask string) {
	e.p("LEAQ %s, R10", erfRow(erfRowMask))
	e.p("MOVQ R11, R9")
	e.p("NEGQ R9")
	e.p("VMOVUPS 32(R10)(R9*4), %s", mask)
}

// erfVariantJump leaves a rows kernel with no rows (BX) and jumps to the
// code of variant R8 (0 falls through to name_v0).
func erfVariantJump(e *emitter, name string) {
	e.p("TESTQ BX, BX")
	e.p("JZ %s_done", name)
	for v := 1; v < 12; v++ {
		e.p("CMPQ R8, $%d", v)
		e.p("JEQ %s_v%d", name, v)
	}
}

// erfDone is a rows kernel's common exit.
func erfDone(e *emitter, name string) {
	e.raw(name + "_done:\n")
	e.p("VZEROUPPER")
	e.p("RET")
	e.raw("\n")
}
