package linalg

// Fused recurrent cells (LSTM, GRU in both linear_before_reset forms, plain
// RNN). One LSTM or GRU time step for a block of batch
// rows is a product of [x_t, h_{t-1}] with the stacked gate weights,
// followed by the gate nonlinearities and the state update. Doing all of it
// per tile of 16 hidden units — the gate pre-activations of those units
// stay in registers from the first multiply-add to the stored new state —
// removes the round trips through a gate buffer, the separate activation
// passes and the bias copies that a GEMM followed by element-wise passes
// costs at every step.
//
// Numerics: every pre-activation is summed in one fixed order (its initial
// value, then x's terms in k order, then h's terms in k order), whether a
// row is processed alone or in a group of rows, so batching never changes
// a result. The kernels (cell_amd64.s, generated for AVX-512 and AVX2 by
// internal/asmgen; cell_arm64.s for NEON by internal/neongen) compute exp with a degree-6 polynomial after range
// reduction (the scalar expf); AVX-512 takes 1/d as a refined reciprocal,
// AVX2 as a division. Sigmoid and tanh agree with float64 to a few 1e-7
// absolute, and NaN propagates (no clamp drops it).

// cellBlock is the number of hidden units one packed block covers (one
// ZMM, two YMM).
const cellBlock = 16

// CellWeights are a recurrent cell's input and recurrence weights packed for
// the fused kernels: for every block of 16 hidden units, first I rows (the
// input part, k over x) then H rows (the recurrence part, k over h), each row
// holding Slots vectors of 16 units (one per gate, units past H zero).
//
// LSTM slots are the ONNX gates i, o, f, c. GRU (linear_before_reset=1)
// slots are z, r and h: in the input rows the third slot holds W_h, in the
// recurrence rows R_h, because the kernel keeps x·W_hᵀ and h·R_hᵀ apart
// (the reset gate scales only the latter).
type CellWeights struct {
	I, H  int // I = 0: the input projection is not fused (precomputed)
	Slots int
	data  []float32
}

// CellSize is the number of float32s PackCell needs.
func CellSize(slots, in, hid int) int {
	return (hid + cellBlock - 1) / cellBlock * (in + hid) * slots * cellBlock
}

// PackCell packs w ([slots·H, I] row-major, nil when I is 0) and r
// ([slots·H, H]) into buf (at least CellSize elements), filling p. p keeps
// a reference to buf.
func PackCell(p *CellWeights, buf []float32, slots, in, hid int, w, r []float32) {
	nb := (hid + cellBlock - 1) / cellBlock
	K := in + hid
	buf = buf[:nb*K*slots*cellBlock]
	clear(buf)
	*p = CellWeights{I: in, H: hid, Slots: slots, data: buf}
	for u := 0; u < nb; u++ {
		blk := buf[u*K*slots*cellBlock:]
		for g := 0; g < slots; g++ {
			for j := 0; j < cellBlock; j++ {
				unit := u*cellBlock + j
				if unit >= hid {
					break
				}
				row := g*hid + unit
				for k := 0; k < in; k++ {
					blk[(k*slots+g)*cellBlock+j] = w[row*in+k]
				}
				for k := 0; k < hid; k++ {
					blk[((in+k)*slots+g)*cellBlock+j] = r[row*hid+k]
				}
			}
		}
	}
}

// CellArgs are the operands of one fused step over Rows batch rows. Row r
// of each operand starts at r·stride (in elements) of its slice.
//
//   - X (LdX): the step's input rows, read when the weights fuse the input
//     projection (I > 0).
//   - Init (LdInit, 0 to share one row): each slot's starting value laid out
//     as slots×H ([i o f c] for LSTM, [z r h] for GRU): the biases, or a
//     precomputed x·Wᵀ + bias.
//   - RB: GRU only, the recurrence bias of the h gate (H elements, nil for
//     none), added to h·R_hᵀ before the reset gate scales it.
//   - H (LdH): the previous hidden state, HOut (LdHOut) the new one; they
//     must not overlap.
//   - C (LdC): LSTM only, the cell state, updated in place.
//   - Gates (LdGates), TanhC (LdTanhC): LSTM only, optional (nil in
//     inference): the step's activated gates i, o, f, g (4·H, laid out as
//     Init) and tanh(c') (H) are stored there too, for a training pass.
type CellArgs struct {
	Rows   int
	X      []float32
	LdX    int
	Init   []float32
	LdInit int
	RB     []float32
	H      []float32
	LdH    int
	HOut   []float32
	LdHOut int
	C      []float32
	LdC    int

	Gates   []float32
	LdGates int
	TanhC   []float32
	LdTanhC int
}

// LSTMCell runs one LSTM step (default activations, no peepholes or clip):
// i, o, f = σ(·), g = tanh(·), c' = f⊙c + i⊙g, h' = o⊙tanh(c').
func LSTMCell(p *CellWeights, a *CellArgs) {
	if a.Rows <= 0 || p.H == 0 {
		return
	}
	checkCell(p, a, 4, true)
	if a.Gates != nil {
		checkGates(a, p.H) // every set's cells store them (AVX: a second epilogue; NEON: kernels of their own)
	}
	if cellAsmOn() {
		lstmCellAsm(p, a)
		return
	}
	lstmCellGo(p, a)
}

