package linalg

// checkGates checks the optional LSTM outputs of CellArgs (Gates, TanhC)
// once per call, as checkCell does the others.
func checkGates(a *CellArgs, H int) {
	n := a.Rows - 1
	if len(a.Gates) < n*a.LdGates+4*H || len(a.TanhC) < n*a.LdTanhC+H {
		panic("linalg: cell operand Gates or TanhC too short")
	}
}
