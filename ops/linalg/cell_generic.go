//go:build !amd64 || purego

package linalg

func cellAsmOn() bool { return false }

func lstmCellAsm(p *CellWeights, a *CellArgs) { lstmCellGo(p, a) }

func gruCellAsm(p *CellWeights, a *CellArgs) { gruCellGo(p, a) }
