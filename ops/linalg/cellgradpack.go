package linalg

import "fmt"

// LSTMCellGradPack is LSTMCellGrad that also writes the rows of da it
// computes into rows [q0, q0+rows) of p, a k×4·hid right-hand matrix made
// by PackBRowsInit: the same values, in the same places, as LSTMCellGrad
// followed by PackBRows(p, q0, rows, da, 4·hid), in one pass (the vector
// kernels store each result twice instead of reading da back). A
// recurrent backward pass packs each step's gate gradients this way into
// the weight-gradient product's right-hand block while it also keeps them
// row-major for the step's da·R.
func LSTMCellGradPack(rows, hid int, dh, dc, gates, c, t, da []float32, p *PackedB, q0 int) {
	if rows <= 0 || hid <= 0 {
		return
	}
	if p.N != 4*hid || q0 < 0 || q0+rows > p.K {
		panic(fmt.Sprintf("linalg: LSTMCellGradPack of %d×%d: rows [%d, %d) of a %d×%d packed matrix", rows, hid, q0, q0+rows, p.K, p.N))
	}
	n, ng := rows*hid, rows*4*hid
	if len(dh) < n || len(dc) < n || len(c) < n || len(t) < n || len(gates) < ng || len(da) < ng {
		panic(fmt.Sprintf("linalg: LSTMCellGradPack of %d×%d: operands of %d, %d, %d, %d (want %d) and %d, %d (want %d) elements",
			rows, hid, len(dh), len(dc), len(c), len(t), n, len(gates), len(da), ng))
	}
	if hid%nr != 0 || !lstmGradPackVec(0, hid, dh, dc, gates, c, t, da, nil, 0) {
		// gate blocks not aligned with the panels, or no vector kernel
		LSTMCellGrad(rows, hid, dh, dc, gates, c, t, da)
		PackBRows(p, q0, rows, da, 4*hid)
		return
	}
	for r := 0; r < rows; r++ {
		o, og := r*hid, r*4*hid
		lstmGradPackVec(hid, hid, dh[o:], dc[o:], gates[og:], c[o:], t[o:], da[og:], p.panels[(q0+r)*nr:], p.K)
	}
}