// GRUCell runs one GRU step with linear_before_reset=1 and default
// activations: z, r = σ(·), n = tanh(x·W_hᵀ + init_h + r⊙(h·R_hᵀ + RB)),
// h' = n + z⊙(h - n), i.e. (1-z)⊙n + z⊙h.
func GRUCell(p *CellWeights, a *CellArgs) {
	if a.Rows <= 0 || p.H == 0 {
		return
	}
	checkCell(p, a, 3, false)
	if cellAsmOn() {
		gruCellAsm(p, a)
		return
	}
	gruCellGo(p, a)
}

// CellAccelerated reports whether the fused cells run as SIMD assembly
// (AVX-512, AVX2+FMA or NEON); without it a GEMM plus vector activations is
// faster.
func CellAccelerated() bool { return cellAsmOn() }

// checkCell checks every slice the kernels touch, once per call, because
// the assembly reads and writes without bounds checks.
func checkCell(p *CellWeights, a *CellArgs, slots int, lstm bool) {
	H, I, n := p.H, p.I, a.Rows-1
	if p.Slots != slots || len(p.data) < CellSize(slots, I, H) {
		panic("linalg: cell weights of the wrong kind or size")
	}
	need := func(s []float32, ld, width int, what string) {
		if len(s) < n*ld+width {
			panic("linalg: cell operand " + what + " too short")
		}
	}
	if I > 0 {
		need(a.X, a.LdX, I, "X")
	}
	need(a.Init, a.LdInit, slots*H, "Init")
	need(a.H, a.LdH, H, "H")
	need(a.HOut, a.LdHOut, H, "HOut")
	if lstm {
		need(a.C, a.LdC, H, "C")
	} else if a.RB != nil && len(a.RB) < H {
		panic("linalg: cell operand RB too short")
	}
}

// cellAccum and the pure-Go cells lstmCellGo, gruCellGo, gru0CellGo and
// rnnCellGo are in cell_go.go.

// GRU0Weights are a GRU's weights for linear_before_reset=0, where the
// candidate needs (r ⊙ h)·R_hᵀ, so a step takes two passes: ZR holds the z
// and r gates (Slots 2), N the h gate (Slots 1; its recurrence rows are
// multiplied by r ⊙ h, not h).
type GRU0Weights struct {
	ZR, N CellWeights
}

// GRU0Size is the number of float32s PackGRU0 needs.
func GRU0Size(in, hid int) int { return CellSize(2, in, hid) + CellSize(1, in, hid) }

// PackGRU0 packs w ([3·H, I], nil when I is 0) and r ([3·H, H]) into buf
// (at least GRU0Size elements).
func PackGRU0(p *GRU0Weights, buf []float32, in, hid int, w, r []float32) {
	n1 := CellSize(2, in, hid)
	var wh []float32
	if in > 0 {
		wh = w[2*hid*in:]
	}
	PackCell(&p.ZR, buf[:n1], 2, in, hid, w, r)
	PackCell(&p.N, buf[n1:], 1, in, hid, wh, r[2*hid*hid:])
}

// GRU0Cell runs one GRU step with linear_before_reset=0 and default
// activations: z, r = σ(·), n = tanh(x·W_hᵀ + init_h + (r⊙h)·R_hᵀ),
// h' = n + z⊙(h - n). Init is laid out [z r h] (all biases summed, Wb+Rb);
// RB is not used. Z and RH are scratch of Rows×H (row stride H): the update
// gates and r⊙h between the two passes.
func GRU0Cell(p *GRU0Weights, a *CellArgs, z, rh []float32) {
	if a.Rows <= 0 || p.ZR.H == 0 {
		return
	}
	H := p.ZR.H
	if p.ZR.Slots != 2 || p.N.Slots != 1 || p.N.H != H || p.N.I != p.ZR.I ||
		len(p.ZR.data) < CellSize(2, p.ZR.I, H) || len(p.N.data) < CellSize(1, p.N.I, H) {
		panic("linalg: GRU0 weights of the wrong kind or size")
	}
	if len(z) < a.Rows*H || len(rh) < a.Rows*H {
		panic("linalg: GRU0 scratch too short")
	}
	checkOperands(p.ZR.I, H, 3, a)
	if cellAsmOn() {
		gru0CellAsm(p, a, z, rh)
		return
	}
	gru0CellGo(p, a, z, rh)
}

// checkOperands checks the operands every cell reads and writes.
func checkOperands(I, H, slots int, a *CellArgs) {
	n := a.Rows - 1
	need := func(s []float32, ld, width int, what string) {
		if len(s) < n*ld+width {
			panic("linalg: cell operand " + what + " too short")
		}
	}
	if I > 0 {
		need(a.X, a.LdX, I, "X")
	}
	need(a.Init, a.LdInit, slots*H, "Init")
	need(a.H, a.LdH, H, "H")
	need(a.HOut, a.LdHOut, H, "HOut")
}

// RNNCell runs one plain RNN step with the default activation:
// h' = tanh(Init + x·Wᵀ + h·Rᵀ) (Init holds Wb+Rb, or a precomputed x·Wᵀ +
// bias), for weights packed with Slots 1.
func RNNCell(p *CellWeights, a *CellArgs) {
	if a.Rows <= 0 || p.H == 0 {
		return
	}
	if p.Slots != 1 || len(p.data) < CellSize(1, p.I, p.H) {
		panic("linalg: cell weights of the wrong kind or size")
	}
	checkOperands(p.I, p.H, 1, a)
	if cellAsmOn() {
		rnnCellAsm(p, a)
		return
	}
	rnnCellGo(p, a)
}
