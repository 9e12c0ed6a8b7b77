package main

import (
	"fmt"
	"strings"
)

// The AVX2 activations as instruction lists, so one text gives both the
// SIG256/TANH256 macros (every AVX2 cell) and the interleaved sequences
// of the two-pass epilogues and gate passes (cellspill.go, cellgates.go,
// cellstream.go): a row computed by any of them gets the same bits.
//
// tanh is a rational function, tanh(x) = x·P(x²)/Q(x²) on |x| ≤ 9, P and
// Q of degree 4 (scripts/fit_tanh.py fits them: largest relative error
// 2.1e-8 in exact arithmetic; in float32, with u = x·x, both polynomials
// by Horner's rule in fused multiply-adds, x·P and one division, at most
// 5.4 ulp, 3.2e-7 absolute, over 3 million inputs, so a result can pass
// ±1 by up to 2 ulp). Beyond ±9 tanh is within an ulp of ±1, so the input
// is clamped there. The sigmoid is the same function scaled:
// σ(x) = 0.5 + 0.5·tanh(x/2) = 0.5 + x·P'(x²)/Q'(x²) with P'_k = P_k/4ᵏ
// and Q'_k = 4·Q_k/4ᵏ (powers of two: exact), the input clamped to ±18;
// largest absolute error 1.7e-7.
//
// It replaced 1/(1+exp(-x)) and 1 - 2/(exp(2x)+1), exp by range
// reduction: 12 (tanh) or 13 (σ) vector operations per activation
// besides the division and the loads, against 18. The gate arithmetic is
// bound by the vector ports (taking 4 of the 18 out, as a trial, sped the
// blocked step's gate pass up by 22 %; this change by 17 %, LSTM(256) ×
// 64 rows, Intel Xeon), and the rational tanh is also accurate in
// relative terms near 0, where 1 - 2/(e+1) cancels.
//
// Register operands: the clamps are compared with z as the second
// source, which x86 returns when either is NaN, so NaN propagates. The
// constants come from memory (cellv) except the clamps in Y13-Y15
// (GATECONST256).

// avx2Const is one 8-lane row of cellv.
type avx2Const struct {
	name string
	bits uint32
}

var avx2ConstRows = []avx2Const{
	{"tanhHi", 0x41100000}, // 9
	{"tanhLo", 0xc1100000}, // -9
	{"sigHi", 0x41900000},  // 18
	{"sigLo", 0xc1900000},  // -18
	{"half", 0x3f000000},
	// scripts/fit_tanh.py: P0…P4 and Q0…Q4 of tanh, then of σ
	{"tanhP0", 0x3f800000}, {"tanhP1", 0x3e090592}, {"tanhP2", 0x3b651656}, {"tanhP3", 0x37ace1dc}, {"tanhP4", 0x32656eeb},
	{"tanhQ0", 0x3f800000}, {"tanhQ1", 0x3eef2d6e}, {"tanhQ2", 0x3cd3fc03}, {"tanhQ3", 0x39ac432b}, {"tanhQ4", 0x3550c070},
	{"sigP0", 0x3f800000}, {"sigP1", 0x3d090592}, {"sigP2", 0x39651656}, {"sigP3", 0x34ace1dc}, {"sigP4", 0x2e656eeb},
	{"sigQ0", 0x40800000}, {"sigQ1", 0x3eef2d6e}, {"sigQ2", 0x3bd3fc03}, {"sigQ3", 0x37ac432b}, {"sigQ4", 0x3250c070},
}

// cv is the memory operand of the named cellv row.
func cv(name string) string {
	for i, c := range avx2ConstRows {
		if c.name == name {
			return fmt.Sprintf("cellv<>+%d(SB)", 32*i)
		}
	}
	panic("asmgen: no cellv row " + name)
}

// gateConstRegs are the cellv rows GATECONST256 holds in Y13-Y15.
var gateConstRegs = []struct{ name, reg string }{{"tanhHi", "Y13"}, {"tanhLo", "Y14"}, {"sigHi", "Y15"}}

// rationalOps: z = z·P(z²)/Q(z²) with the named coefficients (prefix P0…P4,
// Q0…Q4), z already clamped; the two Horner chains interleaved.
func rationalOps(prefix, z, t1, t2, t3 string) []string {
	out := []string{
		"VMULPS " + z + ", " + z + ", " + t1,
		"VMOVUPS " + cv(prefix+"P4") + ", " + t2,
		"VMOVUPS " + cv(prefix+"Q4") + ", " + t3,
	}
	for k := 3; k >= 0; k-- {
		out = append(out,
			fmt.Sprintf("VFMADD213PS %s, %s, %s", cv(fmt.Sprintf("%sP%d", prefix, k)), t1, t2),
			fmt.Sprintf("VFMADD213PS %s, %s, %s", cv(fmt.Sprintf("%sQ%d", prefix, k)), t1, t3))
	}
	return append(out, "VMULPS "+z+", "+t2+", "+t2, "VDIVPS "+t3+", "+t2+", "+z)
}

// sigOps: z = σ(z) (see above); t1-t3 are temporaries.
func sigOps(z, t1, t2, t3 string) []string {
	out := []string{
		"VMINPS " + z + ", Y15, " + z,
		"VMOVUPS " + cv("sigLo") + ", " + t1,
		"VMAXPS " + z + ", " + t1 + ", " + z,
	}
	out = append(out, rationalOps("sig", z, t1, t2, t3)...)
	return append(out, "VADDPS "+cv("half")+", "+z+", "+z)
}

// tanhOps: z = tanh(z).
func tanhOps(z, t1, t2, t3 string) []string {
	out := []string{"VMINPS " + z + ", Y13, " + z, "VMAXPS " + z + ", Y14, " + z}
	return append(out, rationalOps("tanh", z, t1, t2, t3)...)
}

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

// avx2Macros are SIG256 and TANH256 from the lists above, and
// GATECONST256, which loads their clamps into Y13-Y15.
func avx2Macros() string {
	var b strings.Builder
	for _, m := range []struct {
		name string
		ops  func(z, t1, t2, t3 string) []string
	}{{"SIG256", sigOps}, {"TANH256", tanhOps}} {
		fmt.Fprintf(&b, "#define %s(z, t1, t2, t3) \\\n\t%s\n\n", m.name,
			strings.Join(m.ops("z", "t1", "t2", "t3"), " \\\n\t"))
	}
	b.WriteString("// the AVX2 gate constants (Y13-Y15), loaded after the multiply-adds\n#define GATECONST256")
	for _, c := range gateConstRegs {
		fmt.Fprintf(&b, " \\\n\tVMOVUPS %s, %s", cv(c.name), c.reg)
	}
	b.WriteString("\n")
	return b.String()
}

// avx2Consts is cellv: the rows above as 8-lane vectors (32 bytes each).
var avx2Consts = func() string {
	var b strings.Builder
	b.WriteString("// the AVX2 activations' constants as 8-lane vectors (internal/asmgen/cellact.go)\n")
	for i, c := range avx2ConstRows {
		for l := 0; l < 8; l++ {
			fmt.Fprintf(&b, "DATA cellv<>+%d(SB)/4, $0x%08x\n", 32*i+4*l, c.bits)
		}
	}
	fmt.Fprintf(&b, "GLOBL cellv<>(SB), RODATA|NOPTR, $%d\n", 32*len(avx2ConstRows))
	return b.String()
}()
