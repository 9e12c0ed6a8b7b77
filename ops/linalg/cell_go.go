package linalg

// The pure-Go fused cells (what LSTMCell, GRUCell, GRU0Cell and RNNCell
// run without SIMD). Per batch row and block of 16 hidden units, each
// slot's pre-activations are accumulated four units at a time in local
// variables (cellDot4: one input value and four packed weights per k
// step, no bounds checks in the loop), starting from the slot's initial
// value, x's terms in k order, then h's terms in k order — the order
// cell.go promises for every kernel set. The gates then go through the
// float32 vector activations of activation_go.go over the block's
// pre-activations at once (three sigmoids of 16 in one call for LSTM).

// cellDot4 returns s + Σ_k v[k]·panel[k·stride + j] for the four units
// j < 4 (panel starts at the first of them), in k order.
func cellDot4(s0, s1, s2, s3 float32, v, panel []float32, stride int) (float32, float32, float32, float32) {
	if stride < 0 {
		return s0, s1, s2, s3 // never (strides are slots·16); lets the loop's reslice go unchecked
	}
	for _, x := range v {
		if len(panel) < 4 {
			break
		}
		p := panel[:4]
		s0 += x * p[0]
		s1 += x * p[1]
		s2 += x * p[2]
		s3 += x * p[3]
		if len(panel) < stride {
			break
		}
		panel = panel[stride:]
	}
	return s0, s1, s2, s3
}

// cellAccum adds Σ_k v[k]·panel[k·stride + j] to acc[j] for the w live
// units of a block, in k order (each quad of units in registers; units
// past w, whose weights are zero, are left alone).
func cellAccum(acc *[cellBlock]float32, v, panel []float32, stride, w int) {
	if len(v) == 0 {
		return
	}
	for j := 0; j < w; j += 4 {
		q := (*[4]float32)(acc[j : j+4])
		q[0], q[1], q[2], q[3] = cellDot4(q[0], q[1], q[2], q[3], v, panel[j:], stride)
	}
}

func lstmCellGo(p *CellWeights, a *CellArgs) {
	H, I := p.H, p.I
	K, S := I+H, 4*cellBlock
	nb := (H + cellBlock - 1) / cellBlock
	var pre [4 * cellBlock]float32 // i, o, f, c gates, 16 units each
	var cn [cellBlock]float32
	for r := 0; r < a.Rows; r++ {
		var x []float32 // the input row, empty when I is 0
		if I > 0 {
			x = a.X[r*a.LdX:][:I]
		}
		h := a.H[r*a.LdH:][:H]
		init := a.Init[r*a.LdInit:][:4*H]
		c := a.C[r*a.LdC:][:H]
		ho := a.HOut[r*a.LdHOut:][:H]
		for u := 0; u < nb; u++ {
			blk := p.data[u*K*S:][:K*S]
			w := min(cellBlock, H-u*cellBlock)
			for g := 0; g < 4; g++ {
				acc := (*[cellBlock]float32)(pre[g*cellBlock:])
				copy(acc[:w], init[g*H+u*cellBlock:][:w])
				cellAccum(acc, x, blk[g*cellBlock:], S, w)
				cellAccum(acc, h, blk[I*S+g*cellBlock:], S, w)
			}
			// i, o, f are contiguous: one sigmoid call for the three
			// (units past w are stale and ignored)
			sigmoidGo(pre[:3*cellBlock])
			ig, og, fg, gg := pre[:w], pre[cellBlock:][:w], pre[2*cellBlock:][:w], pre[3*cellBlock:][:w]
			tanhGo(gg)
			cb, hb := c[u*cellBlock:][:w], ho[u*cellBlock:][:w]
			for j := range cb {
				cb[j] = fg[j]*cb[j] + ig[j]*gg[j]
				cn[j] = cb[j]
			}
			tanhGo(cn[:w])
			for j := range hb {
				hb[j] = og[j] * cn[j]
			}
			if a.Gates != nil { // a traced step keeps i, o, f, g and tanh(c')
				gs := a.Gates[r*a.LdGates:][:4*H]
				for g, act := range [4][]float32{ig, og, fg, gg} {
					copy(gs[g*H+u*cellBlock:][:w], act)
				}
				copy(a.TanhC[r*a.LdTanhC+u*cellBlock:][:w], cn[:w])
			}
		}
	}
}

