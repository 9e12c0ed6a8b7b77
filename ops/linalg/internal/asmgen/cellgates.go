package main

import (
	"bytes"
	"fmt"
	"sort"
)

// The blocked step's AVX2 gate pass over many rows (cellblock_amd64.go).
// The 2-row gate kernels (lstmCellG2AVX2, gruCellG2AVX2) run two chains
// side by side, and a row's chain — the gates, then c', then tanh(c') —
// is a few hundred cycles long: called per 2 rows, the out-of-order window
// cannot reach the next call's rows and the pipes wait. These kernels take
// all the rows of one full 8-unit chunk in one call, in two loops over the
// block's scratch (rows gateScrRow bytes apart, the accumulators 16 units
// apart):
//
//	LSTM, loop 1: i, o, f ← σ(·) in place, g ← tanh(·); c' = f⊙c + i⊙g
//	        stored to c and over f in the scratch
//	      loop 2: h' = o⊙tanh(c')
//	GRU,  loop 1: z ← σ(·) in place, r ← σ(·); nx + r⊙nh over nx
//	      loop 2: n = tanh(·), h' = n + z⊙(h - n)
//
// A loop trip takes gateChains rows and runs each gate of theirs side by
// side (one activation per row, interleaved); loop 2's tanh(c') find their
// inputs long ready. Rows left over take one shorter trip. The registers
// the two chains leave (Y13-Y15 hold GATECONST256's clamps) hold five
// more of the activations' constants (gateHeld): every activation reads
// ~10 constant vectors from memory otherwise (with the rational
// activations, five held or three: the same time, the pass being bound
// by its vector operations, not its loads). Measured with the
// exp-based activations of before (three constants held) on the
// LSTM(256) × 64 rows gate pass (BenchmarkCellGates, Zen 4): 2-row
// kernels ~50 µs; this ~32 µs; three chains with the clamps
// from memory ~35 µs; a loop over whole rows instead of gates ~41 µs;
// three rows as streams staggered by a third of a row (software
// pipelined) ~40 µs; splitting each activation into two stages through
// memory no better.
//
// The wide kernels (…Gates16AVX2) take a full 16-unit block: a trip is
// one row, its two chains the row's two 8-unit chunks, so each trip reads
// and writes whole 64-byte lines of c and h, and a block is one call.
// Those rows are 1 KB apart in the model (h goes straight into Y, fresh
// memory each step, and 64 rows at 1 KB fall into 4 of the L1's 64
// sets): a call per chunk fetched each line twice, 64 rows apart. In
// lstm2x256 at batch 64 (AVX2) the gate pass went from ~45 to ~38 µs a
// step (min 7.6–8.1 → 6.7 ms a run, timed around the calls); alone,
// with c and h in L2 (BenchmarkCellGates), both take the same time.
//
// Every element sees the 2-row kernels' operations in their order (the
// same activation lists, gateAct reading a held constant from its
// register instead of memory), so a row gets the same bits as in the
// fused kernels. A partial chunk keeps the 2-row kernels (masked loads
// and stores).

const (
	gateScrRow = 4 * 64 // bytes per scratch row: 4 accumulators × 16 units
	gateChains = 2      // rows per trip
	chainRegs  = 4      // registers per row in a trip: z and 3 temporaries (sigOps, tanhOps)
)

// gateHeld are the constants held in registers (cellv row → register):
// the sigmoid's lower clamp and the leading coefficients of the Horner
// chains of both activations.
var gateHeld = map[string]string{"sigLo": "Y8", "sigP4": "Y9", "sigQ4": "Y10", "tanhP4": "Y11", "tanhQ4": "Y12"}

