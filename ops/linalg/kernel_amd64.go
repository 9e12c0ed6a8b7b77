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

// tileMask512[c] is the AVX-512 lane mask of c live columns.
var tileMask512 = [17]int32{0, 1, 3, 7, 15, 31, 63, 127, 255, 511, 1023, 2047, 4095, 8191, 16383, 32767, 65535}

// tileKernel computes c[r·ldc+j] += Σ_q A(q, r)·b[q·16+j] for r < rows,
// j < cols ≤ 16, where A(q, r) is a[q·6+r] for an interleaved 6-row
// block (inter) and a[r·lda+q] otherwise. Each element is summed in the
// same order whatever rows, cols and the layout are.
func tileKernel(rows, k int, a []float32, lda int, inter bool, b, c []float32, ldc, cols int) {
	if k == 0 {
		return
	}
	// bounds the assembly relies on
	if inter {
		_ = a[k*mr-1]
	} else {
		_ = a[(rows-1)*lda+k-1]
	}
	_ = b[k*nr-1]
	_ = c[(rows-1)*ldc+cols-1]
	if !useAVX2 {
		tileGo(rows, k, a, lda, inter, b, c, ldc, cols)
		return
	}
	var id int
	var mask unsafe.Pointer
	if useAVX512 {
		id = int(tileIDs[boolInt(inter)*28+rows*4+2+boolInt(cols < nr)])
		mask = unsafe.Pointer(&tileMask512[cols])
	} else {
		w := 2
		if cols <= 8 {
			w = 1
		}
		id = int(tileIDs[56+boolInt(inter)*28+rows*4+(w-1)*2+boolInt(cols < 8*w || w == 1)])
		mask = unsafe.Pointer(&laneTab[16-cols])
	}
	callTile(id, k, unsafe.Pointer(&a[0]), 4*lda, unsafe.Pointer(&b[0]), unsafe.Pointer(&c[0]), 4*ldc, mask)
}

// packInPlace reports whether products skip packing A when it needs no
// scaling or transposing: the AVX2 tiles read six rows where they are,
// which costs less than packing them without AVX-512's shuffles.
func packInPlace() bool { return useAVX2 && !useAVX512 }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
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

// erfVec: the SIMD kernels (erf_amd64.s) cover the whole slice, the last
// partial vector under a mask.
func erfVec(x []float32) {
	switch {
	case len(x) == 0:
	case useAVX512:
		erfAVX512(unsafe.Pointer(&x[0]), len(x))
	case useAVX2:
		erfAVX2(unsafe.Pointer(&x[0]), len(x))
	default:
		erfGo(x)
	}
}
