package linalg

import "fmt"

// LSTMCellGrad is the element-wise backward step of an LSTM cell with the
// default activations and no peepholes, over rows consecutive rows of hid
// units. The forward step was i, o, f = σ(·), g = tanh(·), c' = f⊙c + i⊙g,
// h' = o⊙tanh(c'). From dh (the gradient w.r.t. h') and dc (w.r.t. c') it
// writes da, the gradients w.r.t. the four gates' pre-activations (i, o, f,
// g; row stride 4·hid), and replaces dc with the gradient w.r.t. c:
//
//	dC = dc + dh⊙o⊙(1-t²)         t = tanh(c')
//	da_i = dC⊙g⊙i⊙(1-i)           da_o = dh⊙t⊙o⊙(1-o)
//	da_f = dC⊙c⊙f⊙(1-f)           da_g = dC⊙i⊙(1-g²)
//	dc ← dC⊙f
//
// gates holds the activated gates (i, o, f, g; row stride 4·hid), c the
// cell states the step started from and t tanh of the new ones (row
// stride hid, like dh and dc). Every kernel set does the same float32
// multiplies, subtractions and one addition in the same order (no fused
// multiply-adds), so all sets give bitwise the same results.
func LSTMCellGrad(rows, hid int, dh, dc, gates, c, t, da []float32) {
	if rows <= 0 || hid <= 0 {
		return
	}
	n, ng := rows*hid, rows*4*hid
	if len(dh) < n || len(dc) < n || len(c) < n || len(t) < n || len(gates) < ng || len(da) < ng {
		panic(fmt.Sprintf("linalg: LSTMCellGrad of %d×%d: operands of %d, %d, %d, %d (want %d) and %d, %d (want %d) elements",
			rows, hid, len(dh), len(dc), len(c), len(t), n, len(gates), len(da), ng))
	}
	for r := 0; r < rows; r++ {
		o, og := r*hid, r*4*hid
		if j := lstmGradVec(hid, dh[o:], dc[o:], gates[og:], c[o:], t[o:], da[og:]); j < hid {
			lstmGradGo(j, hid, dh[o:], dc[o:], gates[og:], c[o:], t[o:], da[og:])
		}
	}
}

// lstmGradGo is LSTMCellGrad for units [j0, hid) of one row (the
// reference, and the tail the vector kernels leave).
func lstmGradGo(j0, hid int, dh, dc, gates, c, t, da []float32) {
	gi, gO, gf, gg := gates[:hid], gates[hid:2*hid], gates[2*hid:3*hid], gates[3*hid:4*hid]
	di, dO, df, dg := da[:hid], da[hid:2*hid], da[2*hid:3*hid], da[3*hid:4*hid]
	dh, dc, c, t = dh[:hid], dc[:hid], c[:hid], t[:hid]
	for j := j0; j < hid; j++ {
		i, o, f, g, tj, y := gi[j], gO[j], gf[j], gg[j], t[j], dh[j]
		// the float32 conversions keep a compiler from fusing a multiply
		// and an add (Go may, the vector kernels do not)
		dO[j] = (o * (1 - o)) * (y * tj)
		dC := dc[j] + float32(o*(1-float32(tj*tj))*y)
		di[j] = ((i * (1 - i)) * g) * dC
		df[j] = ((f * (1 - f)) * c[j]) * dC
		dg[j] = (i * (1 - float32(g*g))) * dC
		dc[j] = dC * f
	}
}

// LSTMCellState writes the new cell states c' = f⊙c + i⊙g of rows rows of
// hid units from the activated gates (i, o, f, g; row stride 4·hid) and the
// states c the step started from (row stride hid, like c'): the forward
// step's state update, for a backward pass that recomputes the gates. As
// with LSTMCellGrad, every kernel set gives bitwise the same results.
func LSTMCellState(rows, hid int, gates, c, cn []float32) {
	if rows <= 0 || hid <= 0 {
		return
	}
	n, ng := rows*hid, rows*4*hid
	if len(c) < n || len(cn) < n || len(gates) < ng {
		panic(fmt.Sprintf("linalg: LSTMCellState of %d×%d: operands of %d, %d (want %d) and %d (want %d) elements",
			rows, hid, len(c), len(cn), n, len(gates), ng))
	}
	for r := 0; r < rows; r++ {
		o, og := r*hid, r*4*hid
		if j := lstmStateVec(hid, gates[og:], c[o:], cn[o:]); j < hid {
			lstmStateGo(j, hid, gates[og:], c[o:], cn[o:])
		}
	}
}

// lstmStateGo is LSTMCellState for units [j0, hid) of one row.
func lstmStateGo(j0, hid int, gates, c, cn []float32) {
	gi, gf, gg := gates[:hid], gates[2*hid:3*hid], gates[3*hid:4*hid]
	c, cn = c[:hid], cn[:hid]
	for j := j0; j < hid; j++ {
		cn[j] = float32(gf[j]*c[j]) + float32(gi[j]*gg[j]) // no fused multiply-add
	}
}