func gruCellGo(p *CellWeights, a *CellArgs) {
	H, I := p.H, p.I
	K, S := I+H, 3*cellBlock
	nb := (H + cellBlock - 1) / cellBlock
	var zr [2 * cellBlock]float32 // z, r gates, 16 units each
	zg, rg := (*[cellBlock]float32)(zr[:]), (*[cellBlock]float32)(zr[cellBlock:])
	var nx, nh [cellBlock]float32
	for r := 0; r < a.Rows; r++ {
		var x []float32 // the input row, empty when I is 0
		if I > 0 {
			x = a.X[r*a.LdX:][:I]
		}
		h := a.H[r*a.LdH:][:H]
		init := a.Init[r*a.LdInit:][:3*H]
		ho := a.HOut[r*a.LdHOut:][:H]
		for u := 0; u < nb; u++ {
			blk := p.data[u*K*S:][:K*S]
			w := min(cellBlock, H-u*cellBlock)
			copy(zr[:w], init[u*cellBlock:][:w])
			copy(zr[cellBlock:][:w], init[H+u*cellBlock:][:w])
			copy(nx[:w], init[2*H+u*cellBlock:][:w])
			if a.RB != nil {
				copy(nh[:w], a.RB[u*cellBlock:][:w])
			} else {
				clear(nh[:w])
			}
			cellAccum(zg, x, blk, S, w)
			cellAccum(rg, x, blk[cellBlock:], S, w)
			cellAccum(&nx, x, blk[2*cellBlock:], S, w)
			cellAccum(zg, h, blk[I*S:], S, w)
			cellAccum(rg, h, blk[I*S+cellBlock:], S, w)
			cellAccum(&nh, h, blk[I*S+2*cellBlock:], S, w)
			sigmoidGo(zr[:])
			for j := 0; j < w; j++ {
				nx[j] += zr[cellBlock+j] * nh[j]
			}
			tanhGo(nx[:w])
			hb, hp := ho[u*cellBlock:][:w], h[u*cellBlock:][:w]
			for j := range hb {
				n := nx[j]
				hb[j] = n + zr[j]*(hp[j]-n)
			}
		}
	}
}

func gru0CellGo(p *GRU0Weights, a *CellArgs, zs, rhs []float32) {
	H, I := p.ZR.H, p.ZR.I
	K := I + H
	nb := (H + cellBlock - 1) / cellBlock
	var zr [2 * cellBlock]float32 // z, r gates, 16 units each
	zg, rg := (*[cellBlock]float32)(zr[:]), (*[cellBlock]float32)(zr[cellBlock:])
	var an [cellBlock]float32
	for r := 0; r < a.Rows; r++ {
		var x []float32 // the input row, empty when I is 0
		if I > 0 {
			x = a.X[r*a.LdX:][:I]
		}
		h := a.H[r*a.LdH:][:H]
		init := a.Init[r*a.LdInit:][:3*H]
		ho := a.HOut[r*a.LdHOut:][:H]
		z, rh := zs[r*H:][:H], rhs[r*H:][:H]
		for u := 0; u < nb; u++ {
			S := 2 * cellBlock
			blk := p.ZR.data[u*K*S:][:K*S]
			w := min(cellBlock, H-u*cellBlock)
			copy(zr[:w], init[u*cellBlock:][:w])
			copy(zr[cellBlock:][:w], init[H+u*cellBlock:][:w])
			cellAccum(zg, x, blk, S, w)
			cellAccum(rg, x, blk[cellBlock:], S, w)
			cellAccum(zg, h, blk[I*S:], S, w)
			cellAccum(rg, h, blk[I*S+cellBlock:], S, w)
			sigmoidGo(zr[:])
			zb, rb, hp := z[u*cellBlock:][:w], rh[u*cellBlock:][:w], h[u*cellBlock:][:w]
			copy(zb, zr[:w])
			for j := range rb {
				rb[j] = zr[cellBlock+j] * hp[j]
			}
		}
		for u := 0; u < nb; u++ {
			S := cellBlock
			blk := p.N.data[u*K*S:][:K*S]
			w := min(cellBlock, H-u*cellBlock)
			copy(an[:w], init[2*H+u*cellBlock:][:w])
			cellAccum(&an, x, blk, S, w)
			cellAccum(&an, rh, blk[I*S:], S, w)
			tanhGo(an[:w])
			hb, zb, hp := ho[u*cellBlock:][:w], z[u*cellBlock:][:w], h[u*cellBlock:][:w]
			for j := range hb {
				n := an[j]
				hb[j] = n + zb[j]*(hp[j]-n)
			}
		}
	}
}

func rnnCellGo(p *CellWeights, a *CellArgs) {
	H, I := p.H, p.I
	K, S := I+H, cellBlock
	nb := (H + cellBlock - 1) / cellBlock
	for r := 0; r < a.Rows; r++ {
		var x []float32 // the input row, empty when I is 0
		if I > 0 {
			x = a.X[r*a.LdX:][:I]
		}
		h := a.H[r*a.LdH:][:H]
		init := a.Init[r*a.LdInit:][:H]
		ho := a.HOut[r*a.LdHOut:][:H]
		for u := 0; u < nb; u++ {
			blk := p.data[u*K*S:][:K*S]
			w := min(cellBlock, H-u*cellBlock)
			hb := ho[u*cellBlock:][:w]
			var acc [cellBlock]float32
			copy(acc[:w], init[u*cellBlock:][:w])
			cellAccum(&acc, x, blk, S, w)
			cellAccum(&acc, h, blk[I*S:], S, w)
			copy(hb, acc[:w])
			tanhGo(hb)
		}
	}
}
