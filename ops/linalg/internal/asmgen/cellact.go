package main

import (
	"fmt"
	"maps"
	"math"
	"strings"

	"github.com/mtlrun/mtlrun/ops/linalg/internal/tanhcoef"
)

// The cells' activations as instruction lists, so one text gives the
// SIG256/TANH256 and SIG512/TANH512 macros (every cell kernel) and the
// interleaved sequences of the AVX2 two-pass epilogues and gate passes
// (cellspill.go, cellgates.go, cellstream.go). Both sets run the same
// operations in the same order (a clamp, u = x·x, two Horner chains of
// fused multiply-adds, x·P, a correctly rounded division), so σ and tanh
// have the same bits on AVX2 and AVX-512, whichever kernel computes them.
//
// tanh is a rational function, tanh(x) = x·P(x²)/Q(x²) on |x| ≤ 9, P and
// Q of degree 4 (internal/tanhcoef; scripts/fit_tanh.py fits them:
// largest relative error 2.1e-8 in exact arithmetic; in float32, with
// u = x·x, both polynomials by Horner's rule in fused multiply-adds, x·P
// and one division, at most 5.4 ulp, 3.2e-7 absolute, over 3 million
// inputs, so a result can pass ±1 by up to 2 ulp). Beyond ±9 tanh is
// within an ulp of ±1, so the input is clamped there. The sigmoid is the
// same function scaled: σ(x) = 0.5 + 0.5·tanh(x/2) = 0.5 + x·P'(x²)/Q'(x²)
// with P'_k = P_k/4ᵏ and Q'_k = 4·Q_k/4ᵏ (powers of two: exact), the
// input clamped to ±18; largest absolute error 1.7e-7 (σ(-20) comes out
// as -6e-8: outputs can leave [0, 1] by that much). neongen reads
// internal/tanhcoef too: the NEON cells compute 0.5 + 0.5·tanh(x/2) with
// the same operations, so all three sets give the same bits
// (TestCellActivationAccuracy's golden table).
//
// They replaced 1/(1+exp(-x)) and 1 - 2/(exp(2x)+1), exp by range
// reduction: 12 (tanh) or 13 (σ) vector operations per activation
// besides the division and the loads, against 18 on AVX2 and 19 and 21
// on AVX-512 (VSCALEFPS, a 14-bit reciprocal and a Newton step). The
// gate arithmetic is bound by its vector operations: as trials, taking 4
// of the 18 out sped the AVX2 blocked step's gate pass up by 22 % and 3
// of AVX-512's the fused LSTM(256) × 64-row step by 15 %; interleaving
// the AVX-512 activations in pairs or replacing its division by a
// reciprocal and a Newton step gained nothing. The rational tanh is also
// accurate in relative terms near 0, where 1 - 2/(e+1) cancels.
//
// Register operands: the clamps are compared with z as the second
// source, which x86 returns when either is NaN, so NaN propagates. The
// constants come from memory, AVX2 whole vectors (cellv), AVX-512
// broadcast scalars (cellr), except the clamps: Y13-Y15 (GATECONST256;
// σ's lower clamp is loaded into a temporary) and Z28-Z31
// (GATECONST512).

// actConst is one constant of the activations.
type actConst struct {
	name string
	bits uint32
}

// actConstRows are the constants: tanhcoef's fit for tanh, and for σ the
// same coefficients scaled by powers of two (exact), P'_k = P_k/4ᵏ and
// Q'_k = 4·Q_k/4ᵏ, with the clamps doubled.
var actConstRows = func() []actConst {
	f := func(b uint32) float32 { return math.Float32frombits(b) }
	bits := math.Float32bits
	clamp := f(tanhcoef.ClampBits)
	rows := []actConst{{"tanhHi", bits(clamp)}, {"tanhLo", bits(-clamp)}, {"sigHi", bits(2 * clamp)}, {"sigLo", bits(-2 * clamp)}, {"half", bits(0.5)}}
	for _, poly := range []struct {
		name  string
		c     [5]uint32
		scale float32
	}{{"P", tanhcoef.P, 1}, {"Q", tanhcoef.Q, 4}} {
		for k, b := range poly.c {
			rows = append(rows, actConst{fmt.Sprintf("tanh%s%d", poly.name, k), b})
		}
		for k, b := range poly.c {
			rows = append(rows, actConst{fmt.Sprintf("sig%s%d", poly.name, k), bits(poly.scale * f(b) / float32(math.Pow(4, float64(k))))})
		}
	}
	return rows
}()

