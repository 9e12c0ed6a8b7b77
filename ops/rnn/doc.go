// Package rnn holds the recurrent kernels LSTM, GRU and RNN with every
// ONNX attribute: directions, layouts, sequence lengths, initial states,
// peepholes, clipping and activations.
//
// Structure of a Run (float32 and float64 share the generic code):
//   - the input projection X·Wᵀ (+ the summed biases) for all time steps is
//     one matrix multiply of [T·batch, I] against the packed W;
//   - each time step is one multiply of the [batch, H] hidden state against
//     all gates' packed recurrence weights (GRU with linear_before_reset=0
//     needs a second, smaller one for the h gate, as its formula demands),
//     followed by one fused pass doing the gate nonlinearities and the
//     state update, row by row;
//   - batch rows are independent, so large runs split rows (and the two
//     directions of a bidirectional node) across goroutines.
//
// W, R, B and P are packed once and cached per node, keyed on the identity
// of the input tensors' data (plus a few sampled values), so repeated runs
// with the same initializers reuse them.
//
// sequence_lens: steps past a row's length leave zeros in Y and the state at
// the row's last valid step; the reverse direction starts at each row's own
// last step. A row of length 0 keeps its initial state in Y_h / Y_c.
package rnn