func heldNames() []string {
	var names []string
	for name := range gateHeld {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// gateAct is the AVX2 activations with gateHeld's constants read from
// their registers.
var gateAct = act256.holding(gateHeld)

// gatePass is one kind's gate-pass kernel. A wide one takes both 8-unit
// chunks of a full 16-unit block: a trip is one row, its two chains the
// row's two chunks, so a trip reads and writes whole 64-byte lines of c
// and h (the narrow kernel, a call per chunk, touches each line of those
// 1 KB-strided rows twice, 64 rows apart).
type gatePass struct {
	k    *cellKind
	wide bool
}

func (p gatePass) name() string {
	if p.wide {
		return p.k.name + "Gates16AVX2"
	}
	return p.k.name + "GatesAVX2"
}

// chain is row r's registers in a trip: z, then 3 temporaries.
func chain(r int) []string {
	c := make([]string, chainRegs)
	for i := range c {
		c[i] = fmt.Sprintf("Y%d", chainRegs*r+i)
	}
	return c
}

// scr is the scratch address of chain r's slot s in this trip: row r, or
// in a wide kernel chunk r of the trip's row.
func (p gatePass) scr(r, s int) string {
	if p.wide {
		return fmt.Sprintf("%d(R10)", 32*r+64*s)
	}
	return fmt.Sprintf("%d(R10)", r*gateScrRow+64*s)
}

// rowAt is chain r's vector of DX (c or old h, stride R8) or BX (h out,
// stride R9).
func (p gatePass) rowAt(base string, r int) string {
	if p.wide {
		if r == 0 {
			return "(" + base + ")"
		}
		return fmt.Sprintf("%d(%s)", 32*r, base)
	}
	s := map[string]string{"DX": "R8", "BX": "R9"}[base]
	switch r {
	case 0:
		return "(" + base + ")"
	case 1, 2:
		return fmt.Sprintf("(%s)(%s*%d)", base, s, r)
	}
	panic("gate pass: trip row out of range")
}

// slotAct loads slot s of t rows into their z, activates them side by
// side and, if store, writes them back.
func (p gatePass) slotAct(e *emitter, t, s int, tanh, store bool) {
	var lists [][]string
	for r := 0; r < t; r++ {
		c := chain(r)
		e.p("VMOVUPS %s, %s", p.scr(r, s), c[0])
		op := gateAct.sig
		if tanh {
			op = gateAct.tanh
		}
		lists = append(lists, op(c[0], c[1], c[2], c[3]))
	}
	for _, op := range interleave(lists...) {
		e.p("%s", op)
	}
	if store {
		for r := 0; r < t; r++ {
			e.p("VMOVUPS %s, %s", chain(r)[0], p.scr(r, s))
		}
	}
}

// trip1 is loop 1's work on t rows.
func (p gatePass) trip1(e *emitter, t int) {
	if p.k == kGRU {
		p.slotAct(e, t, 0, false, true)
		p.slotAct(e, t, 1, false, false)
		for r := 0; r < t; r++ {
			c := chain(r)
			e.p("VMOVUPS %s, %s", p.scr(r, 2), c[1])
			e.p("VMOVUPS %s, %s", p.scr(r, 3), c[2])
			e.p("VFMADD231PS %s, %s, %s", c[0], c[2], c[1]) // nx + nh·r
			e.p("VMOVUPS %s, %s", c[1], p.scr(r, 2))
		}
		return
	}
	p.slotAct(e, t, 0, false, true)
	p.slotAct(e, t, 1, false, true)
	p.slotAct(e, t, 2, false, true)
	p.slotAct(e, t, 3, true, false)
	for r := 0; r < t; r++ {
		c := chain(r)
		e.p("VMOVUPS %s, %s", p.rowAt("DX", r), c[1])
		e.p("VMULPS %s, %s, %s", p.scr(r, 2), c[1], c[1])      // c·f
		e.p("VFMADD231PS %s, %s, %s", p.scr(r, 0), c[0], c[1]) // + g·i
		e.p("VMOVUPS %s, %s", c[1], p.rowAt("DX", r))
		e.p("VMOVUPS %s, %s", c[1], p.scr(r, 2))
	}
}

// trip2 is loop 2's work on t rows.
func (p gatePass) trip2(e *emitter, t int) {
	p.slotAct(e, t, 2, true, false)
	for r := 0; r < t; r++ {
		c := chain(r)
		if p.k == kGRU {
			e.p("VMOVUPS %s, %s", p.rowAt("DX", r), c[1])
			e.p("VSUBPS %s, %s, %s", c[0], c[1], c[1])             // h - n
			e.p("VFMADD231PS %s, %s, %s", p.scr(r, 0), c[1], c[0]) // n + (h - n)·z
		} else {
			e.p("VMULPS %s, %s, %s", p.scr(r, 1), c[0], c[0]) // tanh(c')·o
		}
		e.p("VMOVUPS %s, %s", c[0], p.rowAt("BX", r))
	}
}

// loop emits one loop over the frame's rows: trips of gateChains rows, then
// one trip of the rows left.
func (p gatePass) loop(e *emitter, label string, trip func(*emitter, int)) {
	name, g := p.name(), gateChains
	if p.wide {
		// one row per trip, no rows left over
		e.p("MOVQ cellFrame_init(DI), R10")
		e.p("MOVQ cellFrame_c(DI), DX")
		e.p("MOVQ cellFrame_ho(DI), BX")
		e.p("MOVQ cellFrame_n(DI), CX")
		e.raw(fmt.Sprintf("%s_%s:\n", name, label))
		trip(e, g)
		e.p("ADDQ $%d, R10", gateScrRow)
		e.p("ADDQ R8, DX")
		e.p("ADDQ R9, BX")
		e.p("DECQ CX")
		e.p("JNZ %s_%s", name, label)
		return
	}
	e.p("MOVQ cellFrame_init(DI), R10")
	e.p("MOVQ cellFrame_c(DI), DX")
	e.p("MOVQ cellFrame_ho(DI), BX")
	e.p("MOVQ cellFrame_n(DI), CX")
	e.raw(fmt.Sprintf("%s_%s:\n", name, label))
	e.p("CMPQ CX, $%d", g)
	e.p("JLT %s_%stail", name, label)
	trip(e, g)
	e.p("ADDQ $%d, R10", g*gateScrRow)
	e.p("ADDQ R12, DX")
	e.p("ADDQ R14, BX")
	e.p("SUBQ $%d, CX", g)
	e.p("JMP %s_%s", name, label)
	e.raw(fmt.Sprintf("%s_%stail:\n", name, label))
	for t := 1; t < g; t++ {
		e.p("CMPQ CX, $%d", t)
		e.p("JNE %s_%snot%d", name, label, t)
		trip(e, t)
		e.raw(fmt.Sprintf("%s_%snot%d:\n", name, label, t))
	}
}

// emit writes the kernel: R10 the scratch, DX c (or the old h) and BX h
// out with strides R8 and R9 (times gateChains: R12, R14), CX the rows left.
func (p gatePass) emit(e *emitter) {
	name := p.name()
	if chainRegs*gateChains+3+len(gateHeld) > 16 || gateChains > 3 {
		panic(name + ": out of registers")
	}
	if p.wide && gateChains != 2 {
		panic(name + ": a wide trip is one row's two chunks")
	}
	what := "1 full chunk of 8 units"
	if p.wide {
		what = "1 full block of 16 units (f.n ≥ 1)"
	}
	e.raw(fmt.Sprintf("// func %s(f *cellFrame): the gates of f.n rows × %s (cellgates.go).\nTEXT ·%s(SB), NOSPLIT, $0-8\n", name, what, name))
	e.p("MOVQ f+0(FP), DI")
	e.p("MOVQ cellFrame_ldc(DI), R8")
	e.p("MOVQ cellFrame_ldo(DI), R9")
	if !p.wide {
		e.p("IMUL3Q $%d, R8, R12", gateChains)
		e.p("IMUL3Q $%d, R9, R14", gateChains)
	}
	e.p("GATECONST256")
	for _, name := range heldNames() {
		e.p("VMOVUPS %s, %s", cv(name), gateHeld[name])
	}
	p.loop(e, "p1", p.trip1)
	p.loop(e, "p2", p.trip2)
	e.p("VZEROUPPER")
	e.p("RET")
	e.raw("\n")
}

// emitGatePasses writes the LSTM and GRU gate-pass kernels and their
// declarations.
func emitGatePasses(e *emitter, d *bytes.Buffer) {
	for _, wide := range []bool{false, true} {
		for _, k := range []*cellKind{kLSTM, kGRU} {
			p := gatePass{k: k, wide: wide}
			p.emit(e)
			fmt.Fprintf(d, "//go:noescape\nfunc %s(f *cellFrame)\n\n", p.name())
		}
	}
}
