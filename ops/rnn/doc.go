// Package rnn holds the recurrent kernels LSTM, GRU and RNN with every
// ONNX attribute: directions, layouts, sequence lengths, initial states,
// peepholes, clipping and activations.
package rnn
