package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/mtlrun/mtlrun/ops/linalg/internal/tanhcoef"
)

// The constants of exp, sigmoid and tanh: activation.go's values (the
// scalar expf and tanhf and the AVX kernels use the same ones; erf's
// table is erf.go's). They
// live four to a register and are used by element (FMLA by element) or
// broadcast with VDUP, so the cells, whose accumulators fill half the
// register file, need only four registers for them.
const (
	cHi    = iota // exp input max
	cLo           // exp input min
	cLog2e        // log2(e)
	cHalf         // 0.5
	cLn2Hi        // ln2, high part
	cLn2Lo        // ln2, low part
	cP0           // exp polynomial p0..p5
	cP1
	cP2
	cP3
	cP4
	cP5
	cOne
	cTwo
	cBias // 127, the exponent bias (integer bits)
	cSign // 0x80000000

	// the activation loops' constants (the cells use only the 16 above)
	cTanhCut // 0.625
	cT0      // tanh odd polynomial t0..t4
	cT1
	cT2
	cT3
	cT4
	nConst
)

// constBits are the 32-bit patterns of the constants, in slot order.
var constBits = func() []uint32 {
	f := func(v float64) uint32 { return math.Float32bits(float32(v)) }
	b := make([]uint32, (nConst+3)/4*4)
	vals := map[int]float64{
		cHi: 88.3762626647949, cLo: -87.3365478515625, cLog2e: 1.44269504088896341, cHalf: 0.5,
		cLn2Hi: 0.693359375, cLn2Lo: -2.12194440e-4,
		cP0: 1.9875691500e-4, cP1: 1.3981999507e-3, cP2: 8.3334519073e-3, cP3: 4.1665795894e-2, cP4: 1.6666665459e-1, cP5: 5.0000001201e-1,
		cOne: 1, cTwo: 2, cTanhCut: 0.625,
		cT0: -5.70498872745e-3, cT1: 2.06390887954e-2, cT2: -5.37397155531e-2, cT3: 1.33314422036e-1, cT4: -3.33332819422e-1,
	}
	for k, v := range vals {
		b[k] = f(v)
	}
	b[cBias] = 127
	b[cSign] = 0x80000000
	return b
}()

// constData is the DATA table neonc<> of every constant.
func constData() string {
	return dataTable("neonc", "exp, sigmoid and tanh constants (activation.go's values), four to\n// a register, used by element", constBits)
}

// dataTable is a read-only table sym<> of 32-bit words, after a comment.
func dataTable(sym, comment string, bits []uint32) string {
	var s strings.Builder
	fmt.Fprintf(&s, "// %s\n", comment)
	for i, v := range bits {
		fmt.Fprintf(&s, "DATA %s<>+%d(SB)/4, $0x%08x\n", sym, 4*i, v)
	}
	fmt.Fprintf(&s, "GLOBL %s<>(SB), RODATA|NOPTR, $%d\n", sym, 4*len(bits))
	return s.String()
}

// mathEmitter emits the activation math with the constants in registers
// cbase, cbase+1, …: slot c is V(cbase + c/4).S[c%4].
type mathEmitter struct {
	*emitter
	cbase int
}

func (m mathEmitter) creg(c int) (int, int) { return m.cbase + c/4, c % 4 }

// dupC sets every lane of Vd to constant c.
func (m mathEmitter) dupC(d, c int) {
	r, i := m.creg(c)
	m.dupE(d, r, i)
}

// fmlaC emits Vd += Vn·c.
func (m mathEmitter) fmlaC(d, n, c int) {
	r, i := m.creg(c)
	m.fmlaE(d, n, r, i)
}

// fmlsC emits Vd -= Vn·c.
func (m mathEmitter) fmlsC(d, n, c int) {
	r, i := m.creg(c)
	m.fmlsE(d, n, r, i)
}

// horner sets acc = P(z) = Σ coef[i]·z^(n-1-i) by Horner's rule, highest
// coefficient first, alternating acc and tmp; it returns the register
// holding the result (acc or tmp).
func (m mathEmitter) horner(acc, tmp, z int, coef ...int) int {
	// acc = coef[0]·z + coef[1]
	m.dupC(acc, coef[1])
	m.fmlaC(acc, z, coef[0])
	for _, c := range coef[2:] {
		m.dupC(tmp, c)
		m.fmla(tmp, acc, z)
		acc, tmp = tmp, acc
	}
	return acc
}

