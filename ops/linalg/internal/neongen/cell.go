package main

import (
	"bytes"
	"fmt"
	"go/format"
	"strings"
)

// cellKind is one recurrent cell step (as internal/asmgen describes it): S
// packed slots per k, A accumulators per row and vector, the accumulator
// each slot feeds in the x and h phases.
type cellKind struct {
	name       string // kernel prefix
	kind       string // Go kind constant (cell_arm64.go)
	S, A       int
	xmap, hmap []int
	initSlots  int  // accumulators 0..initSlots-1 start from Init (slot stride hb)
	rb         bool // accumulator 3 starts from RB (GRU h gate), or zero
	keep       bool // LSTM: also store the activated gates and tanh(c')
}

var (
	kLSTM = &cellKind{name: "lstmCell", kind: "neonKindLSTM", S: 4, A: 4, xmap: []int{0, 1, 2, 3}, hmap: []int{0, 1, 2, 3}, initSlots: 4}
	// kLSTMKeep is kLSTM for a traced step (CellArgs.Gates set): the same
	// arithmetic, plus stores of i, o, f, g and tanh(c'), in kernels of
	// their own so that inference runs none of those stores or branches.
	kLSTMKeep = &cellKind{name: "lstmKeep", kind: "neonKindLSTMKeep", S: 4, A: 4, xmap: []int{0, 1, 2, 3}, hmap: []int{0, 1, 2, 3}, initSlots: 4, keep: true}
	kGRU      = &cellKind{name: "gruCell", kind: "neonKindGRU", S: 3, A: 4, xmap: []int{0, 1, 2}, hmap: []int{0, 1, 3}, initSlots: 3, rb: true}
	kGRU0Z    = &cellKind{name: "gru0ZR", kind: "neonKindGRU0ZR", S: 2, A: 2, xmap: []int{0, 1}, hmap: []int{0, 1}, initSlots: 2}
	kGRU0N    = &cellKind{name: "gru0N", kind: "neonKindGRU0N", S: 1, A: 1, xmap: []int{0}, hmap: []int{0}, initSlots: 1}
	kRNN      = &cellKind{name: "rnnCell", kind: "neonKindRNN", S: 1, A: 1, xmap: []int{0}, hmap: []int{0}, initSlots: 1}
)

// cellTable is the NEON kernel set of every kind: units per chunk (8 = half
// a packed block, 16 = a whole one), the rows of the group kernel, and
// whether a one-row kernel over a whole block (two 8-unit chunks) exists.
// Every group keeps at most 16 accumulators (V0..V15): the panel vectors,
// the rows' inputs and, after the products, the four constant registers
// and the gate temporaries take the other 16.
var cellTable = []struct {
	k     *cellKind
	lanes int
	rows  int
	multi bool
}{
	{kLSTM, 8, 2, true},
	{kLSTMKeep, 8, 2, true},
	{kGRU, 8, 2, true},
	{kGRU0Z, 8, 4, false},
	{kGRU0N, 16, 4, false},
	{kRNN, 16, 4, false},
}

// cellKernel is one generated function: rows batch rows × units units
// (8 or 16) of one chunk.
type cellKernel struct {
	k     *cellKind
	rows  int
	units int
	name  string
}

func (k cellKernel) V() int { return k.units / 4 }

// acc is the accumulator of (row, a, vector v): for one row and a, the
// vectors are consecutive registers (VLD1/VST1 lists).
func (k cellKernel) acc(row, a, v int) int { return (row*k.k.A+a)*k.V() + v }

// panelGroups is how many slots' panel vectors are held at once (the rest
// reuse their registers, which out-of-order cores rename).
func (k cellKernel) panelGroups() int { return min(k.k.S, (16-k.rows)/k.V()) }

func (k cellKernel) panelReg(s int) int { return 16 + s%k.panelGroups()*k.V() }

func (k cellKernel) xReg(r int) int { return 16 + k.panelGroups()*k.V() + r }

