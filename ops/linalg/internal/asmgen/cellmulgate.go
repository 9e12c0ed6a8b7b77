package main

import (
	"bytes"
	"fmt"
	"go/format"
	"strings"
)

// Product tiles that run the previous block's gate pass (AVX2 LSTM, the
// blocked step of cellblock_amd64.go). After its products a 16-unit block
// leaves its pre-activations pending in one of two scratches, and the
// next block's tile calls run that gate pass, one pending row per tile,
// in pieces (tasks) between segments of the tile's h loop: the chain of
// a row's gates, several hundred instructions of latency, then shares the
// out-of-order window with independent multiply-adds instead of running
// alone after them (the gate pass alone took ~7 % of LSTM(256) × 64
// rows, ~39 µs a step, at IPC ~2).
//
// The tiles are those of cellmulxh.go (cout = cin + x·B[:kx] + h·B[kx:],
// k in order, one FMA per term; kx may be 0), at most 4 rows × 16 units
// so that five YMM registers stay free: Y0-Y7 accumulators, Y8-Y9 B's k
// row, Y10 the broadcast, Y11-Y15 a task's z and temporaries. The gate
// constants the cell kernels hold in Y13-Y15 come from memory: as the
// first source where x86 allows a memory operand, else loaded into a
// temporary the task does not use at that point (mulGateOps). A pending
// row's 12 tasks (per 8-unit chunk: i, o, f ← σ, g ← tanh in place;
// c' = f⊙c + i⊙g to c and over f; h' = o⊙tanh(c')) run the gate-pass
// kernels' instructions (cellgates.go) on each element, so a row's bits
// do not change. The two chunks' tasks alternate. The h loop (unrolled by
// 4, kh/4 trips) runs in segments of kh/64 trips, a task after each of the
// first 12, then the rest; a tile with no pending row left runs the
// plain loop.

// mulGateRows is the tallest gate tile (10 accumulators).
const mulGateRows = 5

type mulGateTile struct{ rows int }

func (t mulGateTile) name() string { return fmt.Sprintf("cellMulG%dx16AVX2", t.rows) }

// mulGateConsts is the constants' symbol in cellmulgate_amd64.s (cell_amd64.s's
// cellv<> is local to that file): the same values.
const mulGateConsts = "mgv<>"

// gate task registers: z and two temporaries
var mgZ, mgA, mgB = "Y13", "Y14", "Y15"

// Registers of the tile: Y0-Y9 accumulators, Y10-Y11 B, Y12 broadcast.
const mgBcast = "Y12"

func mgBReg(v int) string { return fmt.Sprintf("Y%d", 10+v) }

// exp3Ops is expOps on three registers (z, a, b) and two spill slots of
// the frame (s1: 2ⁿ, s2: r²), the constants from memory: the same
// operations on each element in the same order; where r² was a register
// multiplicand of a VFMADD213PS it is a memory one of a VFMADD132PS
// (t3·r² + t4 instead of r²·t3 + t4: the product is exact either way).
func exp3Ops(z, a, b, s1, s2 string) []string {
	c := func(off int) string { return fmt.Sprintf("%s+%d(SB)", mulGateConsts, off) }
	return []string{
		"VMOVUPS " + c(0) + ", " + a,
		"VMINPS " + z + ", " + a + ", " + z,
		"VMOVUPS " + c(32) + ", " + a,
		"VMAXPS " + z + ", " + a + ", " + z,
		"VMOVUPS " + c(480) + ", " + a, // t1
		"VFMADD231PS " + c(64) + ", " + z + ", " + a,
		"VSUBPS " + c(480) + ", " + a + ", " + b, // t2
		"VFNMADD231PS " + c(96) + ", " + b + ", " + z,
		"VFNMADD231PS " + c(128) + ", " + b + ", " + z,
		"VPSLLD $23, " + a + ", " + a,
		"VMOVUPS " + a + ", " + s1,
		"VMULPS " + z + ", " + z + ", " + b, // t2 = r²
		"VMOVUPS " + b + ", " + s2,
		"VMOVUPS " + c(192) + ", " + a, // t3
		"VFMADD231PS " + c(160) + ", " + z + ", " + a,
		"VMOVUPS " + c(256) + ", " + b, // t4
		"VFMADD231PS " + c(224) + ", " + z + ", " + b,
		"VFMADD132PS " + s2 + ", " + b + ", " + a,
		"VMOVUPS " + c(320) + ", " + b,
		"VFMADD231PS " + c(288) + ", " + z + ", " + b,
		"VFMADD132PS " + s2 + ", " + b + ", " + a,
		"VADDPS " + c(384) + ", " + z + ", " + b,
		"VFMADD132PS " + s2 + ", " + b + ", " + a,
		"VMULPS " + s1 + ", " + a + ", " + z,
	}
}

