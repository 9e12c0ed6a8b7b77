//go:build amd64 && !purego

package linalg

import "unsafe"

// mulGateFrame is the operands of a gate tile (cellMulG*x16AVX2, see
// internal/asmgen/cellmulgate.go): the two-input tile's (cout = cin +
// x·B[:kx] + h·B[kx:], tiles row tiles) and the pending block's gate
// pass, one row per tile while pn > 0. Strides are in bytes. The kernel
// counts pn down; its cursors are uintptrs so that the frame never holds
// a pointer past the end of a slice when the kernel returns.
type mulGateFrame struct {
	kx     int
	x      unsafe.Pointer
	ldx    int
	kh     int
	h      unsafe.Pointer
	ldh    int
	b      unsafe.Pointer
	ldb    int
	cin    unsafe.Pointer
	ldcin  int
	cout   unsafe.Pointer
	ldcout int
	tiles  int
	pscr   unsafe.Pointer // the next pending row's scratch (4 slots × 16 units)
	pc     unsafe.Pointer // its cell state (16 units)
	pho    unsafe.Pointer // its h out (16 units)
	pldc   int
	pldo   int
	pn     int // pending rows left
	pt     int // pending rows per tile: 1, or 2 while 2 are left
	// the kernel's own
	xc, hc, sc, cc, oc uintptr
	seg, rest          int
	sp1, sp2           [8]float32 // a task's spills
}
