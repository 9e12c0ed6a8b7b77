//go:build !(amd64 || arm64) || purego

package linalg

// lstmGradVec has no vector kernel here: LSTMCellGrad's Go loop does the
// whole row.
func lstmGradVec(hid int, dh, dc, gates, c, t, da []float32) int { return 0 }

// lstmStateVec likewise leaves LSTMCellState's row to the Go loop.
func lstmStateVec(hid int, gates, c, cn []float32) int { return 0 }
