//go:build amd64 && !purego

package linalg

import "unsafe"

// apply runs the epilogue on rows × cols of C from column c0 (nothing for
// a nil epi).
func (e *Epilogue) apply(c []float32, ldc, rows, c0, cols int) {
	if e == nil || rows == 0 || cols == 0 {
		return
	}
	_ = c[(rows-1)*ldc+c0+cols-1]
	v := 3*boolInt(e.Div) + e.Order
	var bias unsafe.Pointer
	if e.Bias != nil {
		bias = unsafe.Pointer(&e.Bias[c0 : c0+cols][0])
		v += 6
	}
	x := unsafe.Pointer(&c[c0])
	if useAVX512 {
		geluErfRowsAVX512(x, rows, cols, 4*ldc, bias, e.Scale, v)
	} else {
		geluErfRows2AVX2(x, rows, cols, 4*ldc, bias, e.Scale, v)
	}
}
