package main

import (
	"bytes"
	"fmt"
)

// The Go assembler has mnemonics for few arm64 floating-point vector
// instructions (VFMLA, VFMLS, VDUP, the bitwise and integer ones); the rest
// are emitted as WORD with the instruction in a comment. Every encoding
// here is the single-precision, 128-bit (4S) form.

// fmlaElem encodes FMLA Vd.4S, Vn.4S, Vm.S[i] (single precision, by element).
func fmlaElem(d, n, m, i int) uint32 { return byElem(0x4F801000, d, n, m, i) }

// fmlsElem encodes FMLS Vd.4S, Vn.4S, Vm.S[i].
func fmlsElem(d, n, m, i int) uint32 { return byElem(0x4F805000, d, n, m, i) }

func byElem(op uint32, d, n, m, i int) uint32 {
	return op | uint32(i&1)<<21 | uint32(m>>4&1)<<20 | uint32(m&15)<<16 | uint32(i>>1)<<11 | uint32(n)<<5 | uint32(d)
}

// three-register vector operations: Vd = Vn op Vm.
var ops3 = map[string]uint32{
	"FADD":  0x4E20D400,
	"FSUB":  0x4EA0D400,
	"FMUL":  0x6E20DC00,
	"FDIV":  0x6E20FC00,
	"FMAX":  0x4E20F400, // NaN in either operand gives NaN
	"FMIN":  0x4EA0F400,
	"FCMGT": 0x6EA0E400, // Vn > Vm: all ones, else zero (false for NaN)
	"FCMEQ": 0x4E20E400,
}

// two-register vector operations: Vd = op(Vn).
var ops2 = map[string]uint32{
	"FRINTM": 0x4E219800, // round toward −∞
	"FCVTZS": 0x4EA1B800, // to int32, toward zero
	"FABS":   0x4EA0F800,
	"FNEG":   0x6EA0F800,
}

// faddVec encodes FADD Vd.4S, Vn.4S, Vm.4S.
func faddVec(d, n, m int) uint32 { return enc3("FADD", d, n, m) }

func enc3(op string, d, n, m int) uint32 {
	c, ok := ops3[op]
	if !ok {
		panic("neongen: no encoding for " + op)
	}
	return c | uint32(m)<<16 | uint32(n)<<5 | uint32(d)
}

func enc2(op string, d, n int) uint32 {
	c, ok := ops2[op]
	if !ok {
		panic("neongen: no encoding for " + op)
	}
	return c | uint32(n)<<5 | uint32(d)
}

// emitter collects assembly lines.
type emitter struct{ b bytes.Buffer }

// p writes one instruction line (tab-indented).
func (e *emitter) p(format string, a ...any) { fmt.Fprintf(&e.b, "\t"+format+"\n", a...) }

// raw writes text as is.
func (e *emitter) raw(format string, a ...any) { fmt.Fprintf(&e.b, format, a...) }

func (e *emitter) word(code uint32, format string, a ...any) {
	e.p("WORD\t$0x%08x // "+format, append([]any{code}, a...)...)
}

// op3 emits Vd = Vn op Vm.
func (e *emitter) op3(op string, d, n, m int) {
	e.word(enc3(op, d, n, m), "%s V%d.4S, V%d.4S, V%d.4S", op, d, n, m)
}

// op2 emits Vd = op(Vn).
func (e *emitter) op2(op string, d, n int) {
	e.word(enc2(op, d, n), "%s V%d.4S, V%d.4S", op, d, n)
}

// fmla emits Vd += Vn·Vm.
func (e *emitter) fmla(d, n, m int) { e.p("VFMLA\tV%d.S4, V%d.S4, V%d.S4", m, n, d) }

// fmlaE emits Vd += Vn·Vm.S[i].
func (e *emitter) fmlaE(d, n, m, i int) {
	e.word(fmlaElem(d, n, m, i), "FMLA V%d.4S, V%d.4S, V%d.S[%d]", d, n, m, i)
}

// fmlsE emits Vd -= Vn·Vm.S[i].
func (e *emitter) fmlsE(d, n, m, i int) {
	e.word(fmlsElem(d, n, m, i), "FMLS V%d.4S, V%d.4S, V%d.S[%d]", d, n, m, i)
}

// dupE emits Vd = Vn.S[i] in every lane.
func (e *emitter) dupE(d, n, i int) { e.p("VDUP\tV%d.S[%d], V%d.S4", n, i, d) }

// mov emits Vd = Vn.
func (e *emitter) mov(d, n int) { e.p("VORR\tV%d.B16, V%d.B16, V%d.B16", n, n, d) }

// bit emits Vd = (Vd &^ mask) | (Vn & mask): BIT Vd, Vn, mask.
func (e *emitter) bit(d, n, mask int) { e.p("VBIT\tV%d.B16, V%d.B16, V%d.B16", mask, n, d) }

// regList is [Vfirst.S4, …] of n consecutive registers.
func regList(first, n int) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "V%d.S4", (first+i)%32)
	}
	b.WriteByte(']')
	return b.String()
}
