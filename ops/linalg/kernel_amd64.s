//go:build amd64 && !purego

#include "textflag.h"

// The SGEMM tiles are generated: sgemm_amd64.s (internal/asmgen).

// Constants of the vector exp, sigmoid and tanh (broadcast from memory).
DATA expconst<>+0(SB)/4, $0x42b0c0a5   // 88.3762626647949 (max)
DATA expconst<>+4(SB)/4, $0xc2aeac50   // -87.3365478515625 (min)
DATA expconst<>+8(SB)/4, $0x3fb8aa3b   // log2(e)
DATA expconst<>+12(SB)/4, $0x3f318000  // ln2 hi 0.693359375
DATA expconst<>+16(SB)/4, $0xb95e8083  // ln2 lo -2.12194440e-4
DATA expconst<>+20(SB)/4, $0x39506967  // p0 1.9875691500e-4
DATA expconst<>+24(SB)/4, $0x3ab743ce  // p1 1.3981999507e-3
DATA expconst<>+28(SB)/4, $0x3c088908  // p2 8.3334519073e-3
DATA expconst<>+32(SB)/4, $0x3d2aa9c1  // p3 4.1665795894e-2
DATA expconst<>+36(SB)/4, $0x3e2aaaaa  // p4 1.6666665459e-1
DATA expconst<>+40(SB)/4, $0x3f000000  // p5 5.0000001201e-1
DATA expconst<>+44(SB)/4, $0x3f800000  // 1
DATA expconst<>+48(SB)/4, $0x3f000000  // 0.5
DATA expconst<>+52(SB)/4, $0x0000007f  // 127
DATA expconst<>+56(SB)/4, $0x3f200000  // 0.625 tanh cut
DATA expconst<>+60(SB)/4, $0xbbbaf0ea  // t0 -5.70498872745e-3
DATA expconst<>+64(SB)/4, $0x3ca9134e  // t1 2.06390887954e-2
DATA expconst<>+68(SB)/4, $0xbd5c1e2d  // t2 -5.37397155531e-2
DATA expconst<>+72(SB)/4, $0x3e088393  // t3 1.33314422036e-1
DATA expconst<>+76(SB)/4, $0xbeaaaa99  // t4 -3.33332819422e-1
DATA expconst<>+80(SB)/4, $0x7fffffff  // abs mask
DATA expconst<>+84(SB)/4, $0x80000000  // sign mask
DATA expconst<>+88(SB)/4, $0x40000000  // 2
GLOBL expconst<>(SB), RODATA|NOPTR, $92

// EXP8 computes Y0 = exp(Y0) for 8 lanes; clobbers Y1-Y4. The clamps take
// x as the second source, which x86 returns when either is NaN, so NaN
// propagates.
#define EXP8 \
	VBROADCASTSS expconst<>+0(SB), Y1 \
	VMINPS Y0, Y1, Y0 \
	VBROADCASTSS expconst<>+4(SB), Y1 \
	VMAXPS Y0, Y1, Y0 \
	VBROADCASTSS expconst<>+8(SB), Y1 \
	VBROADCASTSS expconst<>+48(SB), Y2 \
	VFMADD213PS Y2, Y0, Y1 \
	VROUNDPS $1, Y1, Y1 \
	VBROADCASTSS expconst<>+12(SB), Y2 \
	VFNMADD231PS Y2, Y1, Y0 \
	VBROADCASTSS expconst<>+16(SB), Y2 \
	VFNMADD231PS Y2, Y1, Y0 \
	VBROADCASTSS expconst<>+20(SB), Y3 \
	VBROADCASTSS expconst<>+24(SB), Y2 \
	VFMADD213PS Y2, Y0, Y3 \
	VBROADCASTSS expconst<>+28(SB), Y2 \
	VFMADD213PS Y2, Y0, Y3 \
	VBROADCASTSS expconst<>+32(SB), Y2 \
	VFMADD213PS Y2, Y0, Y3 \
	VBROADCASTSS expconst<>+36(SB), Y2 \
	VFMADD213PS Y2, Y0, Y3 \
	VBROADCASTSS expconst<>+40(SB), Y2 \
	VFMADD213PS Y2, Y0, Y3 \
	VMULPS Y0, Y0, Y4 \
	VBROADCASTSS expconst<>+44(SB), Y2 \
	VADDPS Y2, Y0, Y0 \
	VFMADD231PS Y4, Y3, Y0 \
	VCVTPS2DQ Y1, Y1 \
	VPBROADCASTD expconst<>+52(SB), Y2 \
	VPADDD Y2, Y1, Y1 \
	VPSLLD $23, Y1, Y1 \
	VMULPS Y1, Y0, Y0