func actIndex(name string) int {
	for i, c := range actConstRows {
		if c.name == name {
			return i
		}
	}
	panic("asmgen: no activation constant " + name)
}

// cv is the named constant as an AVX2 memory operand: an 8-lane cellv row.
func cv(name string) string { return fmt.Sprintf("cellv<>+%d(SB)", 32*actIndex(name)) }

// actSet is how one instruction set reads the constants.
type actSet struct {
	mem  func(name string) string // a constant as a memory operand
	load string                   // moves a memory constant into a register
	bcst string                   // suffix of an arithmetic instruction with a memory constant
	regs map[string]string        // the constants held in registers (the clamps, at least)
}

var (
	act256 = actSet{mem: cv, load: "VMOVUPS", regs: map[string]string{"tanhHi": "Y13", "tanhLo": "Y14", "sigHi": "Y15"}}
	act512 = actSet{mem: func(name string) string { return fmt.Sprintf("cellr<>+%d(SB)", 4*actIndex(name)) },
		load: "VBROADCASTSS", bcst: ".BCST", regs: map[string]string{"tanhHi": "Z28", "tanhLo": "Z29", "sigHi": "Z30", "sigLo": "Z31"}}
)

// holding is a with more constants held in registers (name → register).
func (a actSet) holding(more map[string]string) actSet {
	regs := maps.Clone(a.regs)
	maps.Copy(regs, more)
	a.regs = regs
	return a
}

// loadOp moves the named constant into register t.
func (a actSet) loadOp(name, t string) string {
	if r, ok := a.regs[name]; ok {
		return "VMOVAPS " + r + ", " + t
	}
	return a.load + " " + a.mem(name) + ", " + t
}

// arith is op with the named constant as its first source: a register
// if held, else memory (with the set's broadcast suffix).
func (a actSet) arith(op, name, rest string) string {
	if r, ok := a.regs[name]; ok {
		return op + " " + r + ", " + rest
	}
	return op + a.bcst + " " + a.mem(name) + ", " + rest
}

// clampOps: z = min(hi, max(lo, z)), a clamp held nowhere loaded into t.
func (a actSet) clampOps(prefix, z, t string) []string {
	var out []string
	for _, c := range []struct{ op, name string }{{"VMINPS", prefix + "Hi"}, {"VMAXPS", prefix + "Lo"}} {
		r, ok := a.regs[c.name]
		if !ok {
			out = append(out, a.loadOp(c.name, t))
			r = t
		}
		out = append(out, c.op+" "+z+", "+r+", "+z)
	}
	return out
}

// rationalOps: z = z·P(z²)/Q(z²) with the named coefficients (prefix P0…P4,
// Q0…Q4), z already clamped; the two Horner chains interleaved.
func (a actSet) rationalOps(prefix, z, t1, t2, t3 string) []string {
	out := []string{
		"VMULPS " + z + ", " + z + ", " + t1,
		a.loadOp(prefix+"P4", t2),
		a.loadOp(prefix+"Q4", t3),
	}
	for k := 3; k >= 0; k-- {
		out = append(out,
			a.arith("VFMADD213PS", fmt.Sprintf("%sP%d", prefix, k), t1+", "+t2),
			a.arith("VFMADD213PS", fmt.Sprintf("%sQ%d", prefix, k), t1+", "+t3))
	}
	return append(out, "VMULPS "+z+", "+t2+", "+t2, "VDIVPS "+t3+", "+t2+", "+z)
}