func (k cellKernel) emit(e *emitter) {
	kd, V := k.k, k.V()
	if k.rows*kd.A*V > 16 {
		panic(k.name + ": more than 16 accumulators")
	}
	e.raw("\n// func %s(f *neonFrame): %d row(s) × %d units.\n", k.name, k.rows, k.units)
	e.raw("TEXT ·%s(SB), NOSPLIT, $0-8\n", k.name)
	e.p("MOVD\tf+0(FP), R0")
	// starting values: Init (slots hb apart, rows ldi apart), RB or zero
	e.p("MOVD\tneonFrame_init(R0), R1")
	e.p("MOVD\tneonFrame_hb(R0), R2")
	e.p("MOVD\tneonFrame_ldi(R0), R3")
	for r := 0; r < k.rows; r++ {
		if r > 0 {
			e.p("ADD\tR3, R1, R1")
		}
		for a := 0; a < kd.initSlots; a++ {
			ptr := "R1"
			if a > 0 {
				ptr = "R4"
				src := "R4"
				if a == 1 {
					src = "R1"
				}
				e.p("ADD\tR2, %s, R4", src)
			}
			e.p("VLD1\t(%s), %s", ptr, regList(k.acc(r, a, 0), V))
		}
	}
	if kd.rb {
		for r := 0; r < k.rows; r++ {
			for v := 0; v < V; v++ {
				z := k.acc(r, 3, v)
				e.p("VEOR\tV%d.B16, V%d.B16, V%d.B16", z, z, z)
			}
		}
		e.p("MOVD\tneonFrame_rb(R0), R4")
		e.p("CBZ\tR4, norb")
		for r := 0; r < k.rows; r++ {
			e.p("VLD1\t(R4), %s", regList(k.acc(r, 3, 0), V))
		}
		e.raw("norb:\n")
	}
	// the multiply-adds: x phase (k1 rows, may be 0), then h phase (k2 ≥ 1);
	// the panel pointer runs on from one into the other
	e.p("MOVD\tneonFrame_pw(R0), R5")
	if k.units == 8 {
		e.p("MOVD\t$64, R6") // a half-block chunk reads 32 of every 64 bytes
	}
	for _, ph := range []struct{ kf, vf, lf, label string }{{"k1", "x", "ldx", "x"}, {"k2", "h", "ldh", "h"}} {
		m := kd.xmap
		if ph.label == "h" {
			m = kd.hmap
		}
		e.p("MOVD\tneonFrame_%s(R0), R7", ph.kf)
		if ph.label == "x" {
			e.p("CBZ\tR7, xdone")
		}
		e.p("MOVD\tneonFrame_%s(R0), R8", ph.vf)
		if k.rows > 1 {
			e.p("MOVD\tneonFrame_%s(R0), R12", ph.lf)
			for r := 1; r < k.rows; r++ {
				e.p("ADD\tR12, R%d, R%d", 7+r, 8+r)
			}
		}
		e.raw("%sloop:\n", ph.label)
		for r := 0; r < k.rows; r++ {
			e.p("FMOVS.P\t4(R%d), F%d", 8+r, k.xReg(r))
		}
		for s := 0; s < kd.S; s++ {
			pr := k.panelReg(s)
			if k.units == 16 {
				e.p("VLD1.P\t64(R5), %s", regList(pr, 4))
			} else {
				e.p("VLD1.P\t(R5)(R6), %s", regList(pr, 2))
			}
			for r := 0; r < k.rows; r++ {
				for v := 0; v < V; v++ {
					e.fmlaE(k.acc(r, m[s], v), pr+v, k.xReg(r), 0)
				}
			}
		}
		e.p("SUBS\t$1, R7, R7")
		e.p("BNE\t%sloop", ph.label)
		if ph.label == "x" {
			e.raw("xdone:\n")
		}
	}
	k.epilogue(e)
}

