// Package rnn holds the recurrent kernels LSTM, GRU and RNN with every
// ONNX attribute: directions, layouts, sequence lengths, initial states,
// peepholes, clipping and activations.
//
// Structure of a Run (float32 and float64 share the generic code):
//
//   - Fused path (float32 LSTM without peepholes or input_forget, GRU and
//     RNN, default activations, no clip, when the kernel set is avx512,
//     avx2 or neon, see linalg.KernelSet): each
//     time step is one call of ops/linalg's fused cell (two passes for GRU
//     with linear_before_reset=0, whose h gate needs all of r⊙h first). Per
//     tile of 16 (AVX-512) or 8 (AVX2; NEON LSTM/GRU, 16 for its RNN) hidden units and up to four batch
//     rows it multiplies
//     [x_t, h_{t-1}] by the packed [W; R] (inputs up to 16 wide are
//     projected step by step; wider ones once for all steps by a GEMM),
//     applies the gate nonlinearities and writes the new state, all while
//     the pre-activations are in registers. Without sequence_lens the new
//     hidden state goes straight into Y and is read back from there at the
//     next step, so Y costs no copies; with sequence_lens each live row
//     steps on its own.
//   - General path (everything else: float64, peepholes, clip, other
//     activations, the pure-Go kernel set): the input projection X·Wᵀ
//     (+ the summed biases) for all time steps is one matrix multiply; each
//     step multiplies the [batch, H] state by the packed recurrence weights
//     (GRU with linear_before_reset=0 needs a second, smaller one for the
//     h gate) and then does the gate nonlinearities row by row.
//   - Batch rows are independent, so large runs split rows (and the two
//     directions of a bidirectional node) into jobs that goroutines take
//     from a shared counter, once per Run: each job covers every time step
//     of its rows, so there is no per-step synchronisation.
//
// Memory: RunWith takes the outputs and every scratch buffer (state, packed
// per-run weights, GEMM panels, each job's buffers, taken before any
// goroutine starts) from the ops.Arena, so a steady-state run allocates
// nothing on one thread and one closure per extra goroutine otherwise.
//
// W, R, B and P are packed once and cached per node, keyed on the identity
// of the input tensors' data (plus a few sampled values), but only when the
// runtime says those inputs are constant (Config.ConstInputs); otherwise
// they are packed into arena scratch on every run, because an arena buffer
// at the same address may hold new data next time.
//
// Numerics: a row's result never depends on how many rows are batched with
// it or on the thread split (the fused cells sum each pre-activation in one
// fixed order whatever the row block; tested bit for bit).
//
// Training: RunTraced runs the same code (on one goroutine, weights packed
// per run, scratch from an arena the Trace keeps) and fills a Trace with the
// node's parsed configuration and the state every step started from, which
// train/autodiff's BPTT builds on; its outputs are bitwise Run's. An LSTM
// with the default activations (no clip, peepholes or input_forget) also
// keeps each step's activated gates and tanh of its cell state
// (Trace.Gates, TanhC; the fused cells store them through
// linalg.CellArgs.Gates), so BPTT recomputes nothing.
//
// sequence_lens: steps past a row's length leave zeros in Y and the state at
// the row's last valid step; the reverse direction starts at each row's own
// last step. A row of length 0 keeps its initial state in Y_h / Y_c.
package rnn
