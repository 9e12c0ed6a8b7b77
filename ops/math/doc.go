// Package math holds the element-wise kernels: arithmetic with NumPy
// broadcasting, unary math, activations, comparisons, logic, casts and the
// variadic Max/Min/Sum/Mean.
//
// Every kernel is an ops.ArenaOp: outputs and scratch (broadcast plans and
// index tables, float16 widenings) come from the executor's arena, so a run
// at a fixed shape allocates nothing; Run is RunWith with a nil arena. The
// exceptions are casts from or to strings and Dropout in training mode.
// Identity, Dropout in inference and a Cast to the input's own dtype return
// views that share the input's data. Kernels keep no per-call state, so
// executors may run one kernel concurrently, each with its own arena.
//
// Float32 Sigmoid and Tanh are ops/linalg's vector functions, the ones the
// fused Dense kernel applies, so fusing never changes a result.
package math
