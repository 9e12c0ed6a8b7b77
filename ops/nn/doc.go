// Package nn holds the neural-network kernels other than recurrent cells:
// Gemm, MatMul, MatMulInteger and Einsum; Softmax and LogSoftmax; the
// Reduce* family and ArgMax/ArgMin; BatchNormalization (inference and
// training mode), LayerNormalization, InstanceNormalization,
// MeanVarianceNormalization and LRN; Conv, ConvInteger, ConvTranspose,
// MaxPool (with Indices), AveragePool and the global pools.
//
// float32 is the hot type: Gemm, MatMul, Conv and ConvTranspose run on the
// packed SIMD SGEMM of ops/linalg with constant weights packed once per
// tensor, and Sgemm exposes the product to other kernel families. Other
// dtypes take typed or float64 loops.
//
// The official ONNX node tests of these ops run with
//
//	go test -tags nnconformance -run NodeCases ./ops/nn/
package nn