// sig3Ops and tanh3Ops are sigOps and tanhOps around exp3Ops.
func sig3Ops(z, a, b, s1, s2 string) []string {
	c := func(off int) string { return fmt.Sprintf("%s+%d(SB)", mulGateConsts, off) }
	out := []string{"VXORPS " + c(352) + ", " + z + ", " + z}
	out = append(out, exp3Ops(z, a, b, s1, s2)...)
	return append(out, "VADDPS "+c(384)+", "+z+", "+z, "VMOVUPS "+c(384)+", "+a, "VDIVPS "+z+", "+a+", "+z)
}

func tanh3Ops(z, a, b, s1, s2 string) []string {
	c := func(off int) string { return fmt.Sprintf("%s+%d(SB)", mulGateConsts, off) }
	out := []string{"VADDPS " + z + ", " + z + ", " + z}
	out = append(out, exp3Ops(z, a, b, s1, s2)...)
	return append(out, "VADDPS "+c(384)+", "+z+", "+z, "VMOVUPS "+c(416)+", "+a, "VDIVPS "+z+", "+a+", "+z,
		"VMOVUPS "+c(384)+", "+a, "VSUBPS "+z+", "+a+", "+z)
}

// task emits task n (0 to 11) of pending row r of this tile (0 or 1):
// R14 and R11 hold nothing across tasks.
func (mulGateTile) task(e *emitter, r, n int) {
	a, j := n/2, n%2 // the chunks' tasks alternate
	v := 32 * j
	slot := func(s int) string { return fmt.Sprintf("%d(R14)", 64*s+v) }
	z, ta := mgZ, mgA
	s1, s2 := "mulGateFrame_sp1(DI)", "mulGateFrame_sp2(DI)"
	ptr := func(field, ld, reg string) {
		e.p("MOVQ mulGateFrame_%s(DI), %s", field, reg)
		if r == 1 {
			if ld == "" {
				e.p("ADDQ $%d, %s", gateScrRow, reg)
			} else {
				e.p("ADDQ mulGateFrame_%s(DI), %s", ld, reg)
			}
		}
	}
	ptr("sc", "", "R14")
	switch {
	case a < 4:
		act := sig3Ops
		if a == 3 {
			act = tanh3Ops
		}
		e.p("VMOVUPS %s, %s", slot(a), z)
		for _, op := range act(z, mgA, mgB, s1, s2) {
			e.p("%s", op)
		}
		e.p("VMOVUPS %s, %s", z, slot(a))
	case a == 4:
		// c' = c·f + g·i, to c and over f
		ptr("cc", "pldc", "R11")
		e.p("VMOVUPS %s, %s", slot(3), z)
		e.p("VMOVUPS %d(R11), %s", v, ta)
		e.p("VMULPS %s, %s, %s", slot(2), ta, ta)
		e.p("VFMADD231PS %s, %s, %s", slot(0), z, ta)
		e.p("VMOVUPS %s, %d(R11)", ta, v)
		e.p("VMOVUPS %s, %s", ta, slot(2))
	default:
		// h' = tanh(c')·o
		e.p("VMOVUPS %s, %s", slot(2), z)
		for _, op := range tanh3Ops(z, mgA, mgB, s1, s2) {
			e.p("%s", op)
		}
		e.p("VMULPS %s, %s, %s", slot(1), z, z)
		ptr("oc", "pldo", "R11")
		e.p("VMOVUPS %s, %d(R11)", z, v)
	}
}

const mulGateTasks = 12

func (t mulGateTile) acc(row, v int) string { return fmt.Sprintf("Y%d", 2*row+v) }
func (t mulGateTile) aAddr(row int) string {
	return [...]string{"(AX)", "(AX)(R8*1)", "(AX)(R8*2)", "(AX)(R10*1)", "(AX)(R8*4)"}[row]
}

