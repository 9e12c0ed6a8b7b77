//go:build (!amd64 && !arm64) || purego

package linalg

func cellAsmOn() bool { return false }

func lstmCellAsm(p *CellWeights, a *CellArgs) { lstmCellGo(p, a) }

func gruCellAsm(p *CellWeights, a *CellArgs) { gruCellGo(p, a) }

func gru0CellAsm(p *GRU0Weights, a *CellArgs, z, rh []float32) { gru0CellGo(p, a, z, rh) }

func rnnCellAsm(p *CellWeights, a *CellArgs) { rnnCellGo(p, a) }