// epilogue applies the gates and stores, row by row. R1 = c (LSTM) or the
// old h, R3 = h out (GRU0 pass 1: z), R8 = aux; strides R2, R4, R9. A
// keeping LSTM also has R10 = gates (row stride R11, slot stride R12) and
// R13 = tanh(c') (row stride R14); R15 walks the gate slots.
// Constants in V28..V30 (neonr<>), activation temporaries V16..V18,
// loaded operands V20.. and V24...
func (k cellKernel) epilogue(e *emitter) {
	kd, V := k.k, k.V()
	m := mathEmitter{emitter: e, cbase: 28}
	loadRat(e, 28)
	e.p("MOVD\tneonFrame_c(R0), R1")
	e.p("MOVD\tneonFrame_ldc(R0), R2")
	e.p("MOVD\tneonFrame_ho(R0), R3")
	e.p("MOVD\tneonFrame_ldo(R0), R4")
	gru0 := kd == kGRU0Z || kd == kGRU0N
	if gru0 {
		e.p("MOVD\tneonFrame_aux(R0), R8")
		e.p("MOVD\tneonFrame_ldaux(R0), R9")
	}
	if kd.keep {
		e.p("MOVD\tneonFrame_gates(R0), R10")
		e.p("MOVD\tneonFrame_ldg(R0), R11")
		e.p("MOVD\tneonFrame_gb(R0), R12")
		e.p("MOVD\tneonFrame_tc(R0), R13")
		e.p("MOVD\tneonFrame_ldt(R0), R14")
	}
	sig := func(z int) { m.sigRat(z, 16, 17, 18) }
	tanh := func(z int) { m.tanhRat(z, 16, 17, 18) }
	const L, Z = 20, 24 // loaded c / old h, loaded z
	for r := 0; r < k.rows; r++ {
		if r > 0 {
			e.p("ADD\tR2, R1, R1")
			e.p("ADD\tR4, R3, R3")
			if gru0 {
				e.p("ADD\tR9, R8, R8")
			}
			if kd.keep {
				e.p("ADD\tR11, R10, R10")
				e.p("ADD\tR14, R13, R13")
			}
		}
		a := func(i, v int) int { return k.acc(r, i, v) }
		switch kd {
		case kLSTM, kLSTMKeep: // i o f g: c' = f⊙c + i⊙g, h' = o⊙tanh(c')
			for v := 0; v < V; v++ {
				sig(a(0, v))
				sig(a(1, v))
				sig(a(2, v))
				tanh(a(3, v))
			}
			if kd.keep {
				for g := 0; g < 4; g++ {
					ptr := "R10"
					if g > 0 {
						ptr = "R15"
						src := "R15"
						if g == 1 {
							src = "R10"
						}
						e.p("ADD\tR12, %s, R15", src)
					}
					e.p("VST1\t%s, (%s)", regList(a(g, 0), V), ptr)
				}
			}
			e.p("VLD1\t(R1), %s", regList(L, V))
			for v := 0; v < V; v++ {
				m.op3("FMUL", L+v, a(2, v), L+v)
				m.fmla(L+v, a(0, v), a(3, v))
			}
			e.p("VST1\t%s, (R1)", regList(L, V))
			if kd.keep {
				for v := 0; v < V; v++ {
					tanh(L + v)
				}
				e.p("VST1\t%s, (R13)", regList(L, V))
				for v := 0; v < V; v++ {
					m.op3("FMUL", L+v, a(1, v), L+v)
				}
			} else {
				for v := 0; v < V; v++ {
					tanh(L + v)
					m.op3("FMUL", L+v, a(1, v), L+v)
				}
			}
			e.p("VST1\t%s, (R3)", regList(L, V))
		case kGRU: // z r nx nh: n = tanh(nx + r⊙nh), h' = n + z⊙(h - n)
			for v := 0; v < V; v++ {
				sig(a(0, v))
				sig(a(1, v))
				m.fmla(a(2, v), a(1, v), a(3, v))
				tanh(a(2, v))
			}
			e.p("VLD1\t(R1), %s", regList(L, V))
			for v := 0; v < V; v++ {
				m.op3("FSUB", L+v, L+v, a(2, v))
				m.fmla(a(2, v), a(0, v), L+v)
			}
			e.p("VST1\t%s, (R3)", regList(a(2, 0), V))
		case kGRU0Z: // store z and r⊙h
			for v := 0; v < V; v++ {
				sig(a(0, v))
			}
			e.p("VST1\t%s, (R3)", regList(a(0, 0), V))
			for v := 0; v < V; v++ {
				sig(a(1, v))
			}
			e.p("VLD1\t(R1), %s", regList(L, V))
			for v := 0; v < V; v++ {
				m.op3("FMUL", a(1, v), a(1, v), L+v)
			}
			e.p("VST1\t%s, (R8)", regList(a(1, 0), V))
		case kGRU0N: // n = tanh(·), h' = n + z⊙(h - n), z from aux
			for v := 0; v < V; v++ {
				tanh(a(0, v))
			}
			e.p("VLD1\t(R1), %s", regList(L, V))
			e.p("VLD1\t(R8), %s", regList(Z, V))
			for v := 0; v < V; v++ {
				m.op3("FSUB", L+v, L+v, a(0, v))
				m.fmla(a(0, v), Z+v, L+v)
			}
			e.p("VST1\t%s, (R3)", regList(a(0, 0), V))
		case kRNN:
			for v := 0; v < V; v++ {
				tanh(a(0, v))
			}
			e.p("VST1\t%s, (R3)", regList(a(0, 0), V))
		}
	}
	e.p("RET")
}