// The cells' σ and tanh (the amd64 cells' rational functions, the same
// operations, so the same bits: internal/asmgen/cellact.go): constants
// in their own table neonr<>, three registers from cbase.
const (
	rHi   = iota // tanh's input clamp, 9
	rLo          // -9
	rHalf        // 0.5
	rOne         // 1 = P0 = Q0
	rP1          // P1..P4
	rP2
	rP3
	rP4
	rQ1 // Q1..Q4
	rQ2
	rQ3
	rQ4
	nRat
)

// ratBits are the neonr<> constants' bit patterns, in slot order.
var ratBits = func() []uint32 {
	clamp := math.Float32frombits(tanhcoef.ClampBits)
	b := []uint32{math.Float32bits(clamp), math.Float32bits(-clamp), math.Float32bits(0.5), math.Float32bits(1)}
	b = append(b, tanhcoef.P[1:]...)
	b = append(b, tanhcoef.Q[1:]...)
	if len(b) != nRat || tanhcoef.P[0] != b[rOne] || tanhcoef.Q[0] != b[rOne] {
		panic("neongen: the rational tanh's constants do not fit the table")
	}
	return b
}()

// ratData is the DATA table neonr<>.
func ratData() string {
	return dataTable("neonr", "the cells' rational σ and tanh (ops/linalg/internal/tanhcoef)", ratBits)
}

// loadRat loads neonr<> into Vbase.. (R2 is clobbered).
func loadRat(e *emitter, base int) {
	e.p("MOVD\t$neonr<>(SB), R2")
	e.p("VLD1\t(R2), %s", regList(base, (nRat+3)/4))
}

// tanhRat sets Vz = tanh(Vz) = z·P(z²)/Q(z²), z clamped to ±9 (FMIN and
// FMAX give NaN for a NaN input); t1..t3 are clobbered. Per element the
// operations of the amd64 cells: u = z·z, P and Q by Horner's rule in
// fused multiply-adds, z·P, one division.
func (m mathEmitter) tanhRat(z, t1, t2, t3 int) {
	m.dupC(t1, rHi)
	m.op3("FMIN", z, z, t1)
	m.dupC(t1, rLo)
	m.op3("FMAX", z, z, t1)
	m.op3("FMUL", t1, z, z) // u
	p := m.horner(t2, t3, t1, rP4, rP3, rP2, rP1, rOne)
	m.op3("FMUL", z, z, p)
	q := m.horner(t2, t3, t1, rQ4, rQ3, rQ2, rQ1, rOne)
	m.op3("FDIV", z, z, q)
}

// sigRat sets Vz = σ(Vz) = 0.5 + 0.5·tanh(z/2): the halving and the
// product by 0.5 are exact, so the one rounding of the sum gives the
// amd64 cells' bits (their σ is tanh's fit scaled by powers of two).
func (m mathEmitter) sigRat(z, t1, t2, t3 int) {
	m.dupC(t1, rHalf)
	m.op3("FMUL", z, z, t1)
	m.tanhRat(z, t1, t2, t3)
	m.dupC(t1, rHalf)
	m.op3("FMUL", z, z, t1)
	m.op3("FADD", z, z, t1)
}

// exp sets Vz = exp(Vz) (the scalar expf): clamp (FMIN/FMAX return NaN for
// a NaN input, so NaN propagates), n = ⌊z·log2e + ½⌋, r = z − n·ln2 in two
// parts, 1 + r + r²·P(r), times 2^n built in the exponent bits. t1..t4 are
// clobbered.
func (m mathEmitter) exp(z, t1, t2, t3, t4 int) {
	m.dupC(t1, cHi)
	m.op3("FMIN", z, z, t1)
	m.dupC(t1, cLo)
	m.op3("FMAX", z, z, t1)
	m.dupC(t1, cHalf)
	m.fmlaC(t1, z, cLog2e)
	m.op2("FRINTM", t1, t1) // n
	m.fmlsC(z, t1, cLn2Hi)
	m.fmlsC(z, t1, cLn2Lo) // r
	p := m.horner(t2, t3, z, cP0, cP1, cP2, cP3, cP4, cP5)
	q := t3
	if p == t3 {
		q = t2
	}
	m.op3("FMUL", q, z, z) // r²
	m.dupC(t4, cOne)
	m.op3("FADD", z, z, t4) // r + 1
	m.fmla(z, p, q)         // + P·r²
	m.op2("FCVTZS", t1, t1)
	m.dupC(t4, cBias)
	m.p("VADD\tV%d.S4, V%d.S4, V%d.S4", t4, t1, t1)
	m.p("VSHL\t$23, V%d.S4, V%d.S4", t1, t1)
	m.op3("FMUL", z, z, t1)
}

