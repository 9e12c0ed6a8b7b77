//go:build !amd64 || purego

package linalg

// lstmGradPackVec: no packing LSTMCellGrad kernel here (LSTMCellGradPack
// runs LSTMCellGrad, then PackBRows).
func lstmGradPackVec(n, hid int, dh, dc, gates, c, t, da, pd []float32, k int) bool { return false }
