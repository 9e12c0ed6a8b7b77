// Command asmgen writes ops/linalg's assembly for AVX-512 and AVX2+FMA
// from one description, so the two instruction sets share one source: the
// fused recurrent-cell kernels (cell_amd64.s, declared in
// cellkern_amd64.go, with the gate-only kernels of the blocked step), the
// SGEMM register tiles (sgemm_amd64.s, sgemmkern_amd64.go; AVX2's 4×24
// group tiles in sgemm24_amd64.s, sgemm24kern_amd64.go, its 3×32 panel-
// pair tiles in sgemm32_amd64.s, sgemm32kern_amd64.go) and the blocked
// step's product tiles (cellmul_amd64.s, cellmulkern_amd64.go), and the
// vector erf and one-pass GELU (erf_amd64.s, erfkern_amd64.go, with the
// pure-Go path's table erftab.go) and the vector exp (exp_amd64.s,
// expkern_amd64.go). Both sets get the same tiles, summation order and
// gate arithmetic, differing only in vector width, masking and register
// count.
//
//	go generate ./ops/linalg   (runs: go run ./internal/asmgen)
//
// The test in this directory fails when the committed files differ from
// what the generator writes.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	dir := flag.String("dir", ".", "directory of package linalg")
	flag.Parse()
	for name, data := range outputs() {
		if err := os.WriteFile(filepath.Join(*dir, name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// outputs are the generated files by name.
func outputs() map[string][]byte {
	casm, cdecl := generate()
	sasm, sdecl := generateSgemm()
	masm, mdecl := generateCellMul()
	gasm, gdecl := generateSgemmGroups()
	out := map[string][]byte{"cell_amd64.s": casm, "cellkern_amd64.go": cdecl, "sgemm_amd64.s": sasm, "sgemmkern_amd64.go": sdecl,
		"cellmul_amd64.s": masm, "cellmulkern_amd64.go": mdecl,
		"sgemm24_amd64.s": gasm, "sgemm24kern_amd64.go": gdecl}
	wasm, wdecl := generatePairTiles()
	out["sgemm32_amd64.s"], out["sgemm32kern_amd64.go"] = wasm, wdecl
	for name, data := range erfOutputs() {
		out[name] = data
	}
	for name, data := range expOutputs() {
		out[name] = data
	}
	for name, data := range cellMulXHOutputs() {
		out[name] = data
	}
	return out
}

// isa is one instruction set's vector shape.
type isa struct {
	suffix string // kernel name suffix
	lanes  int    // float32 lanes per vector (units per chunk)
	reg    string // vector register prefix
}

func (s *isa) vb() int      { return 4 * s.lanes }
func (s *isa) cpb() int     { return 16 / s.lanes } // chunks per 16-unit packed block
func (s *isa) avx512() bool { return s.lanes == 16 }

var (
	avx512 = &isa{suffix: "AVX512", lanes: 16, reg: "Z"}
	avx2   = &isa{suffix: "AVX2", lanes: 8, reg: "Y"}
)

// cellKind is one recurrent cell step: S packed slots per k, A accumulators
// per row and chunk, the accumulator each slot feeds in the x and h phases.
type cellKind struct {
	name       string // Go kind constant suffix and kernel prefix
	S, A       int
	xmap, hmap []int
	initSlots  int  // accumulators 0..initSlots-1 start from Init (slot stride hb)
	rb         bool // accumulator 3 starts from RB (GRU h gate), or zero
}

var (
	kLSTM  = &cellKind{name: "lstmCell", S: 4, A: 4, xmap: []int{0, 1, 2, 3}, hmap: []int{0, 1, 2, 3}, initSlots: 4}
	kGRU   = &cellKind{name: "gruCell", S: 3, A: 4, xmap: []int{0, 1, 2}, hmap: []int{0, 1, 3}, initSlots: 3, rb: true}
	kGRU0Z = &cellKind{name: "gru0ZR", S: 2, A: 2, xmap: []int{0, 1}, hmap: []int{0, 1}, initSlots: 2}
	kGRU0N = &cellKind{name: "gru0N", S: 1, A: 1, xmap: []int{0}, hmap: []int{0}, initSlots: 1}
	kRNN   = &cellKind{name: "rnnCell", S: 1, A: 1, xmap: []int{0}, hmap: []int{0}, initSlots: 1}
)

// kernel is one generated function: rows batch rows × chunks vectors of
// units. rows > 1 keeps the panel vectors in registers and broadcasts each
// row's input; rows == 1 multiplies by the panel straight from memory.
// A gate kernel (the blocked step's last pass) does no multiply-adds: all
// A accumulators start from Init (slot stride hb; for the GRU the fourth is
// h·R_hᵀ + RB, which the fused kernel starts from RB), then the gates.
type kernel struct {
	k      *cellKind
	s      *isa
	rows   int
	chunks int
	gate   bool
}

func (k kernel) name() string {
	if k.gate {
		return fmt.Sprintf("%sG%d%s", k.k.name, k.rows, k.s.suffix)
	}
	if k.chunks > 1 {
		return fmt.Sprintf("%s1x%d%s", k.k.name, k.chunks, k.s.suffix)
	}
	return fmt.Sprintf("%s%d%s", k.k.name, k.rows, k.s.suffix)
}

// kernels per instruction set: the row-group kernel, the one-row kernel and
// the one-row several-chunk kernels (widest first). AVX2 has 16 vector
// registers, so its groups are smaller; its several-chunk kernels cover
// the two halves of one packed block. The AVX2 LSTM and GRU groups are 3
// rows (12 accumulators, streamed panel: see spill); their gate-only
// kernels keep 2 rows, which need no spill.
func kernelTable() []struct {
	s     *isa
	k     *cellKind
	rows  int
	multi []int
	grows int // rows of the gate-only kernel (LSTM, GRU)
} {
	return []struct {
		s     *isa
		k     *cellKind
		rows  int
		multi []int
		grows int
	}{
		{avx512, kLSTM, 4, []int{4, 2}, 4},
		{avx512, kGRU, 4, []int{4, 2}, 4},
		{avx512, kGRU0Z, 4, nil, 0},
		{avx512, kGRU0N, 4, nil, 0},
		{avx512, kRNN, 4, nil, 0},
		{avx2, kLSTM, 3, []int{2}, 2},
		{avx2, kGRU, 3, []int{2}, 2},
		{avx2, kGRU0Z, 4, nil, 0},
		{avx2, kGRU0N, 4, nil, 0},
		{avx2, kRNN, 4, nil, 0},
	}
}

type emitter struct{ b bytes.Buffer }

func (e *emitter) p(format string, a ...any) {
	fmt.Fprintf(&e.b, "\t"+format+"\n", a...)
}

func (e *emitter) raw(s string) { e.b.WriteString(s) }

func generate() (asm, decl []byte) {
	var e emitter
	e.raw(asmHeader)
	var d bytes.Buffer
	d.WriteString(declHeader)
	tables := map[*isa][]string{}
	var calls []string
	id := func(k kernel) string {
		calls = append(calls, fmt.Sprintf("\tcase %d:\n\t\t%s(f)\n", len(calls), k.name()))
		return fmt.Sprint(len(calls) - 1)
	}
	for _, t := range kernelTable() {
		group := kernel{k: t.k, s: t.s, rows: t.rows, chunks: 1}
		one := kernel{k: t.k, s: t.s, rows: 1, chunks: 1}
		ks := []kernel{group, one}
		var multi []string
		for _, n := range t.multi {
			m := kernel{k: t.k, s: t.s, rows: 1, chunks: n}
			ks = append(ks, m)
			multi = append(multi, fmt.Sprintf("{%d, %s, %v}", n, id(m), m.loops()))
		}
		for _, k := range ks {
			k.emit(&e)
			fmt.Fprintf(&d, "//go:noescape\nfunc %s(f *cellFrame)\n\n", k.name())
		}
		ms := "nil"
		if len(multi) > 0 {
			ms = "[]multiKernel{" + strings.Join(multi, ", ") + "}"
		}
		gate, gate1 := "-1", "-1"
		if t.k == kLSTM || t.k == kGRU {
			for _, g := range []kernel{{k: t.k, s: t.s, rows: t.grows, chunks: 1, gate: true}, {k: t.k, s: t.s, rows: 1, chunks: 1, gate: true}} {
				g.emit(&e)
				fmt.Fprintf(&d, "//go:noescape\nfunc %s(f *cellFrame)\n\n", g.name())
			}
			gate = id(kernel{k: t.k, s: t.s, rows: t.grows, chunks: 1, gate: true})
			gate1 = id(kernel{k: t.k, s: t.s, rows: 1, chunks: 1, gate: true})
		}
		tables[t.s] = append(tables[t.s], fmt.Sprintf("\tkind%s: {lanes: %d, rows: %d, group: %s, one: %s, multi: %s, gate: %s, grows: %d, gate1: %s},\n",
			strings.ToUpper(t.k.name[:1])+t.k.name[1:], t.s.lanes, t.rows, id(group), id(one), ms, gate, t.grows, gate1))
	}
	emitGatePasses(&e, &d)
	// a switch, not func values: calling through a func value would make
	// the frame escape to the heap
	fmt.Fprintf(&d, "// callCell runs kernel id on f.\nfunc callCell(id int, f *cellFrame) {\n\tswitch id {\n%s\t}\n}\n\n", strings.Join(calls, ""))
	for _, s := range []*isa{avx512, avx2} {
		fmt.Fprintf(&d, "// cellKernels%s are the %s kernels of every cell kind.\nvar cellKernels%s = [cellKinds]cellKernels{\n%s}\n\n",
			s.suffix, s.suffix, s.suffix, strings.Join(tables[s], ""))
	}
	out, err := format.Source(d.Bytes())
	if err != nil {
		panic(err)
	}
	return e.b.Bytes(), out
}

const declHeader = `// Code generated by ops/linalg/internal/asmgen; DO NOT EDIT.

//go:build amd64 && !purego

package linalg

`

// asmHeader holds the constants and the gate macros of both sets.
var asmHeader = `// Code generated by ops/linalg/internal/asmgen; DO NOT EDIT.

//go:build amd64 && !purego

#include "textflag.h"
#include "go_asm.h"

// Fused LSTM / GRU / RNN steps (see cell.go) for AVX-512 (one ZMM = 16
// units, masks in K1) and AVX2+FMA (one YMM = 8 units, half a packed
// block; masked loads and stores with VMASKMOVPS for a partial chunk). The
// operands come in a cellFrame, read at the offsets go_asm.h gives.
//
// σ and tanh are rational functions, the same operations on both sets
// (internal/asmgen/cellact.go), their clamps compared with the input as
// the second source, the one x86 returns when either is NaN: NaN
// propagates.

` + actConsts + actMacros()

// regs of one kernel.
type regs struct {
	acc    []string // (row·chunks + chunk)·A + a
	panel  []string
	bcast  []string
	t1, t2 string // activation temporaries (AVX2; AVX-512 uses Z25/Z26)
	t3, t4 string // row temporaries
	mask   string // AVX2: the lane mask of a chunk
}

func (k kernel) regs() regs {
	var r regs
	n := k.rows * k.chunks * k.k.A
	v := func(i int) string { return fmt.Sprintf("%s%d", k.s.reg, i) }
	for i := 0; i < n; i++ {
		r.acc = append(r.acc, v(i))
	}
	if k.s.avx512() {
		for i := 0; i < k.k.S; i++ {
			r.panel = append(r.panel, v(16+i))
		}
		for i := 0; i < k.rows; i++ {
			r.bcast = append(r.bcast, v(20+i))
		}
		r.t3, r.t4 = "Z24", "Z23"
		return r
	}
	if k.spill() {
		return k.spillRegs()
	}
	next := n
	if k.rows > 1 {
		for i := 0; i < k.k.S; i++ {
			r.panel = append(r.panel, v(next))
			next++
		}
	}
	for i := 0; i < k.rows; i++ {
		r.bcast = append(r.bcast, v(next))
		next++
	}
	if next > 16 || n+5 > 13 { // Y13-Y15 hold the gate constants

		panic(fmt.Sprintf("%s: out of registers", k.name()))
	}
	r.t1, r.t2, r.t3, r.t4, r.mask = v(n), v(n+1), v(n+2), v(n+3), v(n+4)
	return r
}

func (k kernel) acc(r regs, row, chunk, a int) string {
	return r.acc[(row*k.chunks+chunk)*k.k.A+a]
}

// panelOff is chunk j's panel address relative to the chunk in pw: whole
// packed blocks are bs (R12) apart, chunks within one block vb apart.
func (k kernel) panelAddr(disp, j int) string {
	disp += (j % k.s.cpb()) * k.s.vb()
	switch j / k.s.cpb() {
	case 0:
		return fmt.Sprintf("%d(AX)", disp)
	case 1:
		return fmt.Sprintf("%d(AX)(R12*1)", disp)
	case 2:
		return fmt.Sprintf("%d(AX)(R12*2)", disp)
	case 3:
		return fmt.Sprintf("%d(AX)(R13*1)", disp)
	}
	panic("chunk out of range")
}

// rowAddr is row r of the operand at SI with stride R8 (R9 = 3·R8).
func rowAddr(r int) string {
	return [...]string{"(SI)", "(SI)(R8*1)", "(SI)(R8*2)", "(SI)(R9*1)"}[r]
}

func (k kernel) full() bool { return k.chunks > 1 }

// loadM loads a (possibly partial) chunk j from mem into dst.
func (k kernel) loadM(e *emitter, r regs, mem string, j int, dst string) {
	if k.s.avx512() {
		e.p("VMOVUPS.Z %s, K1, %s", mem, dst)
		return
	}
	if k.full() {
		e.p("VMOVUPS %s, %s", mem, dst)
		return
	}
	e.p("VMOVUPS %d(R14), %s", 32*j, r.mask)
	e.p("VMASKMOVPS %s, %s, %s", mem, r.mask, dst)
}

func (k kernel) emit(e *emitter) {
	r := k.regs()
	name := k.name()
	kd := k.k
	vb := k.s.vb()
	e.raw(fmt.Sprintf("// func %s(f *cellFrame): %d row(s) × %d chunk(s) of %d units.\nTEXT ·%s(SB), NOSPLIT, $%d-8\n", name, k.rows, k.chunks, k.s.lanes, name, k.frame()))
	e.p("MOVQ f+0(FP), DI")
	if k.s.avx512() {
		e.p("KMOVW cellFrame_mask(DI), K1")
		e.p("GATECONST512")
	} else {
		e.p("MOVQ cellFrame_lanes(DI), R14")
	}
	k.blockTop(e, name)
	// starting values
	e.p("MOVQ cellFrame_init(DI), R10")
	e.p("MOVQ cellFrame_hb(DI), R11")
	e.p("MOVQ cellFrame_ldi(DI), R13")
	initSlots, rb := kd.initSlots, kd.rb
	pr := r // the starting values' registers
	if k.spill() {
		pr.mask = r.panel[0] // the gate temporaries' mask is a row's accumulator
	}
	if k.gate {
		initSlots, rb = kd.A, false
	}
	for row := 0; row < k.rows; row++ {
		if row > 0 {
			e.p("ADDQ R13, R10")
		}
		if initSlots > 3 {
			e.p("LEAQ (R10)(R11*2), R12")
		}
		for j := 0; j < k.chunks; j++ {
			for a := 0; a < initSlots; a++ {
				mem := [...]string{"%d(R10)", "%d(R10)(R11*1)", "%d(R10)(R11*2)", "%d(R12)(R11*1)"}[a]
				if k.gate && !k.s.avx512() {
					// the blocked step's scratch holds whole 16-unit rows
					e.p("VMOVUPS %s, %s", fmt.Sprintf(mem, j*vb), k.acc(r, row, j, a))
					continue
				}
				k.loadM(e, pr, fmt.Sprintf(mem, j*vb), j, k.acc(r, row, j, a))
			}
		}
	}
	if rb {
		for row := 0; row < k.rows; row++ {
			for j := 0; j < k.chunks; j++ {
				z := k.acc(r, row, j, 3)
				if k.s.avx512() {
					e.p("VPXORD %s, %s, %s", z, z, z)
				} else {
					e.p("VXORPS %s, %s, %s", z, z, z)
				}
			}
		}
		e.p("MOVQ cellFrame_rb(DI), R12")
		e.p("TESTQ R12, R12")
		e.p("JZ %s_norb", name)
		for row := 0; row < k.rows; row++ {
			for j := 0; j < k.chunks; j++ {
				k.loadM(e, pr, fmt.Sprintf("%d(R12)", j*vb), j, k.acc(r, row, j, 3))
			}
		}
		e.raw(name + "_norb:\n")
	}
	// the multiply-adds: x phase (k1 rows, may be 0), then h phase (k2 ≥ 1)
	if k.gate {
		k.finish(e, r, name)
		return
	}
	e.p("MOVQ cellFrame_pw(DI), AX")
	if k.chunks > 1 {
		e.p("MOVQ cellFrame_bs(DI), R12")
		e.p("LEAQ (R12)(R12*2), R13")
	}
	if k.loops() {
		k.streamPhases(e, r, name)
		k.finish(e, r, name)
		k.blockNext(e, name)
		return
	}
	for _, ph := range []struct {
		kf, vf, lf, label string
		m                 []int
	}{{"k1", "x", "ldx", "x", kd.xmap}, {"k2", "h", "ldh", "h", kd.hmap}} {
		e.p("MOVQ cellFrame_%s(DI), CX", ph.kf)
		e.p("MOVQ cellFrame_%s(DI), SI", ph.vf)
		if k.rows > 1 {
			e.p("MOVQ cellFrame_%s(DI), R8", ph.lf)
			e.p("LEAQ (R8)(R8*2), R9")
		}
		if ph.label == "x" {
			e.p("TESTQ CX, CX")
			e.p("JZ %s_xdone", name)
		}
		e.raw(fmt.Sprintf("%s_%s:\n", name, ph.label))
		k.body(e, r, ph.m)
		e.p("DECQ CX")
		e.p("JNZ %s_%s", name, ph.label)
		if ph.label == "x" {
			e.raw(name + "_xdone:\n")
		}
	}
	k.finish(e, r, name)
}

// finish emits the gate arithmetic and stores, with a masked copy for a
// partial AVX2 chunk.
func (k kernel) finish(e *emitter, r regs, name string) {
	if k.spill() {
		r = k.spillOut(e, r)
	}
	if k.s.avx512() || k.full() {
		k.epilogue(e, r, false)
		return
	}
	e.p("CMPQ cellFrame_part(DI), $0")
	e.p("JNE %s_part", name)
	k.epilogue(e, r, false)
	e.raw(name + "_part:\n")
	k.epilogue(e, r, true)
}

// body is one k step: every accumulator += input(row) · panel(slot).
func (k kernel) body(e *emitter, r regs, m []int) {
	S := k.k.S
	vb := 64 // a packed slot vector is 16 units
	if k.rows > 1 && len(r.panel) < S {
		k.streamBody(e, r, m)
	} else if k.rows > 1 {
		for s := 0; s < S; s++ {
			e.p("VMOVUPS %d(AX), %s", s*vb, r.panel[s])
		}
		for row := 0; row < k.rows; row++ {
			e.p("VBROADCASTSS %s, %s", rowAddr(row), r.bcast[row])
		}
		for row := 0; row < k.rows; row++ {
			for s := 0; s < S; s++ {
				e.p("VFMADD231PS %s, %s, %s", r.bcast[row], r.panel[s], k.acc(r, row, 0, m[s]))
			}
		}
	} else {
		e.p("VBROADCASTSS (SI), %s", r.bcast[0])
		for j := 0; j < k.chunks; j++ {
			for s := 0; s < S; s++ {
				e.p("VFMADD231PS %s, %s, %s", k.panelAddr(s*vb, j), r.bcast[0], k.acc(r, 0, j, m[s]))
			}
		}
	}
	e.p("ADDQ $%d, AX", S*vb)
	e.p("ADDQ $4, SI")
}

// epilogue applies the gates and stores, row by row: DX = c (LSTM) or the
// old h, BX = h out (GRU0 pass 1: z), R10 = aux; strides R8, R9, R11.
// An LSTM also stores its activated gates and tanh(c') when the frame's
// gates pointer is set (a traced run): R10 = gates (stride R11, slots
// R12 apart), SI = tanh(c') (stride CX); a second copy of the epilogue
// does that, so a run without them takes no extra branch per chunk.
func (k kernel) epilogue(e *emitter, r regs, part bool) {
	if k.k != kLSTM {
		k.epilogueRows(e, r, part, false)
		return
	}
	label := k.name() + "_keep"
	if part {
		label += "part"
	}
	e.p("MOVQ cellFrame_gates(DI), R10")
	e.p("TESTQ R10, R10")
	e.p("JNZ %s", label)
	k.epilogueRows(e, r, part, false)
	e.raw(label + ":\n")
	e.p("MOVQ cellFrame_ldg(DI), R11")
	e.p("MOVQ cellFrame_hb(DI), R12")
	e.p("MOVQ cellFrame_tc(DI), SI")
	e.p("MOVQ cellFrame_ldt(DI), CX")
	k.epilogueRows(e, r, part, true)
}

func (k kernel) epilogueRows(e *emitter, r regs, part, keep bool) {
	if k.twoPhase() {
		k.epilogueTwoPhase(e, r, part, keep)
		return
	}
	kd := k.k
	vb := k.s.vb()
	e.p("MOVQ cellFrame_c(DI), DX")
	e.p("MOVQ cellFrame_ho(DI), BX")
	e.p("MOVQ cellFrame_ldc(DI), R8")
	e.p("MOVQ cellFrame_ldo(DI), R9")
	if kd == kGRU0Z || kd == kGRU0N {
		e.p("MOVQ cellFrame_aux(DI), R10")
		e.p("MOVQ cellFrame_ldaux(DI), R11")
	}
	k512 := k.s.avx512()
	if !k512 {
		e.p("GATECONST256")
	}
	sig := func(z string) {
		if k512 {
			e.p("SIG512(%s)", z)
		} else {
			e.p("SIG256(%s, %s, %s, %s)", z, r.t1, r.t2, r.t4)
		}
	}
	tanh := func(z string) {
		if k512 {
			e.p("TANH512(%s)", z)
		} else {
			e.p("TANH256(%s, %s, %s, %s)", z, r.t1, r.t2, r.t4)
		}
	}
	load := func(mem string, j int, dst string) {
		switch {
		case k512:
			e.p("VMOVUPS.Z %s, K1, %s", mem, dst)
		case part:
			e.p("VMOVUPS %d(R14), %s", 32*j, r.mask)
			e.p("VMASKMOVPS %s, %s, %s", mem, r.mask, dst)
		default:
			e.p("VMOVUPS %s, %s", mem, dst)
		}
	}
	store := func(src, mem string, j int) {
		switch {
		case k512:
			e.p("VMOVUPS %s, K1, %s", src, mem)
		case part:
			e.p("VMOVUPS %d(R14), %s", 32*j, r.mask)
			e.p("VMASKMOVPS %s, %s, %s", src, r.mask, mem)
		default:
			e.p("VMOVUPS %s, %s", src, mem)
		}
	}
	for row := 0; row < k.rows; row++ {
		ar := row // the row whose accumulators a() names
		if k.spill() {
			ar = 0
			if row > 0 {
				k.reload(e, r, row)
			}
		}
		if row > 0 {
			e.p("ADDQ R8, DX")
			e.p("ADDQ R9, BX")
			if kd == kGRU0Z || kd == kGRU0N {
				e.p("ADDQ R11, R10")
			}
			if keep {
				e.p("ADDQ R11, R10")
				e.p("ADDQ CX, SI")
			}
		}
		if keep {
			e.p("LEAQ (R10)(R12*2), R13")
		}
		for j := 0; j < k.chunks; j++ {
			a := func(i int) string { return k.acc(r, ar, j, i) }
			dx := fmt.Sprintf("%d(DX)", j*vb)
			bx := fmt.Sprintf("%d(BX)", j*vb)
			aux := fmt.Sprintf("%d(R10)", j*vb)
			switch kd {
			case kLSTM: // i o f g: c' = f⊙c + i⊙g, h' = o⊙tanh(c')
				sig(a(0))
				sig(a(1))
				sig(a(2))
				tanh(a(3))
				if keep {
					store(a(0), fmt.Sprintf("%d(R10)", j*vb), j)
					store(a(1), fmt.Sprintf("%d(R10)(R12*1)", j*vb), j)
					store(a(2), fmt.Sprintf("%d(R10)(R12*2)", j*vb), j)
					store(a(3), fmt.Sprintf("%d(R13)(R12*1)", j*vb), j)
				}
				load(dx, j, r.t3)
				e.p("VMULPS %s, %s, %s", a(2), r.t3, r.t3)
				e.p("VFMADD231PS %s, %s, %s", a(0), a(3), r.t3)
				store(r.t3, dx, j)
				tanh(r.t3)
				if keep {
					store(r.t3, fmt.Sprintf("%d(SI)", j*vb), j)
				}
				e.p("VMULPS %s, %s, %s", a(1), r.t3, r.t3)
				store(r.t3, bx, j)
			case kGRU: // z r nx nh: n = tanh(nx + r⊙nh), h' = n + z⊙(h - n)
				sig(a(0))
				sig(a(1))
				e.p("VFMADD231PS %s, %s, %s", a(1), a(3), a(2))
				tanh(a(2))
				load(dx, j, r.t3)
				e.p("VSUBPS %s, %s, %s", a(2), r.t3, r.t3)
				e.p("VFMADD231PS %s, %s, %s", a(0), r.t3, a(2))
				store(a(2), bx, j)
			case kGRU0Z: // store z and r⊙h
				sig(a(0))
				store(a(0), bx, j)
				sig(a(1))
				load(dx, j, r.t3)
				e.p("VMULPS %s, %s, %s", r.t3, a(1), a(1))
				store(a(1), aux, j)
			case kGRU0N: // n = tanh(·), h' = n + z⊙(h - n), z from aux
				tanh(a(0))
				load(dx, j, r.t3)
				e.p("VSUBPS %s, %s, %s", a(0), r.t3, r.t3)
				load(aux, j, r.t4)
				e.p("VFMADD231PS %s, %s, %s", r.t4, r.t3, a(0))
				store(a(0), bx, j)
			case kRNN:
				tanh(a(0))
				store(a(0), bx, j)
			}
		}
	}
	e.p("VZEROUPPER")
	e.p("RET")
	e.raw("\n")
}
