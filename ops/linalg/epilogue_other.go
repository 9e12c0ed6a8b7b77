//go:build !amd64 || purego

package linalg

// apply: no epilogue kernel here (GeluEpilogue is false, so
// SgemmPackedEpi never reaches it with an epi).
func (e *Epilogue) apply(c []float32, ldc, rows, c0, cols int) {
	if e != nil {
		panic("linalg: GELU epilogue without a kernel")
	}
}
