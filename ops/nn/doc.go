// Package nn holds the neural-network kernels other than recurrent cells:
// Gemm, MatMul, MatMulInteger and Einsum; Softmax and LogSoftmax; the
// Reduce* family and ArgMax/ArgMin; BatchNormalization (inference and
// training mode), LayerNormalization, InstanceNormalization,
// MeanVarianceNormalization and LRN; Conv, ConvInteger, ConvTranspose,
// MaxPool (with Indices), AveragePool and the global pools; and
// ai.mtlrun:Dense, the fused product + bias + activation that the
// runtime's fusion pass emits (dense.go), and ai.mtlrun:DenseGroup,
// sibling task heads of one input as one product (densegroup.go), both
// bitwise equal to the nodes they replace.
//
// float32 is the hot type: Gemm, MatMul, Dense, Conv and ConvTranspose run
// on the packed SIMD SGEMM of ops/linalg, with weights packed once when
// the session says they are constant (ops.Config.ConstInputs) and into
// arena scratch on every run otherwise; Sgemm exposes the product to other
// kernel families. Other dtypes take typed or float64 loops.
//
// Most kernels implement ops.ArenaOp: with the executor's arena their
// float32 paths allocate nothing in steady state (arena_test.go checks each
// one). Products and convolutions large enough to pay for it split their
// rows (images, output positions) over Config.Threads goroutines of a
// shared worker pool (parallel.go), with results bitwise independent of the
// thread count.
//
// The official ONNX node tests of these ops run with
//
//	go test -tags nnconformance -run NodeCases ./ops/nn/
package nn
