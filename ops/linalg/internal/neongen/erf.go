package main

import (
	"math"

	"github.com/mtlrun/mtlrun/ops/linalg/internal/erfcoef"
)

// erfNEON writes erf4NEON(x unsafe.Pointer, n int), n a positive multiple
// of 4: the AVX kernels' erf (internal/erfcoef), with TBL for their
// VPERMPS. sign(x)·p_k(|x| - m_k), |x| clamped below 4 (FMIN returns NaN
// for NaN), k = ⌊2|x|⌋ (FCVTZS: NaN gives 0), p_k by Horner's rule with
// each lane's coefficients looked up by k in 8-entry (two-register)
// tables, all nine kept in V14..V31.
//
// erfn<>: the tables (coefficient j at 32·j, the midpoints at 256), then
// the clamp, the byte pattern replicating each lane's low byte, the byte
// offsets 0, 1, 2, 3 of each lane and the sign bit, four lanes each.
func erfNEON(e *emitter) {
	var words []uint32
	for j := 0; j < 8; j++ {
		words = append(words, erfcoef.Coef[j][:]...)
	}
	for _, m := range erfcoef.Mid {
		words = append(words, math.Float32bits(m))
	}
	for l := 0; l < 4; l++ {
		words = append(words, erfcoef.ClampBits)
	}
	for l := 0; l < 4; l++ { // replicate: lane l's bytes all index byte 4l
		words = append(words, uint32(4*l)*0x01010101)
	}
	for l := 0; l < 4; l++ {
		words = append(words, 0x03020100)
	}
	for l := 0; l < 4; l++ {
		words = append(words, 0x80000000)
	}
	e.raw("\n// erf4NEON's tables and constants (internal/erfcoef)\n")
	for i, w := range words {
		e.raw("DATA erfn<>+%d(SB)/4, $0x%08x\n", 4*i, w)
	}
	e.raw("GLOBL erfn<>(SB), RODATA|NOPTR, $%d\n", 4*len(words))

	const (
		x, a, idx, u     = 0, 1, 2, 3
		clamp, rep, offs = 10, 11, 12
		sign             = 13
		tab0             = 14 // coefficient j in V(14+2j), V(15+2j); midpoints V30, V31
	)
	tbl := func(d, t int) {
		e.p("VTBL\tV%d.B16, [V%d.B16, V%d.B16], V%d.B16", idx, t, t+1, d)
	}
	e.raw("\n// func erf4NEON(x unsafe.Pointer, n int): x[i] = erf(x[i]) for i < n, n a\n// positive multiple of 4 (as erff: the table of internal/erfcoef).\n")
	e.raw("TEXT ·erf4NEON(SB), NOSPLIT, $0-16\n")
	e.p("MOVD\tx+0(FP), R0")
	e.p("MOVD\tn+8(FP), R1")
	e.p("MOVD\t$erfn<>(SB), R2")
	for r := tab0; r < 30; r += 4 {
		e.p("VLD1.P\t64(R2), %s", regList(r, 4))
	}
	e.p("VLD1.P\t32(R2), %s", regList(30, 2))
	e.p("VLD1\t(R2), %s", regList(clamp, 4))
	e.p("LSR\t$2, R1, R1")
	e.raw("erfloop:\n")
	e.p("VLD1\t(R0), [V%d.S4]", x)
	e.op2("FABS", a, x)
	e.op3("FMIN", a, a, clamp)
	e.op3("FADD", idx, a, a)
	e.op2("FCVTZS", idx, idx) // k
	e.p("VSHL\t$2, V%d.S4, V%d.S4", idx, idx)
	// every byte of a lane = 4k, plus 0..3: the lane's four table bytes
	e.p("VTBL\tV%d.B16, [V%d.B16], V%d.B16", rep, idx, idx)
	e.p("VORR\tV%d.B16, V%d.B16, V%d.B16", offs, idx, idx)
	tbl(u, 30)
	e.op3("FSUB", u, a, u) // u = |x| - m_k
	p, q := 4, 5
	tbl(p, tab0+2*7)
	for j := 6; j >= 0; j-- {
		tbl(q, tab0+2*j)
		e.fmla(q, p, u) // q = c_j + p·u
		p, q = q, p
	}
	e.bit(p, x, sign) // x's sign (p ≥ 0)
	e.p("VST1.P\t[V%d.S4], 16(R0)", p)
	e.p("SUBS\t$1, R1, R1")
	e.p("BNE\terfloop")
	e.p("RET")
}