// func sigmoid8AVX2(x unsafe.Pointer, n int): n a multiple of 8.
TEXT ·sigmoid8AVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	SHRQ $3, CX

sigloop:
	VMOVUPS (DI), Y0
	VBROADCASTSS expconst<>+84(SB), Y5
	VXORPS Y5, Y0, Y0
	EXP8
	VBROADCASTSS expconst<>+44(SB), Y5
	VADDPS Y5, Y0, Y0
	VDIVPS Y0, Y5, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	DECQ CX
	JNZ  sigloop
	VZEROUPPER
	RET

// func tanh8AVX2(x unsafe.Pointer, n int): n a multiple of 8.
TEXT ·tanh8AVX2(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	SHRQ $3, CX

tanhloop:
	VMOVUPS (DI), Y6
	VBROADCASTSS expconst<>+80(SB), Y5
	VANDPS Y5, Y6, Y7                 // |x|
	// far branch: 1 - 2/(exp(2|x|)+1), sign restored
	VADDPS Y7, Y7, Y0
	EXP8
	VBROADCASTSS expconst<>+44(SB), Y5
	VADDPS Y5, Y0, Y0
	VBROADCASTSS expconst<>+88(SB), Y2
	VDIVPS Y0, Y2, Y0
	VSUBPS Y0, Y5, Y0
	VBROADCASTSS expconst<>+84(SB), Y5
	VANDPS Y5, Y6, Y2
	VORPS Y2, Y0, Y0
	// near branch: x + x·z·P(z), z = x²
	VMULPS Y6, Y6, Y8
	VBROADCASTSS expconst<>+60(SB), Y9
	VBROADCASTSS expconst<>+64(SB), Y2
	VFMADD213PS Y2, Y8, Y9
	VBROADCASTSS expconst<>+68(SB), Y2
	VFMADD213PS Y2, Y8, Y9
	VBROADCASTSS expconst<>+72(SB), Y2
	VFMADD213PS Y2, Y8, Y9
	VBROADCASTSS expconst<>+76(SB), Y2
	VFMADD213PS Y2, Y8, Y9
	VMULPS Y8, Y6, Y8
	VFMADD213PS Y6, Y8, Y9
	// choose per lane: |x| < 0.625 → near
	VBROADCASTSS expconst<>+56(SB), Y2
	VCMPPS $1, Y2, Y7, Y3
	VBLENDVPS Y3, Y9, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	DECQ CX
	JNZ  tanhloop
	VZEROUPPER
	RET

// func fmaPeakAVX2(n int): n iterations of 12 independent 8-lane FMAs.
TEXT ·fmaPeakAVX2(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13

peak2:
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y1
	VFMADD231PS Y12, Y13, Y2
	VFMADD231PS Y12, Y13, Y3
	VFMADD231PS Y12, Y13, Y4
	VFMADD231PS Y12, Y13, Y5
	VFMADD231PS Y12, Y13, Y6
	VFMADD231PS Y12, Y13, Y7
	VFMADD231PS Y12, Y13, Y8
	VFMADD231PS Y12, Y13, Y9
	VFMADD231PS Y12, Y13, Y10
	VFMADD231PS Y12, Y13, Y11
	DECQ CX
	JNZ  peak2
	VZEROUPPER
	RET

// func fmaPeakAVX512(n int): n iterations of 12 independent 16-lane FMAs.
TEXT ·fmaPeakAVX512(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13

peak5:
	VFMADD231PS Z12, Z13, Z0
	VFMADD231PS Z12, Z13, Z1
	VFMADD231PS Z12, Z13, Z2
	VFMADD231PS Z12, Z13, Z3
	VFMADD231PS Z12, Z13, Z4
	VFMADD231PS Z12, Z13, Z5
	VFMADD231PS Z12, Z13, Z6
	VFMADD231PS Z12, Z13, Z7
	VFMADD231PS Z12, Z13, Z8
	VFMADD231PS Z12, Z13, Z9
	VFMADD231PS Z12, Z13, Z10
	VFMADD231PS Z12, Z13, Z11
	DECQ CX
	JNZ  peak5
	VZEROUPPER
	RET
