//go:build amd64 && !purego

#include "textflag.h"

// AdamUpdate's element-wise step (adamGo is the reference, computed in the
// same order). One body, ADAM, serves both widths: V are vector registers
// (Y for AVX2, Z for AVX-512); B1, C1, B2, C2, BC, EPS, NLR hold the
// constants in every lane. Pointers: DI p, SI grad, BX m, DX v.
#define ADAM(V0, V1, V2, V3, V4, B1, C1, B2, C2, BC, EPS, NLR) \
	VMOVUPS (SI), V0    \ // g
	VMULPS (BX), B1, V1 \ // m·b1
	VMULPS V0, C1, V2   \ // g·c1
	VADDPS V2, V1, V1   \ // m
	VMOVUPS V1, (BX)    \
	VMULPS (DX), B2, V3 \ // v·b2
	VMULPS V0, C2, V4   \ // c2·g
	VMULPS V0, V4, V4   \ // ·g
	VADDPS V4, V3, V3   \ // v
	VMOVUPS V3, (DX)    \
	VSQRTPS V3, V3      \
	VDIVPS BC, V3, V3   \ // √v / bc2
	VADDPS EPS, V3, V3  \ // + eps
	VDIVPS V3, V1, V1   \ // m / denom
	VMULPS NLR, V1, V1  \ // -lr·
	VADDPS (DI), V1, V1 \
	VMOVUPS V1, (DI)

// ADAMARGS loads the pointers and n, and the constants into every lane
// of B1 … NLR.
#define ADAMARGS(B1, C1, B2, C2, BC, EPS, NLR) \
	MOVQ p+0(FP), DI             \
	MOVQ grad+8(FP), SI          \
	MOVQ m+16(FP), BX            \
	MOVQ v+24(FP), DX            \
	MOVQ n+32(FP), CX            \
	VBROADCASTSS b1+40(FP), B1   \
	VBROADCASTSS c1+44(FP), C1   \
	VBROADCASTSS b2+48(FP), B2   \
	VBROADCASTSS c2+52(FP), C2   \
	VBROADCASTSS bc2+56(FP), BC  \
	VBROADCASTSS eps+60(FP), EPS \
	VBROADCASTSS nlr+64(FP), NLR

// ADAMNEXT advances the four pointers by one vector of W bytes.
#define ADAMNEXT(W) \
	ADDQ W, DI \
	ADDQ W, SI \
	ADDQ W, BX \
	ADDQ W, DX

// func adam8AVX2(p, grad, m, v *float32, n int, b1, c1, b2, c2, bc2, eps, nlr float32)
TEXT ·adam8AVX2(SB), NOSPLIT, $0-68
	ADAMARGS(Y9, Y10, Y11, Y12, Y13, Y14, Y15)
	SHRQ $3, CX

aloop8:
	ADAM(Y0, Y1, Y2, Y3, Y4, Y9, Y10, Y11, Y12, Y13, Y14, Y15)
	ADAMNEXT($32)
	DECQ CX
	JNZ  aloop8
	VZEROUPPER
	RET

// func adam16AVX512(p, grad, m, v *float32, n int, b1, c1, b2, c2, bc2, eps, nlr float32)
TEXT ·adam16AVX512(SB), NOSPLIT, $0-68
	ADAMARGS(Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	SHRQ $4, CX

aloop16:
	ADAM(Z0, Z1, Z2, Z3, Z4, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	ADAMNEXT($64)
	DECQ CX
	JNZ  aloop16
	VZEROUPPER
	RET
