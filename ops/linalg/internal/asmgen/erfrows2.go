package main

import (
	"fmt"
	"strings"
)

// geluErfRows2AVX2: geluErfRowsAVX2 with two vectors of a row in flight.
// The erf's chain (divide, table look-ups, a degree-7 Horner sum) is
// long, and one vector per loop step left the core waiting on it; here
// the instructions of two neighbouring vectors alternate, each vector
// taking exactly the instructions geluErfRows gives it (erfCompute; the
// bias add is the same VADDPS with the bias read from memory), so the
// results are bit for bit those of geluErfRowsAVX2. A row's odd vector
// and the masked partial one run alone. Registers: two working sets of
// six (erf's q reuses t, dead once u is formed), c, the clamp and the
// abs mask; 1 and ½ are read from the constant table.

func geluRows2Decl() string {
	return "//go:noescape\nfunc geluErfRows2AVX2(x unsafe.Pointer, rows, n, stride int, bias unsafe.Pointer, c float32, variant int)\n\n"
}

func geluRows2Regs(base int) erfRegs {
	v := func(i int) string { return fmt.Sprintf("Y%d", base+i) }
	return erfRegs{abs: "Y15", clamp: "Y14", c: "Y12", one: erfRow(erfRowOne), half: erfRow(erfRowHalf), mask: "Y13",
		x: v(0), t: v(1), q: v(1), idx: v(2), u: v(3), p: v(4), sign: v(5)}
}

// zipLines interleaves two instruction lists line by line.
func zipLines(e *emitter, a, b *emitter) {
	la := strings.SplitAfter(strings.TrimSuffix(a.b.String(), "\n"), "\n")
	lb := strings.SplitAfter(strings.TrimSuffix(b.b.String(), "\n"), "\n")
	for i := 0; i < max(len(la), len(lb)); i++ {
		for _, l := range [][]string{la, lb} {
			if i < len(l) {
				e.raw(strings.TrimSuffix(l[i], "\n") + "\n")
			}
		}
	}
}

func geluRows2Kernel(e *emitter) {
	s := avx2
	ra, rb := geluRows2Regs(0), geluRows2Regs(6)
	const name = "geluErfRows2AVX2"
	erfRowsEntry(e, name, ra.c)
	e.p("VMOVUPS %s, %s", erfRow(erfRowAbs), ra.abs)
	e.p("VMOVUPS %s, %s", erfRow(erfRowClamp), ra.clamp)
	erfRowsSplit(e, s)
	erfAVX2Mask(e, ra.mask)
	erfVariantJump(e, name)
	for v := 0; v < 12; v++ {
		bias := v >= 6
		lbl := fmt.Sprintf("%s_v%d", name, v)
		// one vector at off(DI), bias at off(R10), registers r
		one := func(e *emitter, r erfRegs, off int, masked bool) {
			if masked {
				erfLoad(e, s, r, "(DI)", r.x, true)
				if bias {
					erfLoad(e, s, r, "(R10)", rb.x, true) // rb is free here
					e.p("VADDPS %s, %s, %s", rb.x, r.x, r.x)
				}
				erfCompute(e, s, r, v%6)
				erfStore(e, s, r, true)
				return
			}
			e.p("VMOVUPS %d(DI), %s", off, r.x)
			if bias {
				e.p("VADDPS %d(R10), %s, %s", off, r.x, r.x)
			}
			erfCompute(e, s, r, v%6)
			e.p("VMOVUPS %s, %d(DI)", r.p, off)
		}
		erfRowStart(e, lbl)
		e.p("CMPQ CX, $2")
		e.p("JLT %s_one", lbl)
		e.raw(lbl + "_pair:\n")
		var ea, eb emitter
		one(&ea, ra, 0, false)
		one(&eb, rb, 32, false)
		zipLines(e, &ea, &eb)
		e.p("ADDQ $64, DI")
		e.p("ADDQ $64, R10")
		e.p("SUBQ $2, CX")
		e.p("CMPQ CX, $2")
		e.p("JGE %s_pair", lbl)
		e.raw(lbl + "_one:\n")
		e.p("TESTQ CX, CX")
		e.p("JZ %s_tail", lbl)
		one(e, ra, 0, false)
		e.p("ADDQ $32, DI")
		e.p("ADDQ $32, R10")
		erfRowEnd(e, lbl, name, func() { one(e, ra, 0, true) })
	}
	erfDone(e, name)
}
