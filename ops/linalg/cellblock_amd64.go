//go:build amd64 && !purego

package linalg

import "unsafe"

// The blocked recurrent step: for many rows and a packed block panel
// larger than L1, the fused kernels (cell_amd64.go) would stream the panel
// of every chunk from L2 once per row group. Here the step runs per
// 16-unit block instead: product tiles of up to 6 (AVX2) or 12 (AVX-512)
// rows × 16 units of one gate slot (cellmul_amd64.s) run over blockK k
// rows at a time, a chunk of blockTiles tiles of rows through every slot
// before the next chunk (the chunk's inputs are reread from L1 per slot,
// the slot's panel slice streams from L2 like the fused kernels' panel),
// leaving the pre-activations of the block in a stack scratch; then the
// gate kernels (the fused kernels' epilogue; on AVX2 the gate-pass
// kernels, every row of a chunk per call) turn them into the new state.
// Each pre-activation is summed in the fused kernels' order (its start,
// then x's terms, then h's, one FMA each, stored and reloaded exactly
// between k blocks), so a row gets the same bits in either path and
// whatever its batch. With a narrow input (I ≤ blockK, H ≤ blockK) on
// AVX2, two-input tiles (cellmulxh_amd64.s) take a slot's x and h terms
// in one call, without the store and reload in between.
//
// blockK was 64 (a slot's 4 KB panel slice to stay in L1, every row
// swept per slot): each tile call then ran 64 k steps between reloads of
// its accumulators, 4 scratch passes at H = 256. Whole k up to 256 per
// call in chunks of 3 tiles is 5–10 % faster for LSTM(256) × 64 rows
// (AVX2, docs/PERFORMANCE.md). L1 misses, as counted by cachegrind, do
// not decide it: padding the rows' stride (1 KB rows alias every 4 in
// this machine's 32 KB 8-way L1) cut them by 45 % and gained nothing
// measurable.

const (
	maxBlockRows = 96  // rows whose pre-activations one scratch holds
	blockK       = 256 // k rows per tile call: the accumulators stay in registers over a whole H ≤ 256
	blockTiles   = 3   // row tiles per chunk, which runs every slot before the next chunk
)

// cellBlockMode forces (1) or forbids (-1) the blocked step; 0 chooses by
// size (tests compare both paths).
var cellBlockMode = 0

// blockedStep reports whether a step over rows rows runs blocked: enough
// rows to reuse the panel, and a unit block's panel over 8 KB. The bound
// was 20 KB, what the fused kernels could keep of Zen 4's 32 KB L1 (at
// H = 64, 64 rows, the fused step was 9 % faster there, before the
// blocked step's gate pass took all rows per call). On the Intel Xeon of
// session 10 (48 KB L1), at 64 rows, the blocked step is 2–18 % faster
// than the fused one at every size measured (BenchmarkCellBlocked, LSTM
// H = 32 … 96, GRU H = 32 … 96, best of 6), and 4 % in the seed LSTM at
// batch 64 (docs/PERFORMANCE.md, session 10). The smallest models (GRU3's
// 7.7 KB block) keep the fused step.
func blockedStep(p *CellWeights, rows int) bool {
	switch cellBlockMode {
	case 1:
		return true
	case -1:
		return false
	}
	return !useAVX512 && rows >= 12 && (p.I+p.H)*p.Slots*cellBlock*4 > 8<<10
}

// cellGateMode 0 runs an AVX2 block through the gate-pass kernels: a full
// block through the wide ones (lstmCellGates16AVX2, gruCellGates16AVX2:
// every row's 16 units per call), a partial block's full chunks through
// the narrow ones (lstmCellGatesAVX2, gruCellGatesAVX2: every row's 8
// units per call; see internal/asmgen/cellgates.go); 1 takes the narrow
// ones for full blocks too; -1 the 2-row gate kernels, as a partial chunk
// always does (tests and benchmarks compare them).
var cellGateMode = 0

// zeroUnits is the start of the GRU's h·R_hᵀ without a recurrence bias.
var zeroUnits [cellBlock]float32

