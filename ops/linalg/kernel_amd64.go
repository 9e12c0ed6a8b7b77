//go:build amd64 && !purego

package linalg

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// Kernel names the micro-kernel set in use.
var Kernel = "go"

var useAVX2, useAVX512 bool

func init() {
	useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	useAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL
	switch {
	case useAVX512:
		Kernel = "avx512"
	case useAVX2:
		Kernel = "avx2+fma"
	}
}

//go:noescape
func sgemm6x16AVX2(k int, a, b, c unsafe.Pointer, ldc int)

//go:noescape
func sgemm1x16AVX2(k int, a, b, c unsafe.Pointer)

//go:noescape
func sgemm6x16AVX512(k int, a, b, c unsafe.Pointer, ldc int)

//go:noescape
func sgemm1x16AVX512(k int, a, b, c unsafe.Pointer)

func kernel6x16(k int, a, b, c []float32, ldc int) {
	if k == 0 {
		return
	}
	// bounds the assembly relies on
	_ = a[k*mr-1]
	_ = b[k*nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	switch {
	case useAVX512:
		sgemm6x16AVX512(k, unsafe.Pointer(&a[0]), unsafe.Pointer(&b[0]), unsafe.Pointer(&c[0]), ldc)
	case useAVX2:
		sgemm6x16AVX2(k, unsafe.Pointer(&a[0]), unsafe.Pointer(&b[0]), unsafe.Pointer(&c[0]), ldc)
	default:
		kernel6x16Go(k, a, b, c, ldc)
	}
}

func kernel1x16(k int, a, b, c []float32) {
	if k == 0 {
		return
	}
	_ = a[k-1]
	_ = b[k*nr-1]
	_ = c[nr-1]
	if useAVX512 {
		sgemm1x16AVX512(k, unsafe.Pointer(&a[0]), unsafe.Pointer(&b[0]), unsafe.Pointer(&c[0]))
		return
	}
	if useAVX2 {
		sgemm1x16AVX2(k, unsafe.Pointer(&a[0]), unsafe.Pointer(&b[0]), unsafe.Pointer(&c[0]))
		return
	}
	kernel1x16Go(k, a, b, c)
}

// setKernel forces a kernel set (tests): "go", "avx2+fma" or "avx512".
// It returns a function restoring the previous choice.
func setKernel(name string) (restore func(), ok bool) {
	a2, a5, kn := useAVX2, useAVX512, Kernel
	restore = func() { useAVX2, useAVX512, Kernel = a2, a5, kn }
	switch name {
	case "go":
		useAVX2, useAVX512 = false, false
	case "avx2+fma":
		if !(cpu.X86.HasAVX2 && cpu.X86.HasFMA) {
			return restore, false
		}
		useAVX2, useAVX512 = true, false
	case "avx512":
		if !(cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL) {
			return restore, false
		}
		useAVX2, useAVX512 = cpu.X86.HasAVX2 && cpu.X86.HasFMA, true
	default:
		return restore, false
	}
	Kernel = name
	return restore, true
}

//go:noescape
func sigmoid8AVX2(x unsafe.Pointer, n int)

//go:noescape
func tanh8AVX2(x unsafe.Pointer, n int)

func sigmoidVec(x []float32) {
	n := len(x) &^ 7
	if useAVX2 && n > 0 {
		sigmoid8AVX2(unsafe.Pointer(&x[0]), n)
		sigmoidGo(x[n:])
		return
	}
	sigmoidGo(x)
}

func tanhVec(x []float32) {
	n := len(x) &^ 7
	if useAVX2 && n > 0 {
		tanh8AVX2(unsafe.Pointer(&x[0]), n)
		tanhGo(x[n:])
		return
	}
	tanhGo(x)
}
