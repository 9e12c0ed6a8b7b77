//go:build amd64 && !purego

package linalg

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// kernelName is the kernel set in use (KernelSet); useAVX2 and useAVX512
// select the assembly. chooseKernelSet sets them once at init, tests switch
// them with setKernel.
var (
	kernelName         = SetGo
	useAVX2, useAVX512 bool
)

// cpuHas reports whether this CPU can run a kernel set.
func cpuHas(set string) bool {
	switch set {
	case SetGo:
		return true
	case SetAVX2:
		return cpu.X86.HasAVX2 && cpu.X86.HasFMA
	case SetAVX512:
		return cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL
	}
	return false
}

// applyKernelSet switches to a set the CPU has.
func applyKernelSet(set string) {
	kernelName = set
	useAVX2 = set == SetAVX2 || set == SetAVX512
	useAVX512 = set == SetAVX512
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

// setKernel forces a kernel set (tests): "go", "avx2" or "avx512", refusing
// one the CPU lacks. It returns a function restoring the previous choice.
func setKernel(name string) (restore func(), ok bool) {
	prev := kernelName
	restore = func() { applyKernelSet(prev) }
	if !cpuHas(name) {
		return restore, false
	}
	applyKernelSet(name)
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
