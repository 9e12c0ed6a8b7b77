//go:build amd64 && !purego

package nn

import (
	"unsafe"

	"github.com/mtlrun/mtlrun/ops/linalg"
)

// The Relu epilogue of Dense in AVX2: the scalar bit-select costs about
// five cycles an element, more than the product that precedes it in a
// 128→64 layer; eight lanes at a time it is nearly free.

// linalg.KernelSet honours MTLRUN_KERNELS (go turns this off too).
var reluAVX2 = linalg.KernelSet() != linalg.SetGo

// biasRelu8AVX2 sets x[i] = relu(x[i] + b[i]) for i < n, n a multiple of 8.
//
//go:noescape
func biasRelu8AVX2(x, b unsafe.Pointer, n int)

// relu8AVX2 sets x[i] = relu(x[i]) for i < n, n a multiple of 8.
//
//go:noescape
func relu8AVX2(x unsafe.Pointer, n int)

// biasAdd is row[x] += bias[x].
func biasAdd(row, bias []float32) {
	bias = bias[:len(row)]
	for x, v := range row {
		row[x] = v + bias[x]
	}
}

// biasRelu is row[x] = relu(row[x] + bias[x]).
func biasRelu(row, bias []float32) {
	bias = bias[:len(row)]
	n := len(row) &^ 7
	if reluAVX2 && n > 0 {
		biasRelu8AVX2(unsafe.Pointer(&row[0]), unsafe.Pointer(&bias[0]), n)
	} else {
		n = 0
	}
	for x := n; x < len(row); x++ {
		row[x] = relu(row[x] + bias[x])
	}
}

// reluSlice is x[i] = relu(x[i]).
func reluSlice(x []float32) {
	n := len(x) &^ 7
	if reluAVX2 && n > 0 {
		relu8AVX2(unsafe.Pointer(&x[0]), n)
	} else {
		n = 0
	}
	for i := n; i < len(x); i++ {
		x[i] = relu(x[i])
	}
}

// leakyRelu8AVX2 sets x[i] = x[i]·alpha where x[i] < 0, for i < n, n a
// multiple of 8.
//
//go:noescape
func leakyRelu8AVX2(x unsafe.Pointer, n int, alpha float32)

// leakyRelu is ops/math's LeakyRelu in place: x·alpha where x < 0.
func leakyRelu(x []float32, alpha float32) {
	n := len(x) &^ 7
	if reluAVX2 && n > 0 {
		leakyRelu8AVX2(unsafe.Pointer(&x[0]), n, alpha)
	} else {
		n = 0
	}
	for i := n; i < len(x); i++ {
		if v := x[i]; v < 0 {
			x[i] = v * alpha
		}
	}
}
