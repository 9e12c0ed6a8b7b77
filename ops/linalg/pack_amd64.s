//go:build amd64 && !purego

#include "textflag.h"

// func pack6x16AVX512(n int, a unsafe.Pointer, lda int, d unsafe.Pointer, tab *packTab)
// Transposes n blocks of 6 rows × 16 columns of A (row stride lda
// elements) into 96 contiguous floats each, d[q*6+r] = a[r*lda+q]: the
// A-panel layout of the 6×16 micro-kernel. Pure data movement, so the
// result is bit for bit that of the scalar loop. Per block: six loads,
// three two-row interleaves (lo and hi halves: 6 VPERMI2PS), then each
// output vector gathers its rows 0-3 from two interleaved pairs (one
// VPERMI2PS) and rows 4-5 from the third (one masked VPERMPS), six stores.
// tab (see packTab) holds the index vectors and the three lane masks;
// outputs v and v+3 share them, as 16·3 = 48 is a multiple of 6.
TEXT ·pack6x16AVX512(SB), NOSPLIT, $0-40
	MOVQ n+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), DX
	MOVQ d+24(FP), DI
	MOVQ tab+32(FP), AX
	SHLQ $2, DX              // row stride in bytes
	LEAQ (DX)(DX*2), R8      // 3 rows
	LEAQ (DX)(DX*4), R9      // 5 rows

	VMOVUPS 0(AX), Z20       // pair interleave, q 0-7
	VMOVUPS 64(AX), Z21      // pair interleave, q 8-15
	VMOVUPS 128(AX), Z22     // rows 0-3 of output 0 (and 3)
	VMOVUPS 192(AX), Z23     // output 1 (and 4)
	VMOVUPS 256(AX), Z24     // output 2 (and 5)
	VMOVUPS 320(AX), Z25     // rows 4-5 of output 0 (and 3)
	VMOVUPS 384(AX), Z26
	VMOVUPS 448(AX), Z27
	KMOVW 512(AX), K1
	KMOVW 514(AX), K2
	KMOVW 516(AX), K3

	TESTQ CX, CX
	JEQ   done

loop:
	VMOVUPS (SI), Z0
	VMOVUPS (SI)(DX*1), Z1
	VMOVUPS (SI)(DX*2), Z2
	VMOVUPS (SI)(R8*1), Z3
	VMOVUPS (SI)(DX*4), Z4
	VMOVUPS (SI)(R9*1), Z5

	// Z6/Z7 = rows 0,1 interleaved (lane 2j+s = row s, column j / 8+j);
	// Z8/Z9 rows 2,3; Z10/Z11 rows 4,5
	VMOVAPS    Z20, Z6
	VPERMI2PS  Z1, Z0, Z6
	VMOVAPS    Z21, Z7
	VPERMI2PS  Z1, Z0, Z7
	VMOVAPS    Z20, Z8
	VPERMI2PS  Z3, Z2, Z8
	VMOVAPS    Z21, Z9
	VPERMI2PS  Z3, Z2, Z9
	VMOVAPS    Z20, Z10
	VPERMI2PS  Z5, Z4, Z10
	VMOVAPS    Z21, Z11
	VPERMI2PS  Z5, Z4, Z11

	// outputs 0-2 take columns 0-7 (lo pairs), 3-5 columns 8-15 (hi)
	VMOVAPS   Z22, Z12
	VPERMI2PS Z8, Z6, Z12
	VPERMPS   Z10, Z25, K1, Z12
	VMOVAPS   Z23, Z13
	VPERMI2PS Z8, Z6, Z13
	VPERMPS   Z10, Z26, K2, Z13
	VMOVAPS   Z24, Z14
	VPERMI2PS Z8, Z6, Z14
	VPERMPS   Z10, Z27, K3, Z14
	VMOVAPS   Z22, Z15
	VPERMI2PS Z9, Z7, Z15
	VPERMPS   Z11, Z25, K1, Z15
	VMOVAPS   Z23, Z16
	VPERMI2PS Z9, Z7, Z16
	VPERMPS   Z11, Z26, K2, Z16
	VMOVAPS   Z24, Z17
	VPERMI2PS Z9, Z7, Z17
	VPERMPS   Z11, Z27, K3, Z17

	VMOVUPS Z12, 0(DI)
	VMOVUPS Z13, 64(DI)
	VMOVUPS Z14, 128(DI)
	VMOVUPS Z15, 192(DI)
	VMOVUPS Z16, 256(DI)
	VMOVUPS Z17, 320(DI)

	ADDQ $64, SI
	ADDQ $384, DI
	DECQ CX
	JNE  loop

done:
	VZEROUPPER
	RET
