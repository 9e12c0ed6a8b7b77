//go:build amd64 && !purego

package linalg

// lstmGradPackVec runs a packing LSTMCellGrad kernel over the n units
// (a multiple of 16) of one row, storing da also at pd (the row in the
// first panel of a packed matrix of k rows), and reports whether this
// machine has one (n = 0 only asks).
func lstmGradPackVec(n, hid int, dh, dc, gates, c, t, da, pd []float32, k int) bool {
	switch {
	case !useAVX2:
		return false
	case n == 0:
		return true
	case useAVX512:
		lstmGradP16AVX512(&dh[0], &dc[0], &gates[0], &c[0], &t[0], &da[0], hid, n, &pd[0], k)
	default:
		lstmGradP16AVX2(&dh[0], &dc[0], &gates[0], &c[0], &t[0], &da[0], hid, n, &pd[0], k)
	}
	return true
}

// lstmGradP16AVX2 and lstmGradP16AVX512 are lstmGrad8AVX2 and
// lstmGrad16AVX512 over n units (a multiple of 16; hid too) that also
// store da_i, da_o, da_f, da_g at pd, pd + hid·k, + 2·hid·k, + 3·hid·k,
// moving on k·16 floats (one panel) every 16 units.
//
//go:noescape
func lstmGradP16AVX2(dh, dc, gates, c, t, da *float32, hid, n int, pd *float32, k int)

//go:noescape
func lstmGradP16AVX512(dh, dc, gates, c, t, da *float32, hid, n int, pd *float32, k int)