// sig: z = σ(z) (see above); t1-t3 are temporaries.
func (a actSet) sig(z, t1, t2, t3 string) []string {
	out := append(a.clampOps("sig", z, t1), a.rationalOps("sig", z, t1, t2, t3)...)
	return append(out, a.arith("VADDPS", "half", z+", "+z))
}

// tanh: z = tanh(z).
func (a actSet) tanh(z, t1, t2, t3 string) []string {
	return append(a.clampOps("tanh", z, t1), a.rationalOps("tanh", z, t1, t2, t3)...)
}

// sigOps and tanhOps are the AVX2 lists, which the AVX2 kernels
// interleave.
func sigOps(z, t1, t2, t3 string) []string  { return act256.sig(z, t1, t2, t3) }
func tanhOps(z, t1, t2, t3 string) []string { return act256.tanh(z, t1, t2, t3) }

// interleave merges instruction lists round-robin: independent chains
// side by side, so the out-of-order scheduler holds the next steps of
// all of them rather than the whole of one.
func interleave(lists ...[]string) []string {
	var out []string
	for i := 0; ; i++ {
		more := false
		for _, l := range lists {
			if i < len(l) {
				out = append(out, l[i])
				more = true
			}
		}
		if !more {
			return out
		}
	}
}

// actMacros are SIG256/TANH256(z, t1, t2, t3) and SIG512/TANH512(z)
// (temporaries Z25-Z27) from the lists above, and GATECONST256 and
// GATECONST512, which load their register clamps.
func actMacros() string {
	var b strings.Builder
	for _, m := range []struct {
		name, args string
		ops        []string
	}{
		{"SIG256", "z, t1, t2, t3", act256.sig("z", "t1", "t2", "t3")},
		{"TANH256", "z, t1, t2, t3", act256.tanh("z", "t1", "t2", "t3")},
		{"SIG512", "z", act512.sig("z", "Z25", "Z26", "Z27")},
		{"TANH512", "z", act512.tanh("z", "Z25", "Z26", "Z27")},
	} {
		fmt.Fprintf(&b, "#define %s(%s) \\\n\t%s\n\n", m.name, m.args, strings.Join(m.ops, " \\\n\t"))
	}
	for _, g := range []struct {
		name string
		a    actSet
	}{{"GATECONST256", act256}, {"GATECONST512", act512}} {
		fmt.Fprintf(&b, "// the clamps in registers, loaded after the multiply-adds\n#define %s", g.name)
		for _, c := range actConstRows {
			if r, ok := g.a.regs[c.name]; ok {
				fmt.Fprintf(&b, " \\\n\t%s %s, %s", g.a.load, g.a.mem(c.name), r)
			}
		}
		b.WriteString("\n\n")
	}
	return b.String()
}

// actConsts are the constants as 8-lane vectors for AVX2 (cellv, 32
// bytes a row) and as scalars for AVX-512's broadcasts (cellr).
var actConsts = func() string {
	var b strings.Builder
	b.WriteString("// the activations' constants (internal/asmgen/cellact.go): 8-lane vectors for AVX2, scalars for AVX-512\n")
	for i, c := range actConstRows {
		for l := 0; l < 8; l++ {
			fmt.Fprintf(&b, "DATA cellv<>+%d(SB)/4, $0x%08x\n", 32*i+4*l, c.bits)
		}
	}
	fmt.Fprintf(&b, "GLOBL cellv<>(SB), RODATA|NOPTR, $%d\n", 32*len(actConstRows))
	for i, c := range actConstRows {
		fmt.Fprintf(&b, "DATA cellr<>+%d(SB)/4, $0x%08x // %s\n", 4*i, c.bits, c.name)
	}
	fmt.Fprintf(&b, "GLOBL cellr<>(SB), RODATA|NOPTR, $%d\n\n", 4*len(actConstRows))
	return b.String()
}()
