//go:build amd64 && !purego

#include "textflag.h"

// relu on the bits of Y0 (as Go's max(v, 0)): lanes with the sign set
// become +0, except NaNs, which keep their payload with the sign cleared.
// MAXPS returns its second source (x) unless the first (0) is greater:
// x for NaN and for −0, which clearing the sign bit then makes +0 (and a
// negative NaN positive). Y8 = 0x7fffffff in every lane, Y9 = 0.
#define RELU8 \
	VMAXPS Y0, Y9, Y0 \
	VANDPS Y8, Y0, Y0

#define CONSTS \
	MOVL $0x7fffffff, AX \
	MOVD AX, X8 \
	VPBROADCASTD X8, Y8 \
	VXORPS Y9, Y9, Y9

// func biasRelu8AVX2(x, b unsafe.Pointer, n int)
TEXT ·biasRelu8AVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), DI
	MOVQ b+8(FP), SI
	MOVQ n+16(FP), CX
	CONSTS
	SHRQ $3, CX

brloop:
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	RELU8
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	ADDQ $32, SI
	DECQ CX
	JNZ  brloop
	VZEROUPPER
	RET

// func relu8AVX2(x unsafe.Pointer, n int)
TEXT ·relu8AVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	CONSTS
	SHRQ $3, CX

rloop:
	VMOVUPS (DI), Y0
	RELU8
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	DECQ CX
	JNZ  rloop
	VZEROUPPER
	RET

// func leakyRelu8AVX2(x unsafe.Pointer, n int, alpha float32)
// x[i] = x[i] < 0 ? x[i]·alpha : x[i] (NaN and −0 compare false and stay).
TEXT ·leakyRelu8AVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS alpha+16(FP), Y8
	VXORPS Y9, Y9, Y9
	SHRQ $3, CX

lloop:
	VMOVUPS (DI), Y0
	VMULPS  Y8, Y0, Y1
	VCMPPS  $1, Y9, Y0, Y2 // x < 0, ordered: false for NaN
	VBLENDVPS Y2, Y1, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	DECQ CX
	JNZ  lloop
	VZEROUPPER
	RET
