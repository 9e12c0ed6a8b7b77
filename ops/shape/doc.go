// Package shape holds the kernels that move data without arithmetic:
// reshaping, slicing, gathering, concatenation, padding and friends.
//
// Every kernel is an ops.ArenaOp: outputs, index maps, strides and shape
// scratch come from the executor's arena, so a run at a fixed shape
// allocates nothing; Run is RunWith with a nil arena. Reshape, Flatten,
// Squeeze and Unsqueeze return views sharing the input's data; Constant
// returns its attribute tensor itself. Exceptions that still allocate:
// Split into more than 256 outputs (the result list) and CumSum of
// float16/bfloat16. Integer shape-like inputs (shape, axes, starts, pads,
// ...) of dtype int64 are read in place, never copied.
package shape