// sigmoid sets Vz = 1/(1+exp(−Vz)) (a correctly rounded division).
func (m mathEmitter) sigmoid(z, t1, t2, t3, t4 int) {
	m.op2("FNEG", z, z)
	m.exp(z, t1, t2, t3, t4)
	m.dupC(t1, cOne)
	m.op3("FADD", z, z, t1)
	m.op3("FDIV", z, t1, z)
}

// tanh sets Vx = tanh(Vx) as the scalar tanhf: x + x·z·P(z), z = x², for
// |x| < 0.625, else sign(x)·(1 − 2/(exp(2|x|)+1)). t[0..7] are clobbered.
func (m mathEmitter) tanh(x int, t [8]int) {
	a, f, z, n := t[4], t[5], t[6], t[7]
	m.op2("FABS", a, x)
	m.op3("FADD", f, a, a)
	m.exp(f, t[0], t[1], t[2], t[3])
	m.dupC(t[0], cOne)
	m.op3("FADD", f, f, t[0])
	m.dupC(t[1], cTwo)
	m.op3("FDIV", f, t[1], f)
	m.op3("FSUB", f, t[0], f) // ≥ 0: the sign bit is x's after BIT
	m.dupC(t[2], cSign)
	m.bit(f, x, t[2])
	// near
	m.op3("FMUL", z, x, x)
	p := m.horner(n, t[0], z, cT0, cT1, cT2, cT3, cT4)
	m.op3("FMUL", z, z, x) // x·z
	m.mov(t[1], x)
	m.fmla(t[1], z, p) // x + x·z·P
	m.dupC(t[2], cTanhCut)
	m.op3("FCMGT", t[3], t[2], a) // |x| < 0.625 (false for NaN)
	m.bit(f, t[1], t[3])
	m.mov(x, f)
}

// activations writes sigmoid4NEON, tanh4NEON and erf4NEON(x unsafe.Pointer,
// n int): x[i] = f(x[i]) for i < n, n a positive multiple of 4. The
// constants sit in V22.., the working registers below; erf4NEON is
// erf.go's.
func activations(e *emitter) {
	m := mathEmitter{emitter: e, cbase: 22}
	for _, fn := range []struct {
		name, doc string
		body      func()
	}{
		{"sigmoid4NEON", "1/(1+exp(−x))", func() { m.sigmoid(0, 1, 2, 3, 4) }},
		{"tanh4NEON", "tanh(x) (tanhf's two branches)", func() { m.tanh(0, [8]int{1, 2, 3, 4, 5, 6, 7, 8}) }},
	} {
		e.raw("\n// func %s(x unsafe.Pointer, n int): x[i] = %s for i < n, n a\n// positive multiple of 4.\n", fn.name, fn.doc)
		e.raw("TEXT ·%s(SB), NOSPLIT, $0-16\n", fn.name)
		e.p("MOVD\tx+0(FP), R0")
		e.p("MOVD\tn+8(FP), R1")
		loadConsts(e, 22, (nConst+3)/4)
		e.p("LSR\t$2, R1, R1")
		e.raw("loop:\n")
		e.p("VLD1\t(R0), [V0.S4]")
		fn.body()
		e.p("VST1.P\t[V0.S4], 16(R0)")
		e.p("SUBS\t$1, R1, R1")
		e.p("BNE\tloop")
		e.p("RET")
	}
	erfNEON(e)
}

// loadConsts loads the first n constant registers into Vbase.. (R2 is
// clobbered).
func loadConsts(e *emitter, base, n int) {
	e.p("MOVD\t$neonc<>(SB), R2")
	for i := 0; i < n; i += 4 {
		k := min(4, n-i)
		if i+k < n {
			e.p("VLD1.P\t%d(R2), %s", 16*k, regList(base+i, k))
		} else {
			e.p("VLD1\t(R2), %s", regList(base+i, k))
		}
	}
}
