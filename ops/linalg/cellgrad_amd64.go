//go:build amd64 && !purego

package linalg

// lstmGradVec runs the vector kernels of LSTMCellGrad over the first units
// of one row (16 at a time with AVX-512, then 8 with AVX2) and returns how
// many it did; the Go loop does the rest.
func lstmGradVec(hid int, dh, dc, gates, c, t, da []float32) int {
	j := 0
	if useAVX512 && hid >= 16 {
		j = hid &^ 15
		lstmGrad16AVX512(&dh[0], &dc[0], &gates[0], &c[0], &t[0], &da[0], hid, j)
	}
	if useAVX2 && hid-j >= 8 {
		n := (hid - j) &^ 7
		lstmGrad8AVX2(&dh[j], &dc[j], &gates[j], &c[j], &t[j], &da[j], hid, n)
		j += n
	}
	return j
}

// lstmStateVec is lstmGradVec for LSTMCellState.
func lstmStateVec(hid int, gates, c, cn []float32) int {
	j := 0
	if useAVX512 && hid >= 16 {
		j = hid &^ 15
		lstmState16AVX512(&gates[0], &c[0], &cn[0], hid, j)
	}
	if useAVX2 && hid-j >= 8 {
		n := (hid - j) &^ 7
		lstmState8AVX2(&gates[j], &c[j], &cn[j], hid, n)
		j += n
	}
	return j
}

// lstmState8AVX2 and lstmState16AVX512 do n units (a multiple of 8 or 16)
// of one row; hid is the gate stride of gates in elements.
//
//go:noescape
func lstmState8AVX2(gates, c, cn *float32, hid, n int)

//go:noescape
func lstmState16AVX512(gates, c, cn *float32, hid, n int)

// lstmGrad8AVX2 and lstmGrad16AVX512 do n units (a multiple of 8 or 16) of
// one row; hid is the gate stride of gates and da in elements.
//
//go:noescape
func lstmGrad8AVX2(dh, dc, gates, c, t, da *float32, hid, n int)

//go:noescape
func lstmGrad16AVX512(dh, dc, gates, c, t, da *float32, hid, n int)
