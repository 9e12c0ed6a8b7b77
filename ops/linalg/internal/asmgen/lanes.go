package main

import "fmt"

// laneTable writes the read-only table name<> of rows 64-byte rows, 16
// float32 lanes each (an AVX-512 vector; AVX2 reads the first 8), lane
// giving each lane's bits.
func laneTable(e *emitter, name string, rows int, lane func(r, l int) uint32) {
	for r := 0; r < rows; r++ {
		for l := 0; l < 16; l++ {
			fmt.Fprintf(&e.b, "DATA %s<>+%d(SB)/4, $0x%08x\n", name, 64*r+4*l, lane(r, l))
		}
	}
	fmt.Fprintf(&e.b, "GLOBL %s<>(SB), RODATA|NOPTR, $%d\n\n", name, 64*rows)
}

// tailSplit divides CX elements into CX whole vectors and R11 lanes of a
// partial last one, and readies that vector's mask: K1 on AVX-512, the
// given register on AVX2, loaded from maskTable (8 lanes of -1 then 8 of
// 0, an assembler address). It clobbers R9, R10 and AX.
func tailSplit(e *emitter, s *isa, maskTable, mask string) {
	e.p("MOVQ CX, R11")
	e.p("ANDQ $%d, R11", s.lanes-1)
	e.p("SHRQ $%d, CX", map[int]int{8: 3, 16: 4}[s.lanes])
	if s.avx512() {
		e.p("MOVQ CX, R10")
		e.p("MOVQ R11, CX")
		e.p("MOVL $1, AX")
		e.p("SHLL CX, AX")
		e.p("DECL AX")
		e.p("KMOVW AX, K1")
		e.p("MOVQ R10, CX")
		return
	}
	e.p("LEAQ %s, R10", maskTable)
	e.p("MOVQ R11, R9")
	e.p("NEGQ R9")
	e.p("VMOVUPS 32(R10)(R9*4), %s", mask)
}
