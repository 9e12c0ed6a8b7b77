package shape

import "github.com/mtlrun/mtlrun/ops"

// mappedCopy fills an output tensor whose every axis is described by an
// index map: the map of axis a, maps.axis(a), holds for every output
// coordinate o the source element offset it contributes (source coordinate
// times source stride), or -1 when that output position takes the fill
// value. The innermost axis is turned into runs (contiguous copies, repeats
// of one element, fills) so rows move with copy() wherever the map allows.
// Expand, Tile and Pad use it. All of its memory is arena scratch.

// Segment kinds.
const (
	segCopy   = iota // n contiguous source elements
	segRepeat        // one source element n times
	segFill          // the fill value n times
)

// axisMaps is the flat storage of one map per output axis.
type axisMaps struct {
	flat []int
	off  []int // axis a's map is flat[off[a]:off[a+1]]
}

// newAxisMaps takes maps for an output of the given shape from ar.
func newAxisMaps(ar *ops.Arena, shape []int) axisMaps {
	off := ar.Ints(len(shape) + 1)
	for a, d := range shape {
		off[a+1] = off[a] + d
	}
	return axisMaps{flat: ar.Ints(off[len(shape)]), off: off}
}

func (m axisMaps) axis(a int) []int { return m.flat[m.off[a]:m.off[a+1]] }

// segments compresses the innermost axis map into (kind, src, n) triples
// in scratch from ar.
func segments(ar *ops.Arena, m []int) []int {
	segs := ar.Ints(3 * len(m))[:0]
	for _, s := range m {
		if n := len(segs); n > 0 {
			kind, src, cnt := &segs[n-3], segs[n-2], &segs[n-1]
			switch {
			case s < 0 && *kind == segFill:
				*cnt++
				continue
			case s >= 0 && *kind == segCopy && src+*cnt == s:
				*cnt++
				continue
			case s >= 0 && *kind == segCopy && *cnt == 1 && src == s:
				*kind = segRepeat
				*cnt++
				continue
			case s >= 0 && *kind == segRepeat && src == s:
				*cnt++
				continue
			}
		}
		if s < 0 {
			segs = append(segs, segFill, 0, 1)
		} else {
			segs = append(segs, segCopy, s, 1)
		}
	}
	return segs
}

// mappedCopy runs the copy; fill is a one-element raw of the same kind
// (unused when no map holds -1).
func mappedCopy(ar *ops.Arena, dst, src raw, shape []int, maps axisMaps, fill raw) {
	r := len(shape)
	var segs, counter []int
	if r > 0 {
		segs = segments(ar, maps.axis(r-1))
		counter = ar.Ints(r - 1)
	}
	switch src.k {
	case k1:
		mappedT(dst.b1, src.b1, shape, maps, segs, counter, fill.b1)
	case k2:
		mappedT(dst.b2, src.b2, shape, maps, segs, counter, fill.b2)
	case k4:
		mappedT(dst.b4, src.b4, shape, maps, segs, counter, fill.b4)
	case k8:
		mappedT(dst.b8, src.b8, shape, maps, segs, counter, fill.b8)
	default:
		mappedT(dst.s, src.s, shape, maps, segs, counter, fill.s)
	}
}

func mappedT[T word](dst, src []T, shape []int, maps axisMaps, segs, counter []int, fillv []T) {
	var fill T
	if len(fillv) > 0 {
		fill = fillv[0]
	}
	r := len(shape)
	if len(dst) == 0 {
		return
	}
	if r == 0 {
		dst[0] = src[0]
		return
	}
	rowLen := shape[r-1]
	outer := len(dst) / rowLen
	for row := 0; row < outer; row++ {
		base, filled := 0, false
		for a := 0; a < r-1; a++ {
			v := maps.flat[maps.off[a]+counter[a]]
			if v < 0 {
				filled = true
				break
			}
			base += v
		}
		d := dst[row*rowLen : (row+1)*rowLen]
		if filled {
			for i := range d {
				d[i] = fill
			}
		} else {
			p := 0
			for k := 0; k < len(segs); k += 3 {
				kind, s, n := segs[k], base+segs[k+1], segs[k+2]
				switch kind {
				case segCopy:
					copy(d[p:p+n], src[s:s+n])
				case segRepeat:
					v := src[s]
					for i := p; i < p+n; i++ {
						d[i] = v
					}
				default:
					for i := p; i < p+n; i++ {
						d[i] = fill
					}
				}
				p += n
			}
		}
		for a := r - 2; a >= 0; a-- {
			counter[a]++
			if counter[a] < shape[a] {
				break
			}
			counter[a] = 0
		}
	}
}
