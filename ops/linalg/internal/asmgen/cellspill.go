package main

import "fmt"

// Spilling AVX2 group kernels. Two rows × 4 accumulators leave the FMA
// pipes no slack (latency 4 × 2 pipes wants ≥ 8 independent sums, and
// every k step also loads 4 panel vectors and broadcasts 2 inputs), so the
// AVX2 LSTM and GRU groups take 3 rows: 12 accumulators (Y0-Y11), the
// rows' broadcasts (Y12-Y14) and a single panel register (Y15) that each
// slot's vector passes through on its way to the 3 rows' FMAs — 4 loads +
// 3 broadcasts per 12 FMAs instead of 6 per 8. The gate arithmetic needs
// 8 registers besides a row's 4 accumulators, so after the multiply-adds
// the rows after the first go to the stack frame and come back one row at
// a time; the sums and their order are the 2-row kernel's.

// spill reports whether the kernel's accumulators outgrow what the gate
// arithmetic leaves (AVX2: Y13-Y15 are its constants, 5 temporaries).
func (k kernel) spill() bool {
	return !k.s.avx512() && !k.gate && k.chunks == 1 && k.rows*k.k.A+5 > 13
}

// frame is the kernel's stack frame in bytes: the spilled rows.
func (k kernel) frame() int {
	if !k.spill() {
		return 0
	}
	return (k.rows - 1) * k.k.A * k.s.vb()
}

// spillRegs: accumulators first, then the broadcasts, one panel register
// last. The gate temporaries follow the first row's accumulators (free
// once the other rows are spilled); the mask (a partial chunk's starting
// values) borrows the panel register before the loop.
func (k kernel) spillRegs() regs {
	var r regs
	n := k.rows * k.k.A
	v := func(i int) string { return fmt.Sprintf("%s%d", k.s.reg, i) }
	for i := 0; i < n; i++ {
		r.acc = append(r.acc, v(i))
	}
	for i := 0; i < k.rows; i++ {
		r.bcast = append(r.bcast, v(n+i))
	}
	r.panel = []string{v(n + k.rows)}
	if n+k.rows+1 > 16 || k.k.A+5 > 13 {
		panic(fmt.Sprintf("%s: out of registers", k.name()))
	}
	a := k.k.A
	r.t1, r.t2, r.t3, r.t4, r.mask = v(a), v(a+1), v(a+2), v(a+3), v(a+4)
	return r
}

// streamBody is one k step of a spilling kernel: broadcast the rows'
// inputs, then each slot's panel vector into the one panel register and
// on to every row's accumulator.
func (k kernel) streamBody(e *emitter, r regs, m []int) {
	for row := 0; row < k.rows; row++ {
		e.p("VBROADCASTSS %s, %s", rowAddr(row), r.bcast[row])
	}
	for s := 0; s < k.k.S; s++ {
		e.p("VMOVUPS %d(AX), %s", s*64, r.panel[0])
		for row := 0; row < k.rows; row++ {
			e.p("VFMADD231PS %s, %s, %s", r.bcast[row], r.panel[0], k.acc(r, row, 0, m[s]))
		}
	}
}

// spillOut stores the accumulators of rows 1.. to the stack frame.
func (k kernel) spillOut(e *emitter, r regs) regs {
	for row := 1; row < k.rows; row++ {
		for a := 0; a < k.k.A; a++ {
			e.p("VMOVUPS %s, %d(SP)", k.acc(r, row, 0, a), k.spillOff(row, a))
		}
	}
	return r
}

// reload brings row's accumulators back into the first row's registers.
func (k kernel) reload(e *emitter, r regs, row int) {
	for a := 0; a < k.k.A; a++ {
		e.p("VMOVUPS %d(SP), %s", k.spillOff(row, a), k.acc(r, 0, 0, a))
	}
}

func (k kernel) spillOff(row, a int) int { return ((row-1)*k.k.A + a) * k.s.vb() }