// step4 emits four k steps (B from BX, DX and R9 = 3·ldb apart), then
// moves a and b four steps on.
func (t mulGateTile) step4(e *emitter) {
	bAddr := [...]string{"%d(BX)", "%d(BX)(DX*1)", "%d(BX)(DX*2)", "%d(BX)(R9*1)"}
	for u := 0; u < 4; u++ {
		for v := 0; v < 2; v++ {
			e.p("VMOVUPS "+bAddr[u]+", %s", 32*v, mgBReg(v))
		}
		for row := 0; row < t.rows; row++ {
			e.p("VBROADCASTSS %d%s, %s", 4*u, t.aAddr(row), mgBcast)
			for v := 0; v < 2; v++ {
				e.p("VFMADD231PS %s, %s, %s", mgBReg(v), mgBcast, t.acc(row, v))
			}
		}
	}
	e.p("ADDQ $16, AX")
	e.p("LEAQ (BX)(DX*4), BX")
}

// step1 emits one k step.
func (t mulGateTile) step1(e *emitter) {
	for v := 0; v < 2; v++ {
		e.p("VMOVUPS %d(BX), %s", 32*v, mgBReg(v))
	}
	for row := 0; row < t.rows; row++ {
		e.p("VBROADCASTSS %s, %s", t.aAddr(row), mgBcast)
		for v := 0; v < 2; v++ {
			e.p("VFMADD231PS %s, %s, %s", mgBReg(v), mgBcast, t.acc(row, v))
		}
	}
	e.p("ADDQ $4, AX")
	e.p("ADDQ DX, BX")
}

// loop4 emits CX (may be 0) trips of four k steps.
func (t mulGateTile) loop4(e *emitter, label string) {
	e.p("TESTQ CX, CX")
	e.p("JZ %s_end", label)
	e.raw(label + ":\n")
	t.step4(e)
	e.p("DECQ CX")
	e.p("JNZ %s", label)
	e.raw(label + "_end:\n")
}

// loop1 emits SI (may be 0) single k steps.
func (t mulGateTile) loop1(e *emitter, label string) {
	e.p("TESTQ SI, SI")
	e.p("JZ %s_end", label)
	e.raw(label + ":\n")
	t.step1(e)
	e.p("DECQ SI")
	e.p("JNZ %s", label)
	e.raw(label + "_end:\n")
}

// spreadDensity[pr] is how many task instructions a k step carries when
// the tile runs pr pending rows' tasks spread through its h loop.
var spreadDensity = [...]int{0, 2, 3}

// taskOps are pending rows' tasks as one instruction list.
func (t mulGateTile) taskOps(pr int) []string {
	var te emitter
	for n := 0; n < mulGateTasks*pr; n++ {
		t.task(&te, n/mulGateTasks, n%mulGateTasks)
	}
	return strings.Split(strings.TrimSuffix(strings.ReplaceAll(te.b.String(), "\t", ""), "\n"), "\n")
}

// spread emits n k steps (n a multiple of 4) straight, with d of ops after
// rows of each step: a task's dependent instructions enter the window
// about as fast as their chain completes, instead of all at once (a task
// waiting as a block of ~30 µops filled the scheduler and stalled the
// multiply-adds).
func (t mulGateTile) spread(e *emitter, ops []string, d, n int) {
	bAddr := [...]string{"%d(BX)", "%d(BX)(DX*1)", "%d(BX)(DX*2)", "%d(BX)(R9*1)"}
	after := map[int]int{}
	for j := 0; j < d; j++ {
		after[(2*j+1)*t.rows/(2*d)]++
	}
	for i := 0; i < n; i++ {
		u := i % 4
		for v := 0; v < 2; v++ {
			e.p("VMOVUPS "+bAddr[u]+", %s", 32*v, mgBReg(v))
		}
		for row := 0; row < t.rows; row++ {
			e.p("VBROADCASTSS %d%s, %s", 4*u, t.aAddr(row), mgBcast)
			for v := 0; v < 2; v++ {
				e.p("VFMADD231PS %s, %s, %s", mgBReg(v), mgBcast, t.acc(row, v))
			}
			for c := 0; c < after[row] && len(ops) > 0; c++ {
				e.p("%s", ops[0])
				ops = ops[1:]
			}
		}
		if u == 3 {
			e.p("ADDQ $16, AX")
			e.p("LEAQ (BX)(DX*4), BX")
		}
	}
	if len(ops) > 0 {
		panic("spread: tasks left over")
	}
}

