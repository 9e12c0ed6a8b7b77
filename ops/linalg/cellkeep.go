package linalg

// checkGates checks the optional LSTM outputs of CellArgs (Gates, TanhC)
// once per call, as checkCell does the others.
func checkGates(a *CellArgs, H int) {
	n := a.Rows - 1
	if len(a.Gates) < n*a.LdGates+4*H || len(a.TanhC) < n*a.LdTanhC+H {
		panic("linalg: cell operand Gates or TanhC too short")
	}
}

// lstmCellKeepGo is lstmCellGo storing the activated gates and tanh(c')
// as well (CellArgs.Gates, TanhC): the same operations in the same order.
func lstmCellKeepGo(p *CellWeights, a *CellArgs) {
	H, I := p.H, p.I
	K, S := I+H, 4*cellBlock
	nb := (H + cellBlock - 1) / cellBlock
	for r := 0; r < a.Rows; r++ {
		x := a.X
		if I > 0 {
			x = a.X[r*a.LdX:][:I]
		}
		h := a.H[r*a.LdH:][:H]
		init := a.Init[r*a.LdInit:][:4*H]
		c := a.C[r*a.LdC:][:H]
		ho := a.HOut[r*a.LdHOut:][:H]
		gs := a.Gates[r*a.LdGates:][:4*H]
		tc := a.TanhC[r*a.LdTanhC:][:H]
		for u := 0; u < nb; u++ {
			blk := p.data[u*K*S:][:K*S]
			var acc [4][cellBlock]float32
			w := min(cellBlock, H-u*cellBlock)
			for g := range acc {
				copy(acc[g][:w], init[g*H+u*cellBlock:][:w])
				cellAccum(&acc[g], x, blk[g*cellBlock:], I, S)
				cellAccum(&acc[g], h, blk[I*S+g*cellBlock:], H, S)
			}
			for j := 0; j < w; j++ {
				k := u*cellBlock + j
				i := sigmoidf(acc[0][j])
				o := sigmoidf(acc[1][j])
				f := sigmoidf(acc[2][j])
				g := tanhf(acc[3][j])
				gs[k], gs[H+k], gs[2*H+k], gs[3*H+k] = i, o, f, g
				cn := f*c[k] + i*g
				c[k] = cn
				tc[k] = tanhf(cn)
				ho[k] = o * tc[k]
			}
		}
	}
}
