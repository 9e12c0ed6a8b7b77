//go:build amd64 && !purego

package linalg

import "unsafe"

// packTab is the constant data of pack6x16AVX512: lane indices for
// VPERMI2PS/VPERMPS and the lane masks of rows 4-5, laid out as the
// assembly reads them (eight 16-lane index vectors, then three masks).
type packTab struct {
	pairLo, pairHi [16]int32    // interleave two rows, columns 0-7 / 8-15
	ab             [3][16]int32 // rows 0-3 of output v from pairs (0,1), (2,3)
	c              [3][16]int32 // rows 4-5 of output v from pair (4,5)
	mask           [3]uint16    // lanes of output v holding rows 4-5
}

var packTable = func() *packTab {
	t := new(packTab)
	for j := 0; j < 8; j++ {
		// lane 2j+s: row s (table 1 for s = 0, table 2 = index+16 for s = 1)
		t.pairLo[2*j], t.pairLo[2*j+1] = int32(j), int32(16+j)
		t.pairHi[2*j], t.pairHi[2*j+1] = int32(8+j), int32(24+j)
	}
	// output v (0-2; 3-5 repeat with the hi pairs) lane e is packed
	// element f = 16v+e: column q = f/6 (< 8), row r = f%6, found at lane
	// 2q + r%2 of pair r/2
	for v := 0; v < 3; v++ {
		for e := 0; e < 16; e++ {
			f := 16*v + e
			q, r := f/6, f%6
			lane := int32(2*q + r%2)
			switch r / 2 {
			case 0:
				t.ab[v][e] = lane
			case 1:
				t.ab[v][e] = 16 + lane
			case 2:
				t.c[v][e] = lane
				t.mask[v] |= 1 << e
			}
		}
	}
	return t
}()

//go:noescape
func pack6x16AVX512(n int, a unsafe.Pointer, lda int, d unsafe.Pointer, tab *packTab)

// packBlock6 packs the first kk columns of six rows of A (a[r*lda+q]) into
// d[q*6+r] with AVX-512 shuffles, 16 columns at a time, and the last
// kk%16 columns with the scalar loop. It reports false (packing nothing)
// without AVX-512 or when kk < 16, leaving the block to packA's Go loop.
func packBlock6(d, a []float32, lda, kk int) bool {
	n := kk / 16
	if !useAVX512 || n == 0 {
		return false
	}
	// bounds the assembly relies on
	_ = a[5*lda+kk-1]
	_ = d[mr*kk-1]
	pack6x16AVX512(n, unsafe.Pointer(&a[0]), lda, unsafe.Pointer(&d[0]), packTable)
	for q := n * 16; q < kk; q++ {
		d[q*mr+0] = a[q]
		d[q*mr+1] = a[lda+q]
		d[q*mr+2] = a[2*lda+q]
		d[q*mr+3] = a[3*lda+q]
		d[q*mr+4] = a[4*lda+q]
		d[q*mr+5] = a[5*lda+q]
	}
	return true
}
