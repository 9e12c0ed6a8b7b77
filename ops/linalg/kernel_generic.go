//go:build (!amd64 && !arm64) || purego

package linalg

// kernelName is the kernel set in use (KernelSet).
var kernelName = SetGo

func cpuHas(set string) bool { return set == SetGo }

func applyKernelSet(set string) { kernelName = set }

func tileKernel(rows, k int, a []float32, lda int, inter bool, b, c []float32, ldc, cols int) {
	tileGo(rows, k, a, lda, inter, b, c, ldc, cols)
}

func packInPlace() bool { return false }

func setKernel(name string) (restore func(), ok bool) { return func() {}, name == SetGo }

func sigmoidVec(x []float32) { sigmoidGo(x) }

func tanhVec(x []float32) { tanhGo(x) }

// packBlock6 has no assembly here: packA's Go loop does the block.
func packBlock6(d, a []float32, lda, kk int) bool { return false }

func erfVec(x []float32) { erfGo(x) }