// cellBlocked runs one LSTM (gru false) or GRU (linear_before_reset=1)
// step blocked. Scratch row i holds A = 4 accumulators × 16 units: LSTM
// i o f c; GRU z, r, x·W_hᵀ + init_h, h·R_hᵀ + RB.
func cellBlocked(p *CellWeights, a *CellArgs, gru bool) {
	const A = 4
	var scr [maxBlockRows * A * cellBlock]float32
	kind, xmap, hmap := kindLstmCell, [4]int{0, 1, 2, 3}, [4]int{0, 1, 2, 3}
	if gru {
		kind, xmap, hmap = kindGruCell, [4]int{0, 1, 2}, [4]int{0, 1, 3}
	}
	ks := cellSet(kind)
	ids := mulIDsAVX2[:]
	if useAVX512 {
		ids = mulIDsAVX512[:]
	}
	T := len(ids)
	H, I, S := p.H, p.I, p.Slots
	K := I + H
	bs := K * S * cellBlock
	nb := (H + cellBlock - 1) / cellBlock
	ldS := A * cellBlock // scratch row stride, floats
	nrb := (a.Rows + maxBlockRows - 1) / maxBlockRows
	per := (a.Rows + nrb - 1) / nrb
	f := cellFrame{ldi: 4 * ldS, hb: 4 * cellBlock, ldo: 4 * a.LdHOut, ldc: 4 * a.LdC}
	if gru {
		f.ldc = 4 * a.LdH
	}
	for r0 := 0; r0 < a.Rows; r0 += per {
		rows := min(per, a.Rows-r0)
		for u := 0; u < nb; u++ {
			u0 := u * cellBlock
			w := min(cellBlock, H-u0)
			blk := p.data[u*bs:]
			var started [A]bool
			if w < cellBlock {
				// a partial block: its starting values are copied (the
				// tiles read 16 units, past the end of Init's last slot)
				for i := 0; i < rows; i++ {
					row := scr[i*ldS : (i+1)*ldS]
					clear(row)
					init := a.Init[(r0+i)*a.LdInit:]
					for s := 0; s < S; s++ {
						copy(row[s*cellBlock:s*cellBlock+w], init[s*H+u0:s*H+u0+w])
					}
					if gru && a.RB != nil {
						copy(row[3*cellBlock:3*cellBlock+w], a.RB[u0:u0+w])
					}
				}
				started = [A]bool{true, true, true, true}
			}
			// start of accumulator acc for rows from i: its pointer and stride
			src := func(acc, i int) (unsafe.Pointer, int) {
				switch {
				case started[acc]:
					return unsafe.Pointer(&scr[i*ldS+acc*cellBlock]), 4 * ldS
				case acc < S:
					return unsafe.Pointer(&a.Init[(r0+i)*a.LdInit+acc*H+u0]), 4 * a.LdInit
				case a.RB != nil:
					return unsafe.Pointer(&a.RB[u0]), 0
				}
				return unsafe.Pointer(&zeroUnits[0]), 0
			}
			phase := func(v []float32, ld, kOff, kn int, m *[4]int) {
				// k blocks outside the row chunks, chunks outside the
				// slots: a chunk's inputs (rows × blockK) stay in L1 for
				// all slots
				for q0 := 0; q0 < kn; q0 += blockK {
					kk := min(blockK, kn-q0)
					for c0, ce := 0, 0; c0 < rows; c0 = ce {
						ce = chunkEnd(c0, rows, T)
						for s := 0; s < S; s++ {
							acc := m[s]
							b := unsafe.Pointer(&blk[(kOff+q0)*S*cellBlock+s*cellBlock])
							// the chunk's tiles, a call per run of equal heights
							i := c0
							for _, sg := range tileRuns(ce-c0, T) {
								if sg.n == 0 {
									continue
								}
								cin, ldcin := src(acc, i)
								callMul(int(ids[sg.t-1]), kk, unsafe.Pointer(&v[(r0+i)*ld+q0]), 4*ld, b, 4*S*cellBlock,
									cin, ldcin, unsafe.Pointer(&scr[i*ldS+acc*cellBlock]), 4*ldS, sg.n)
								i += sg.t * sg.n
							}
						}
					}
					for s := 0; s < S; s++ {
						started[m[s]] = true
					}
				}
			}
			// phaseXH is both phases in one for the slots whose x and h
			// terms feed one accumulator (all of LSTM's, GRU's z and r):
			// two-input tiles sum x's terms then h's without storing
			// the accumulators in between (same order, same bits);
			// GRU's third slot keeps two calls (two accumulators)
			phaseXH := func() {
				for c0, ce := 0, 0; c0 < rows; c0 = ce {
					ce = chunkEnd(c0, rows, T)
					for s := 0; s < S; s++ {
						b := unsafe.Pointer(&blk[s*cellBlock])
						bh := unsafe.Pointer(&blk[I*S*cellBlock+s*cellBlock])
						i := c0
						for _, sg := range tileRuns(ce-c0, T) {
							if sg.n == 0 {
								continue
							}
							xa, ha := unsafe.Pointer(&a.X[(r0+i)*a.LdX]), unsafe.Pointer(&a.H[(r0+i)*a.LdH])
							if acc := xmap[s]; acc == hmap[s] {
								cin, ldcin := src(acc, i)
								callMulXH(int(mulXHIDsAVX2[sg.t-1]), I, xa, 4*a.LdX, H, ha, 4*a.LdH, b, 4*S*cellBlock,
									cin, ldcin, unsafe.Pointer(&scr[i*ldS+acc*cellBlock]), 4*ldS, sg.n)
							} else {
								cin, ldcin := src(acc, i)
								callMul(int(ids[sg.t-1]), I, xa, 4*a.LdX, b, 4*S*cellBlock,
									cin, ldcin, unsafe.Pointer(&scr[i*ldS+acc*cellBlock]), 4*ldS, sg.n)
								acc = hmap[s]
								cin, ldcin = src(acc, i)
								callMul(int(ids[sg.t-1]), H, ha, 4*a.LdH, bh, 4*S*cellBlock,
									cin, ldcin, unsafe.Pointer(&scr[i*ldS+acc*cellBlock]), 4*ldS, sg.n)
							}
							i += sg.t * sg.n
						}
					}
				}
				for s := 0; s < S; s++ {
					started[xmap[s]], started[hmap[s]] = true, true
				}
			}
			switch {
			case !useAVX512 && I > 0 && I <= blockK && H <= blockK:
				phaseXH()
			case I > 0:
				phase(a.X, a.LdX, 0, I, &xmap)
				fallthrough
			default:
				phase(a.H, a.LdH, I, H, &hmap)
			}
			if gru && !started[2] {
				// no input rows (I = 0): x·W_hᵀ + init_h is init_h alone
				for i := 0; i < rows; i++ {
					// as one array: four 16-byte moves (a memmove call
					// per 64 bytes cost 4 % of a bidirectional GRU(128)
					// at batch 64, an element loop 7 %)
					d := (*[cellBlock]float32)(scr[i*ldS+2*cellBlock:])
					s := (*[cellBlock]float32)(a.Init[(r0+i)*a.LdInit+2*H+u0:])
					*(*[4]float32)(d[0:]) = *(*[4]float32)(s[0:])
					*(*[4]float32)(d[4:]) = *(*[4]float32)(s[4:])
					*(*[4]float32)(d[8:]) = *(*[4]float32)(s[8:])
					*(*[4]float32)(d[12:]) = *(*[4]float32)(s[12:])
				}
			}
			blockGates(ks, f, scr[:], a, r0, rows, u0, w, gru)
		}
	}
}

