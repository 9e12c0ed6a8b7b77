package main

import (
	"fmt"
	"strings"
)

// The AVX2 activations as instruction lists, so one text gives both the
// EXP256/SIG256/TANH256 macros (every AVX2 cell) and the interleaved
// sequences of the two-pass LSTM epilogue (cellspill.go): a row computed
// by either gets the same bits.
//
// exp(z): clamp (z as the second source, so NaN propagates), then
// t1 = z·log2e + M with M = 1.5·2²³ + 127 (one rounding: the low mantissa
// bits of t1 are n + 127, n = round(z·log2e)), n = t1 - M, r = z - n·ln2
// (two parts), 2ⁿ = t1 << 23, and 2ⁿ · (1 + r + r²·P(r)) with P by Estrin's
// scheme (the chain is 4 FMAs long, not 7). The upper clamp 88.0 keeps
// n ≤ 127: 2ⁿ stays finite.
func expOps(z, t1, t2, t3, t4 string) []string {
	return []string{
		"VMINPS " + z + ", Y13, " + z,
		"VMAXPS " + z + ", Y14, " + z,
		"VMOVUPS cellv<>+480(SB), " + t1,
		"VFMADD231PS cellv<>+64(SB), " + z + ", " + t1,
		"VSUBPS cellv<>+480(SB), " + t1 + ", " + t2,
		"VFNMADD231PS cellv<>+96(SB), " + t2 + ", " + z,
		"VFNMADD231PS cellv<>+128(SB), " + t2 + ", " + z,
		"VPSLLD $23, " + t1 + ", " + t1,
		"VMULPS " + z + ", " + z + ", " + t2,
		"VMOVUPS cellv<>+192(SB), " + t3,
		"VFMADD231PS cellv<>+160(SB), " + z + ", " + t3,
		"VMOVUPS cellv<>+256(SB), " + t4,
		"VFMADD231PS cellv<>+224(SB), " + z + ", " + t4,
		"VFMADD213PS " + t4 + ", " + t2 + ", " + t3,
		"VMOVUPS cellv<>+320(SB), " + t4,
		"VFMADD231PS cellv<>+288(SB), " + z + ", " + t4,
		"VFMADD213PS " + t4 + ", " + t2 + ", " + t3,
		"VADDPS Y15, " + z + ", " + t4,
		"VFMADD213PS " + t4 + ", " + t2 + ", " + t3,
		"VMULPS " + t1 + ", " + t3 + ", " + z,
	}
}

// sigOps: z = 1/(1+exp(-z)). The reciprocal is a division, correctly
// rounded: a 12-bit estimate with one Newton step leaves ~2e-7, which
// tanh's 1 - 2/(e+1) turns into an absolute error that small outputs
// notice (ONNX's test_gru_seq_length does).
func sigOps(z, t1, t2, t3, t4 string) []string {
	out := []string{"VXORPS cellv<>+352(SB), " + z + ", " + z}
	out = append(out, expOps(z, t1, t2, t3, t4)...)
	return append(out, "VADDPS Y15, "+z+", "+z, "VDIVPS "+z+", Y15, "+z)
}

// tanhOps: z = tanh(z) = 1 - 2/(exp(2z)+1).
func tanhOps(z, t1, t2, t3, t4 string) []string {
	out := []string{"VADDPS " + z + ", " + z + ", " + z}
	out = append(out, expOps(z, t1, t2, t3, t4)...)
	return append(out, "VADDPS Y15, "+z+", "+z, "VMOVUPS cellv<>+416(SB), "+t1, "VDIVPS "+z+", "+t1+", "+z, "VSUBPS "+z+", Y15, "+z)
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

// avx2Macros are EXP256, SIG256 and TANH256 from the lists above.
func avx2Macros() string {
	var b strings.Builder
	for _, m := range []struct {
		name string
		ops  func(z, t1, t2, t3, t4 string) []string
	}{{"EXP256", expOps}, {"SIG256", sigOps}, {"TANH256", tanhOps}} {
		fmt.Fprintf(&b, "#define %s(z, t1, t2, t3, t4) \\\n\t%s\n\n", m.name,
			strings.Join(m.ops("z", "t1", "t2", "t3", "t4"), " \\\n\t"))
	}
	return b.String()
}