// segment emits the multiply-adds of one input (cursor field cur, stride
// field ld, k field k), with pr pending rows' tasks: spread through the
// first k steps when k allows (tiles of 4 rows or more), else between
// segments of the loop.
func (t mulGateTile) segment(e *emitter, label, k, cur, ld string, pr int) {
	e.p("MOVQ mulGateFrame_%s(DI), AX", cur)
	e.p("MOVQ mulGateFrame_%s(DI), R8", ld)
	e.p("LEAQ (R8)(R8*2), R10")
	e.p("MOVQ mulGateFrame_%s(DI), CX", k)
	if pr == 0 {
		e.p("MOVQ CX, SI")
		e.p("ANDQ $3, SI")
		e.p("SHRQ $2, CX")
		t.loop4(e, label+"_l4")
		t.loop1(e, label+"_l1")
		return
	}
	if t.rows >= 4 {
		ops := t.taskOps(pr)
		d := spreadDensity[pr]
		n := 4 * ((len(ops) + 4*d - 1) / (4 * d))
		e.p("CMPQ CX, $%d", n)
		e.p("JLT %s_seq", label)
		t.spread(e, ops, d, n)
		e.p("SUBQ $%d, CX", n)
		e.p("MOVQ CX, SI")
		e.p("ANDQ $3, SI")
		e.p("SHRQ $2, CX")
		t.loop4(e, label+"_sr4")
		t.loop1(e, label+"_sr1")
		e.p("JMP %s_adv", label)
		e.raw(label + "_seq:\n")
	}
	e.p("MOVQ CX, SI")
	e.p("ANDQ $3, SI")
	e.p("SHRQ $2, CX")
	// segments of kh/64 (one row) or kh/128 (two) trips, a task after
	// each of the first 12·pr, then the rest
	nt := mulGateTasks * pr
	e.p("MOVQ CX, R11")
	e.p("SHRQ $%d, R11", 3+pr)
	e.p("MOVQ R11, mulGateFrame_seg(DI)")
	e.p("IMUL3Q $%d, R11, R11", nt)
	e.p("SUBQ R11, CX")
	e.p("MOVQ CX, mulGateFrame_rest(DI)")
	for n := 0; n < nt; n++ {
		e.p("MOVQ mulGateFrame_seg(DI), CX")
		t.loop4(e, fmt.Sprintf("%s_s%d", label, n))
		t.task(e, n/mulGateTasks, n%mulGateTasks)
	}
	e.p("MOVQ mulGateFrame_rest(DI), CX")
	t.loop4(e, label+"_r4")
	t.loop1(e, label+"_l1")
	// the next pending row
	e.raw(label + "_adv:\n")
	e.p("ADDQ $%d, mulGateFrame_sc(DI)", pr*gateScrRow)
	for i := 0; i < pr; i++ {
		e.p("MOVQ mulGateFrame_pldc(DI), R11")
		e.p("ADDQ R11, mulGateFrame_cc(DI)")
		e.p("MOVQ mulGateFrame_pldo(DI), R11")
		e.p("ADDQ R11, mulGateFrame_oc(DI)")
	}
	e.p("SUBQ $%d, mulGateFrame_pn(DI)", pr)
}