// blockGates runs the gates of a block's rows (from r0) and units u0 to
// u0+w from the scratch scr (rows 4·16 floats apart), chunk by chunk. f
// (the strides) comes by value: pointing a caller's frame at scr would
// move scr to the heap.
func blockGates(ks *cellKernels, f cellFrame, scr []float32, a *CellArgs, r0, rows, u0, w int, gru bool) {
	const ldS = 4 * cellBlock
	L := ks.lanes
	// point aims the frame at row r0+i, unit c: its pre-activations, its
	// state (GRU: h) and its new h
	point := func(i, c int) {
		f.init = unsafe.Pointer(&scr[i*ldS+c-u0])
		if gru {
			f.c = unsafe.Pointer(&a.H[(r0+i)*a.LdH+c])
		} else {
			f.c = unsafe.Pointer(&a.C[(r0+i)*a.LdC+c])
		}
		f.ho = unsafe.Pointer(&a.HOut[(r0+i)*a.LdHOut+c])
	}
	if L == 8 && w == cellBlock && cellGateMode == 0 && rows > 0 {
		// AVX2, a full block: both chunks of every row in one call
		point(0, u0)
		f.n = rows
		if gru {
			gruCellGates16AVX2(&f)
		} else {
			lstmCellGates16AVX2(&f)
		}
		return
	}
	for c0 := u0; c0 < u0+w; c0 += L {
		f.setLive(u0+w-c0, L)
		if L == 8 && f.part == 0 && cellGateMode >= 0 {
			// AVX2, a full chunk: every row in one call
			point(0, c0)
			f.n = rows
			if gru {
				gruCellGatesAVX2(&f)
			} else {
				lstmCellGatesAVX2(&f)
			}
			continue
		}
		for i := 0; i < rows; {
			point(i, c0)
			if rows-i >= ks.grows {
				callCell(ks.gate, &f)
				i += ks.grows
			} else {
				callCell(ks.gate1, &f)
				i++
			}
		}
	}
}

// tileRun is n tiles of t rows.
type tileRun struct{ t, n int }

// tileRuns splits r rows into tiles of at most T rows: full tiles, then
// the rows left over, which join the last full tile in two tiles of
// near-equal height when they are T/2 or fewer (7 rows as 4 + 3, not 6
// + 1): per row, AVX2's 1-, 2- and 3-row tiles run at 30, 60 and 80 %
// of the 4- to 6-row tiles' speed (BenchmarkCellMulRows). Runs with n =
// 0 are empty.
func tileRuns(r, T int) [3]tileRun {
	n, left := r/T, r%T
	if n == 0 {
		return [3]tileRun{{r, 1}}
	}
	if left == 0 || left > T/2 {
		return [3]tileRun{{T, n}, {left, min(left, 1)}}
	}
	a := (T + left + 1) / 2
	if b := T + left - a; b != a {
		return [3]tileRun{{T, n - 1}, {a, 1}, {b, 1}}
	}
	return [3]tileRun{{T, n - 1}, {a, 2}}
}

// chunkEnd is the end of the row chunk from c0: blockTiles tiles of T
// rows, fewer than T rows left over joining the last chunk.
func chunkEnd(c0, rows, T int) int {
	ce := min(c0+T*blockTiles, rows)
	if rows-ce < T {
		ce = rows
	}
	return ce
}
