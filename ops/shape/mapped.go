package shape

// mappedCopy fills an output tensor whose every axis is described by an
// index map: maps[a][o] is the source element offset contributed by output
// coordinate o on axis a (source coordinate times source stride), or -1 when
// that output position takes the fill value. The innermost axis is turned
// into runs (contiguous copies, repeats of one element, fills) so rows move
// with copy() wherever the map allows. Expand, Tile and Pad use it.

type segKind uint8

const (
	segCopy   segKind = iota // n contiguous source elements
	segRepeat                // one source element n times
	segFill                  // the fill value n times
)

type segment struct {
	kind segKind
	src  int // source offset (copy, repeat)
	n    int
}

// segments compresses the innermost axis map.
func segments(m []int) []segment {
	var segs []segment
	for _, s := range m {
		if n := len(segs); n > 0 {
			last := &segs[n-1]
			switch {
			case s < 0 && last.kind == segFill:
				last.n++
				continue
			case s >= 0 && last.kind == segCopy && last.src+last.n == s:
				last.n++
				continue
			case s >= 0 && last.kind == segCopy && last.n == 1 && last.src == s:
				last.kind = segRepeat
				last.n++
				continue
			case s >= 0 && last.kind == segRepeat && last.src == s:
				last.n++
				continue
			}
		}
		if s < 0 {
			segs = append(segs, segment{kind: segFill, n: 1})
		} else {
			segs = append(segs, segment{kind: segCopy, src: s, n: 1})
		}
	}
	return segs
}

// mappedCopy runs the copy; fill is a one-element raw of the same kind
// (unused when no map holds -1).
func mappedCopy(dst, src raw, shape []int, maps [][]int, fill raw) {
	switch src.k {
	case k1:
		mappedT(dst.b1, src.b1, shape, maps, fill.b1)
	case k2:
		mappedT(dst.b2, src.b2, shape, maps, fill.b2)
	case k4:
		mappedT(dst.b4, src.b4, shape, maps, fill.b4)
	case k8:
		mappedT(dst.b8, src.b8, shape, maps, fill.b8)
	default:
		mappedT(dst.s, src.s, shape, maps, fill.s)
	}
}

func mappedT[T word](dst, src []T, shape []int, maps [][]int, fillv []T) {
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
	segs := segments(maps[r-1])
	rowLen := shape[r-1]
	outer := len(dst) / rowLen
	counter := make([]int, r-1)
	for row := 0; row < outer; row++ {
		base, filled := 0, false
		for a := 0; a < r-1; a++ {
			v := maps[a][counter[a]]
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
			for _, s := range segs {
				switch s.kind {
				case segCopy:
					copy(d[p:p+s.n], src[base+s.src:base+s.src+s.n])
				case segRepeat:
					v := src[base+s.src]
					for i := p; i < p+s.n; i++ {
						d[i] = v
					}
				default:
					for i := p; i < p+s.n; i++ {
						d[i] = fill
					}
				}
				p += s.n
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
