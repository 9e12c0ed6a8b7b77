// Package nn holds the neural-network kernels other than recurrent cells:
// Gemm/MatMul/Einsum, softmax, reductions, arg-reductions, normalisation,
// convolution and pooling.
package nn
