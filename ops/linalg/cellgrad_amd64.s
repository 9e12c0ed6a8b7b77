//go:build amd64 && !purego

#include "textflag.h"

// The element-wise LSTM backward step (LSTMCellGrad; lstmGradGo is the
// reference, computed in the same order). One body, LSTMGRAD, serves both
// widths: V are vector registers (Y for AVX2, Z for AVX-512), ONE holds 1.0
// in every lane; it leaves da_o, da_i, da_f, da_g in V6, V9, V10, V11 for
// PSTORE (LSTMCellGradPack's second store of them). Pointers: AX dh, BX dc, SI gates (i; o, f, g at +R8,
// +2·R8, +R10 bytes), CX c, DX t, DI da (same gate offsets).
#define LSTMGRAD(V0, V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, ONE) \
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
	VSUBPS V2, ONE, V10             \ // 1-f
	VMULPS V10, V2, V10             \ // f(1-f)
	VMULPS (CX), V10, V10           \ // ·c
	VMULPS V8, V10, V10             \ // da_f
	VMOVUPS V10, (DI)(R8*2)         \
	VMULPS V3, V3, V11              \ // g²
	VSUBPS V11, ONE, V11            \ // 1-g²
	VMULPS V11, V0, V11             \ // i(1-g²)
	VMULPS V8, V11, V11             \ // da_g
	VMOVUPS V11, (DI)(R10*1)        \
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

// PSTORE stores da_i, da_o, da_f, da_g (V9, V6, V10, V11) a second time,
// into a packed right-hand matrix (LSTMCellGradPack): R12 points at the
// row in the i gate's first 16-column panel, the o, f and g gates' panels
// are R13, 2·R13 and R14 bytes on, OFF is the byte offset in the panel.
#define PSTORE(OFF, V6, V9, V10, V11) \
	VMOVUPS V9, OFF(R12)         \
	VMOVUPS V6, OFF(R12)(R13*1)  \
	VMOVUPS V10, OFF(R12)(R13*2) \
	VMOVUPS V11, OFF(R12)(R14*1)

// PACKARGS loads the packed matrix's pointer into R12, its gate stride
// (hid·k floats: hid/16 panels of k rows of 16) into R13 and R14 = 3·R13,
// and its panel stride (k rows of 16 floats) into R11, all in bytes.
#define PACKARGS \
	MOVQ pd+64(FP), R12   \
	MOVQ k+72(FP), R11    \
	SHLQ $6, R11          \ // k·16·4: one panel
	MOVQ hid+48(FP), R13  \
	IMULQ R11, R13        \
	SHRQ $4, R13          \ // hid/16 panels
	LEAQ (R13)(R13*2), R14

// func lstmGrad8AVX2(dh, dc, gates, c, t, da *float32, hid, n int)
TEXT ·lstmGrad8AVX2(SB), NOSPLIT, $0-64
	LOADARGS
	VBROADCASTSS X15, Y15
	SHRQ $3, R9

loop8:
	LSTMGRAD(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y15)
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
	LSTMGRAD(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z15)
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

// func lstmGradP16AVX2(dh, dc, gates, c, t, da *float32, hid, n int, pd *float32, k int)
TEXT ·lstmGradP16AVX2(SB), NOSPLIT, $0-80
	LOADARGS
	VBROADCASTSS X15, Y15
	PACKARGS
	SHRQ $4, R9

ploop8:
	LSTMGRAD(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y15)
	PSTORE(0, Y6, Y9, Y10, Y11)
	ADVANCE(32)
	LSTMGRAD(Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y15)
	PSTORE(32, Y6, Y9, Y10, Y11)
	ADVANCE(32)
	ADDQ R11, R12
	DECQ R9
	JNZ  ploop8
	VZEROUPPER
	RET

// func lstmGradP16AVX512(dh, dc, gates, c, t, da *float32, hid, n int, pd *float32, k int)
TEXT ·lstmGradP16AVX512(SB), NOSPLIT, $0-80
	LOADARGS
	VBROADCASTSS X15, Z15
	PACKARGS
	SHRQ $4, R9

ploop16:
	LSTMGRAD(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z15)
	PSTORE(0, Z6, Z9, Z10, Z11)
	ADVANCE(64)
	ADDQ R11, R12
	DECQ R9
	JNZ  ploop16
	VZEROUPPER
	RET
