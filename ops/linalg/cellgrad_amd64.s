//go:build amd64 && !purego

#include "textflag.h"

// The element-wise LSTM backward step (LSTMCellGrad; lstmGradGo is the
// reference, computed in the same order). One body, LSTMGRAD, serves both
// widths: V are vector registers (Y for AVX2, Z for AVX-512), ONE holds 1.0
// in every lane. Pointers: AX dh, BX dc, SI gates (i; o, f, g at +R8,
// +2·R8, +R10 bytes), CX c, DX t, DI da (same gate offsets).
#define LSTMGRAD(V0, V1, V2, V3, V4, V5, V6, V7, V8, V9, ONE) \
	VMOVUPS (SI), V0                \ // i
	VMOVUPS (SI)(R8*1), V1          \ // o
	VMOVUPS (SI)(R8*2), V2          \ // f
	VMOVUPS (SI)(R10*1), V3         \ // g
	VMOVUPS (DX), V4                \ // t
	VMOVUPS (AX), V5                \ // dh
	VSUBPS V1, ONE, V6              \ // 1-o
	VMULPS V6, V1, V6               \ // o(1-o)
	VMULPS V4, V5, V7               \ // dh·t
	VMULPS V7, V6, V6               \ // da_o
	VMOVUPS V6, (DI)(R8*1)          \
	VMULPS V4, V4, V7               \ // t²
	VSUBPS V7, ONE, V7              \ // 1-t²
	VMULPS V7, V1, V7               \ // o(1-t²)
	VMULPS V5, V7, V7               \ // ·dh
	VMOVUPS (BX), V8                \
	VADDPS V7, V8, V8               \ // dC
	VSUBPS V0, ONE, V9              \ // 1-i
	VMULPS V9, V0, V9               \ // i(1-i)
	VMULPS V3, V9, V9               \ // ·g
	VMULPS V8, V9, V9               \ // da_i
	VMOVUPS V9, (DI)                \
	VSUBPS V2, ONE, V9              \ // 1-f
	VMULPS V9, V2, V9               \ // f(1-f)
	VMULPS (CX), V9, V9             \ // ·c
	VMULPS V8, V9, V9               \ // da_f
	VMOVUPS V9, (DI)(R8*2)          \
	VMULPS V3, V3, V9               \ // g²
	VSUBPS V9, ONE, V9              \ // 1-g²
	VMULPS V9, V0, V9               \ // i(1-g²)
	VMULPS V8, V9, V9               \ // da_g
	VMOVUPS V9, (DI)(R10*1)         \
	VMULPS V2, V8, V8               \ // dC·f
	VMOVUPS V8, (BX)

// LOADARGS loads the frame into the registers LSTMGRAD uses and n into R9.
#define LOADARGS \
	MOVQ dh+0(FP), AX    \
	MOVQ dc+8(FP), BX    \
	MOVQ gates+16(FP), SI \
	MOVQ c+24(FP), CX    \
	MOVQ t+32(FP), DX    \
	MOVQ da+40(FP), DI   \
	MOVQ hid+48(FP), R8  \
	SHLQ $2, R8          \ // gate stride in bytes
	LEAQ (R8)(R8*2), R10 \
	MOVQ n+56(FP), R9    \
	MOVL $0x3f800000, R11 \
	VMOVD R11, X15

// ADVANCE moves every pointer on by B bytes.
#define ADVANCE(B) \
	ADDQ $B, AX \
	ADDQ $B, BX \
	ADDQ $B, SI \
	ADDQ $B, CX \
	ADDQ $B, DX \
	ADDQ $B, DI

// The LSTM state update c' = f⊙c + i⊙g (LSTMCellState; lstmStateGo is the
// reference). SI gates (i; f and g at +2·R8, +R10 bytes), CX c, DI c'.
#define LSTMSTATE(V0, V1, V2) \
	VMOVUPS (SI)(R8*2), V0 \ // f
	VMULPS (CX), V0, V0    \ // f·c
	VMOVUPS (SI), V1       \ // i
	VMULPS (SI)(R10*1), V1, V1 \ // i·g
	VADDPS V1, V0, V0      \
	VMOVUPS V0, (DI)

#define STATEARGS \
	MOVQ gates+0(FP), SI \
	MOVQ c+8(FP), CX     \
	MOVQ cn+16(FP), DI   \
	MOVQ hid+24(FP), R8  \
	SHLQ $2, R8          \
	LEAQ (R8)(R8*2), R10 \
	MOVQ n+32(FP), R9

// func lstmGrad8AVX2(dh, dc, gates, c, t, da *float32, hid, n int)
TEXT ·lstmGrad8AVX2(SB), NOSPLIT, $0-64
	LOADARGS
	VBROADCASTSS X15, Y15
	SHRQ $3, R9

loop8:
	LSTMGRAD(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y15)
	ADVANCE(32)
	DECQ R9
	JNZ  loop8
	VZEROUPPER
	RET

// func lstmGrad16AVX512(dh, dc, gates, c, t, da *float32, hid, n int)
TEXT ·lstmGrad16AVX512(SB), NOSPLIT, $0-64
	LOADARGS
	VBROADCASTSS X15, Z15
	SHRQ $4, R9

loop16:
	LSTMGRAD(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z15)
	ADVANCE(64)
	DECQ R9
	JNZ  loop16
	VZEROUPPER
	RET

// func lstmState8AVX2(gates, c, cn *float32, hid, n int)
TEXT ·lstmState8AVX2(SB), NOSPLIT, $0-40
	STATEARGS
	SHRQ $3, R9

sloop8:
	LSTMSTATE(Y0, Y1, Y2)
	ADDQ $32, SI
	ADDQ $32, CX
	ADDQ $32, DI
	DECQ R9
	JNZ  sloop8
	VZEROUPPER
	RET

// func lstmState16AVX512(gates, c, cn *float32, hid, n int)
TEXT ·lstmState16AVX512(SB), NOSPLIT, $0-40
	STATEARGS
	SHRQ $4, R9

sloop16:
	LSTMSTATE(Z0, Z1, Z2)
	ADDQ $64, SI
	ADDQ $64, CX
	ADDQ $64, DI
	DECQ R9
	JNZ  sloop16
	VZEROUPPER
	RET