func (t mulGateTile) emit(e *emitter) {
	name := t.name()
	if 2*t.rows+3+3 > 16 || t.rows > mulGateRows {
		panic(name + ": out of registers")
	}
	e.raw(fmt.Sprintf("// func %s(f *mulGateFrame)\nTEXT ·%s(SB), NOSPLIT, $0-8\n", name, name))
	e.p("MOVQ f+0(FP), DI")
	e.p("MOVQ mulGateFrame_ldb(DI), DX")
	e.p("LEAQ (DX)(DX*2), R9")
	e.p("MOVQ mulGateFrame_cin(DI), R12")
	e.p("MOVQ mulGateFrame_cout(DI), R13")
	for _, f := range [][2]string{{"x", "xc"}, {"h", "hc"}, {"pscr", "sc"}, {"pc", "cc"}, {"pho", "oc"}} {
		e.p("MOVQ mulGateFrame_%s(DI), R14", f[0])
		e.p("MOVQ R14, mulGateFrame_%s(DI)", f[1])
	}
	e.raw(name + "_tile:\n")
	e.p("MOVQ mulGateFrame_b(DI), BX")
	e.p("MOVQ R12, SI")
	e.p("MOVQ mulGateFrame_ldcin(DI), R14")
	for row := 0; row < t.rows; row++ {
		if row > 0 {
			e.p("ADDQ R14, SI")
		}
		for v := 0; v < 2; v++ {
			e.p("VMOVUPS %d(SI), %s", 32*v, t.acc(row, v))
		}
	}
	e.p("ADDQ R14, SI")
	e.p("MOVQ SI, R12") // the next tile's cin
	t.segment(e, name+"_x", "kx", "xc", "ldx", 0)
	// two pending rows if pt says so and two are left, else one if any
	e.p("CMPQ mulGateFrame_pn(DI), $0")
	e.p("JEQ %s_plain", name)
	e.p("CMPQ mulGateFrame_pt(DI), $2")
	e.p("JLT %s_one", name)
	e.p("CMPQ mulGateFrame_pn(DI), $2")
	e.p("JLT %s_one", name)
	t.segment(e, name+"_hp2", "kh", "hc", "ldh", 2)
	e.p("JMP %s_hdone", name)
	e.raw(name + "_one:\n")
	t.segment(e, name+"_hp1", "kh", "hc", "ldh", 1)
	e.p("JMP %s_hdone", name)
	e.raw(name + "_plain:\n")
	t.segment(e, name+"_h", "kh", "hc", "ldh", 0)
	e.raw(name + "_hdone:\n")
	e.p("MOVQ R13, SI")
	e.p("MOVQ mulGateFrame_ldcout(DI), R14")
	for row := 0; row < t.rows; row++ {
		if row > 0 {
			e.p("ADDQ R14, SI")
		}
		for v := 0; v < 2; v++ {
			e.p("VMOVUPS %s, %d(SI)", t.acc(row, v), 32*v)
		}
	}
	e.p("ADDQ R14, SI")
	e.p("MOVQ SI, R13")
	// the next tile's x and h rows
	for _, in := range [][2]string{{"xc", "ldx"}, {"hc", "ldh"}} {
		e.p("MOVQ mulGateFrame_%s(DI), R8", in[1])
		e.p("IMUL3Q $%d, R8, R8", t.rows)
		e.p("ADDQ R8, mulGateFrame_%s(DI)", in[0])
	}
	e.p("DECQ mulGateFrame_tiles(DI)")
	e.p("JNZ %s_tile", name)
	e.p("VZEROUPPER")
	e.p("RET")
	e.raw("\n")
}

// cellMulGateOutputs are the generated files of the gate tiles.
func cellMulGateOutputs() map[string][]byte {
	var e emitter
	e.raw(`// Code generated by ops/linalg/internal/asmgen; DO NOT EDIT.

//go:build amd64 && !purego

#include "textflag.h"
#include "go_asm.h"

// Product tiles that run a pending block's LSTM gate pass between segments
// of their h loop (see internal/asmgen/cellmulgate.go). The operands come
// in a mulGateFrame, read at the offsets go_asm.h gives.

`)
	e.raw(strings.ReplaceAll(avx2Consts, "cellv<>", mulGateConsts))
	e.raw("\n")
	var d bytes.Buffer
	d.WriteString(declHeader)
	var cases, ids []string
	for i := 1; i <= mulGateRows; i++ {
		t := mulGateTile{rows: i}
		t.emit(&e)
		fmt.Fprintf(&d, "//go:noescape\nfunc %s(f *mulGateFrame)\n\n", t.name())
		cases = append(cases, fmt.Sprintf("\tcase %d:\n\t\t%s(f)\n", i-1, t.name()))
		ids = append(ids, fmt.Sprint(i-1))
	}
	fmt.Fprintf(&d, "// callMulGate runs gate tile id.\nfunc callMulGate(id int, f *mulGateFrame) {\n\tswitch id {\n%s\t}\n}\n\n", strings.Join(cases, ""))
	fmt.Fprintf(&d, "// mulGateIDsAVX2[rows-1] is the gate tile of that many rows.\nvar mulGateIDsAVX2 = [...]int8{%s}\n", strings.Join(ids, ", "))
	out, err := format.Source(d.Bytes())
	if err != nil {
		panic(err)
	}
	return map[string][]byte{"cellmulgate_amd64.s": e.b.Bytes(), "cellmulgatekern_amd64.go": out}
}