// cellKernels returns cell_arm64.s's kernels (after the activations) and
// cellkern_arm64.go.
func cellKernels(e *emitter) []byte {
	var d bytes.Buffer
	d.WriteString("// Code generated by ops/linalg/internal/neongen; DO NOT EDIT.\n\n//go:build arm64 && !purego\n\npackage linalg\n\n")
	var calls, table []string
	id := func(k cellKernel) int {
		calls = append(calls, fmt.Sprintf("\tcase %d:\n\t\t%s(f)\n", len(calls), k.name))
		k.emit(e)
		fmt.Fprintf(&d, "//go:noescape\nfunc %s(f *neonFrame)\n\n", k.name)
		return len(calls) - 1
	}
	for _, t := range cellTable {
		group := id(cellKernel{k: t.k, rows: t.rows, units: t.lanes, name: fmt.Sprintf("%s%dNEON", t.k.name, t.rows)})
		one := id(cellKernel{k: t.k, rows: 1, units: t.lanes, name: fmt.Sprintf("%s1NEON", t.k.name)})
		multi := -1
		if t.multi {
			multi = id(cellKernel{k: t.k, rows: 1, units: 16, name: fmt.Sprintf("%s1x2NEON", t.k.name)})
		}
		table = append(table, fmt.Sprintf("\t%s: {lanes: %d, rows: %d, group: %d, one: %d, multi: %d},\n",
			t.k.kind, t.lanes, t.rows, group, one, multi))
	}
	// a switch, not func values: calling through a func value would make
	// the frame escape to the heap
	fmt.Fprintf(&d, "// callCellNEON runs kernel id on f.\nfunc callCellNEON(id int, f *neonFrame) {\n\tswitch id {\n%s\t}\n}\n\n", strings.Join(calls, ""))
	fmt.Fprintf(&d, "// cellKernelsNEON are the kernels of every cell kind.\nvar cellKernelsNEON = [neonCellKinds]neonKernels{\n%s}\n", strings.Join(table, ""))
	out, err := format.Source(d.Bytes())
	if err != nil {
		panic(err)
	}
	return out
}

// generateCell writes cell_arm64.s (activations and cells) and
// cellkern_arm64.go.
func generateCell() (asm, decl []byte) {
	var e emitter
	e.raw(`// Code generated by ops/linalg/internal/neongen; DO NOT EDIT.

//go:build arm64 && !purego

#include "textflag.h"
#include "go_asm.h"

// NEON vector sigmoid, tanh and erf over slices, and the fused LSTM / GRU /
// RNN steps (see cell.go) in chunks of 8 or 16 hidden units; the operands
// come in a neonFrame, read at the offsets go_asm.h gives. Partial chunks
// are staged through full-width buffers by cell_arm64.go, so every load and
// store here is whole vectors.
//
// exp clamps its input with FMIN/FMAX, which return NaN when an input is
// NaN: NaN propagates.

`)
	e.raw("%s", constData())
	e.raw("%s", ratData())
	activations(&e)
	decl = cellKernels(&e)
	return e.b.Bytes(), decl
}
