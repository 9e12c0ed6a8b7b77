package nn

import (
	"fmt"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// Convolution over any number of spatial dims. Up to three spatial dims run
// on the 3-D fast path (1-D and 2-D are 3-D with leading unit dims): float32
// lowers to im2col + the packed SGEMM with the weights packed once per
// tensor; narrow groups (depthwise) use a direct multiply-add over the
// columns. More spatial dims fall back to a general index loop.

func init() {
	ops.Define(ops.Desc{Type: "Conv", Since: 1, Grad: ops.GradRule{}, Kernel: halfCompute(func(c *ops.Config) (ops.Op, error) { return newConv(c) })})
	// gradient: train/autodiff/rules_convtranspose.go
	ops.Define(ops.Desc{Type: "ConvTranspose", Since: 1, Grad: ops.GradRule{}, Kernel: halfCompute(func(c *ops.Config) (ops.Op, error) {
		w, err := parseWindow(c)
		if err != nil {
			return nil, err
		}
		return &convTranspose{window: w, outPad: c.Attrs.Ints("output_padding"), outShape: c.Attrs.Ints("output_shape"),
			packs: make([]packCache, w.group), constW: c.InputIsConst(1)}, nil
	})})
}

// window holds the attributes shared by Conv and the pools.
type window struct {
	autoPad   string
	kernel    []int64
	strides   []int64
	dilations []int64
	pads      []int64
	group     int
	ceil      bool
}

func parseWindow(c *ops.Config) (window, error) {
	w := window{
		autoPad: c.Attrs.String("auto_pad", "NOTSET"), kernel: c.Attrs.Ints("kernel_shape"),
		strides: c.Attrs.Ints("strides"), dilations: c.Attrs.Ints("dilations"), pads: c.Attrs.Ints("pads"),
		group: int(c.Attrs.Int("group", 1)), ceil: c.Attrs.Int("ceil_mode", 0) != 0,
	}
	if w.group < 1 {
		return w, ops.BadAttr("group", "must be ≥ 1, got %d", w.group)
	}
	switch w.autoPad {
	case "NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		return w, ops.BadAttr("auto_pad", "unknown value %q", w.autoPad)
	}
	for _, p := range w.pads {
		if p < 0 {
			return w, ops.BadAttr("pads", "negative padding %v", w.pads)
		}
	}
	return w, nil
}

// geometry is one resolved window: per spatial dim the input size, kernel,
// stride, dilation, begin/end padding and output size.
type geometry struct {
	in, k, s, d, pb, pe, out []int
}

// tap is where kernel tap kidx of window position pos lands on a grid of
// the given size and strides (the input for Conv, the output for
// ConvTranspose): its flat offset, or false when it falls in the padding.
func (g *geometry) tap(pos, kidx, size, strides []int) (int, bool) {
	off := 0
	for a := range pos {
		p := pos[a]*g.s[a] - g.pb[a] + kidx[a]*g.d[a]
		if p < 0 || p >= size[a] {
			return 0, false
		}
		off += p * strides[a]
	}
	return off, true
}

func at(v []int64, i int, def int) int {
	if i < len(v) {
		return int(v[i])
	}
	return def
}

// resolve computes the output geometry for spatial input dims `in` and
// kernel dims `k`.
func (w window) resolve(in, k []int) (*geometry, error) {
	g := &geometry{}
	if err := w.resolveInto(nil, g, in, k); err != nil {
		return nil, err
	}
	return g, nil
}

// resolveInto is resolve writing into g, with its slices from the arena.
func (w window) resolveInto(ar *ops.Arena, g *geometry, in, k []int) error {
	n := len(in)
	buf := ar.Ints(5 * n)
	*g = geometry{in: in, k: k, s: buf[:n:n], d: buf[n : 2*n : 2*n], pb: buf[2*n : 3*n : 3*n], pe: buf[3*n : 4*n : 4*n], out: buf[4*n : 5*n : 5*n]}
	for i := 0; i < n; i++ {
		g.s[i], g.d[i] = at(w.strides, i, 1), at(w.dilations, i, 1)
		if g.s[i] < 1 || g.d[i] < 1 || k[i] < 1 {
			return fmt.Errorf("strides, dilations and kernel must be positive (dim %d: stride %d, dilation %d, kernel %d)", i, g.s[i], g.d[i], k[i])
		}
		span := (k[i]-1)*g.d[i] + 1
		switch w.autoPad {
		case "NOTSET", "":
			g.pb[i], g.pe[i] = at(w.pads, i, 0), at(w.pads, i+n, 0)
			num := in[i] + g.pb[i] + g.pe[i] - span
			if num < 0 {
				return fmt.Errorf("dim %d: kernel span %d exceeds padded input %d", i, span, in[i]+g.pb[i]+g.pe[i])
			}
			if w.ceil {
				g.out[i] = (num+g.s[i]-1)/g.s[i] + 1
				// the last window must start inside the input or its left padding
				if (g.out[i]-1)*g.s[i] >= in[i]+g.pb[i] {
					g.out[i]--
				}
			} else {
				g.out[i] = num/g.s[i] + 1
			}
		case "VALID":
			if in[i] < span {
				return fmt.Errorf("dim %d: kernel span %d exceeds input %d", i, span, in[i])
			}
			g.out[i] = (in[i]-span)/g.s[i] + 1
		case "SAME_UPPER", "SAME_LOWER":
			g.out[i] = (in[i] + g.s[i] - 1) / g.s[i]
			total := max(0, (g.out[i]-1)*g.s[i]+span-in[i])
			g.pb[i] = total / 2
			if w.autoPad == "SAME_LOWER" {
				g.pb[i] = total - total/2
			}
			g.pe[i] = total - g.pb[i]
		default:
			return fmt.Errorf("unknown auto_pad %q", w.autoPad)
		}
	}
	return nil
}

// geom3 is a geometry of at most three spatial dims widened to exactly
// three (leading unit dims), so that one set of loops serves 1-D, 2-D and 3-D.
type geom3 struct {
	in, k, s, d, pb, pe, out [3]int
}

func (g *geometry) as3() (*geom3, bool) {
	r, ok := g.as3v()
	return &r, ok
}

// as3v is as3 returning the value (which stays on the caller's stack).
func (g *geometry) as3v() (geom3, bool) {
	nd := len(g.in)
	var r geom3
	if nd > 3 {
		return r, false
	}
	for i := 0; i < 3; i++ {
		r.in[i], r.k[i], r.s[i], r.d[i], r.out[i] = 1, 1, 1, 1, 1
	}
	off := 3 - nd
	for i := 0; i < nd; i++ {
		r.in[off+i], r.k[off+i], r.s[off+i], r.d[off+i] = g.in[i], g.k[i], g.s[i], g.d[i]
		r.pb[off+i], r.pe[off+i], r.out[off+i] = g.pb[i], g.pe[i], g.out[i]
	}
	return r, true
}

func (g *geom3) inSize() int  { return g.in[0] * g.in[1] * g.in[2] }
func (g *geom3) kSize() int   { return g.k[0] * g.k[1] * g.k[2] }
func (g *geom3) outSize() int { return g.out[0] * g.out[1] * g.out[2] }

// pointwise reports a 1×1 kernel with unit stride and no padding, where the
// columns are the input itself.
func (g *geom3) pointwise() bool {
	for i := 0; i < 3; i++ {
		if g.k[i] != 1 || g.s[i] != 1 || g.pb[i] != 0 || g.out[i] != g.in[i] {
			return false
		}
	}
	return true
}

// im2col3 fills cols [cg·K rows, outSize columns] for cg channels of x.
func im2col3[T any](x []T, cg int, g *geom3, cols []T) {
	D, H, W := g.in[0], g.in[1], g.in[2]
	OD, OH, OW := g.out[0], g.out[1], g.out[2]
	oSize, inSize := OD*OH*OW, D*H*W
	sw := g.s[2]
	r := 0
	for ch := 0; ch < cg; ch++ {
		xc := x[ch*inSize : (ch+1)*inSize]
		for kd := 0; kd < g.k[0]; kd++ {
			for kh := 0; kh < g.k[1]; kh++ {
				for kw := 0; kw < g.k[2]; kw++ {
					dst := cols[r*oSize : (r+1)*oSize]
					r++
					o := 0
					iw0 := kw*g.d[2] - g.pb[2]
					// output columns whose input column is inside [0, W)
					lo, hi := 0, OW
					if iw0 < 0 {
						lo = min(OW, (-iw0+sw-1)/sw)
					}
					if last := iw0 + (OW-1)*sw; last >= W {
						hi = max(lo, OW-((last-W)/sw+1))
					}
					for od := 0; od < OD; od++ {
						id := od*g.s[0] - g.pb[0] + kd*g.d[0]
						if id < 0 || id >= D {
							clear(dst[o : o+OH*OW])
							o += OH * OW
							continue
						}
						for oh := 0; oh < OH; oh++ {
							ih := oh*g.s[1] - g.pb[1] + kh*g.d[1]
							row := dst[o : o+OW]
							o += OW
							if ih < 0 || ih >= H {
								clear(row)
								continue
							}
							src := xc[(id*H+ih)*W : (id*H+ih+1)*W]
							clear(row[:lo])
							clear(row[hi:])
							if lo >= hi {
								// the whole window row lies in the padding
								continue
							}
							if sw == 1 {
								copy(row[lo:hi], src[iw0+lo:iw0+hi])
								continue
							}
							iw := iw0 + lo*sw
							for ow := lo; ow < hi; ow++ {
								row[ow] = src[iw]
								iw += sw
							}
						}
					}
				}
			}
		}
	}
}

// im2colND is im2col for any number of spatial dims.
func im2colND[T any](x []T, cg int, g *geometry, cols []T) {
	inSize, oSize := prodInts(g.in), prodInts(g.out)
	inStr := tensor.Strides(g.in)
	var zero T
	row := 0
	for ch := 0; ch < cg; ch++ {
		xc := x[ch*inSize : (ch+1)*inSize]
		forEachIndex(g.k, func(kidx []int) {
			dst := cols[row*oSize : (row+1)*oSize]
			o := 0
			forEachIndex(g.out, func(oidx []int) {
				if off, ok := g.tap(oidx, kidx, g.in, inStr); ok {
					dst[o] = xc[off]
				} else {
					dst[o] = zero
				}
				o++
			})
			row++
		})
	}
}

// forEachIndex visits every multi-index of dims in row-major order.
func forEachIndex(dims []int, f func(idx []int)) {
	total := 1
	for _, d := range dims {
		total *= d
	}
	idx := make([]int, len(dims))
	for t := 0; t < total; t++ {
		f(idx)
		for a := len(dims) - 1; a >= 0; a-- {
			idx[a]++
			if idx[a] < dims[a] {
				break
			}
			idx[a] = 0
		}
	}
}

func prodInts(v []int) int {
	n := 1
	for _, d := range v {
		n *= d
	}
	return n
}

type conv struct {
	window
	packs   []packCache // float32 weights per group, packed for SGEMM
	constW  bool        // W never changes: its packed groups are cached
	threads int
}

func newConv(c *ops.Config) (*conv, error) {
	w, err := parseWindow(c)
	if err != nil {
		return nil, err
	}
	return &conv{window: w, packs: make([]packCache, w.group), constW: c.InputIsConst(1), threads: max(c.Threads, 1)}, nil
}

func (c *conv) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return c.RunWith(nil, in) }

func (c *conv) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x, w := in[0], in[1]
	if x.Rank() < 3 || w.Rank() != x.Rank() {
		return nil, fmt.Errorf("Conv needs X of rank ≥ 3 and W of the same rank, got %v and %v", x.Shape, w.Shape)
	}
	if x.DType != w.DType {
		return nil, ops.BadInput(1, "dtype %v differs from X's %v", w.DType, x.DType)
	}
	N, C, M := x.Shape[0], x.Shape[1], w.Shape[0]
	grp := c.group
	if C%grp != 0 || M%grp != 0 || w.Shape[1] != C/grp {
		return nil, fmt.Errorf("Conv: X has %d channels, W is %v, group %d do not fit", C, w.Shape, grp)
	}
	kdims := w.Shape[2:]
	if len(c.kernel) > 0 {
		for i := range kdims {
			if at(c.kernel, i, kdims[i]) != kdims[i] {
				return nil, ops.BadAttr("kernel_shape", "%v disagrees with W's %v", c.kernel, kdims)
			}
		}
	}
	var g geometry
	if err := c.resolveInto(ar, &g, x.Shape[2:], kdims); err != nil {
		return nil, err
	}
	var bias *tensor.Tensor
	if len(in) > 2 && in[2] != nil {
		bias = in[2]
		if bias.Len() != M || bias.DType != x.DType {
			return nil, ops.BadInput(2, "bias %v %v does not fit %d output channels of %v", bias.DType, bias.Shape, M, x.DType)
		}
	}
	outShape := ar.Ints(2 + len(g.out))
	outShape[0], outShape[1] = N, M
	copy(outShape[2:], g.out)
	// every path below writes every output element
	out, err := ar.Empty(x.DType, outShape)
	if err != nil {
		return nil, err
	}
	switch x.DType {
	case tensor.Float32:
		var b []float32
		if bias != nil {
			b = bias.Float32s()
		}
		if g3, ok := g.as3v(); ok && M/grp >= 4 {
			c.gemmF32(ar, x.Float32s(), w.Float32s(), out.Float32s(), b, N, C, M, &g3)
		} else {
			var cols []float32
			if n := directCols(&g, C, grp); n > 0 {
				cols = ar.Float32s(n)
			}
			convDirect(x.Float32s(), w.Float32s(), out.Float32s(), b, N, C, M, grp, &g, cols)
		}
	case tensor.Float64:
		var b []float64
		if bias != nil {
			b = bias.Float64s()
		}
		convDirect(x.Float64s(), w.Float64s(), out.Float64s(), b, N, C, M, grp, &g, make([]float64, directCols(&g, C, grp)))
	default:
		return nil, ops.BadInput(0, "dtype %v not supported", x.DType)
	}
	return ar.Outputs(out), nil
}

// directCols is the column matrix convDirect needs (0: none, for
// depthwise and pointwise windows).
func directCols(g *geometry, C, grp int) int {
	g3, is3 := g.as3v()
	cg := C / grp
	if is3 && (cg == 1 || g3.pointwise()) {
		return 0
	}
	return cg * prodInts(g.k) * prodInts(g.out)
}

// convJob is the float32 im2col + SGEMM convolution, shared by the workers
// of one call: either whole images [r0, r1) each with its own scratch, or
// output positions [r0, r1) of image n, group gi, whose columns are ready.
type convJob struct {
	c       *conv
	x, w, y []float32
	b       []float32
	N, C, M int
	g       geom3
	pbs     []linalg.PackedB // non-constant weights, packed for this call
	scratch []float32        // per chunk: cols then tmp
	per     int              // scratch floats per chunk
	byPos   bool
	n, gi   int
	a, tmp  []float32
}

// packed returns group gi's weights packed (cached when W is constant).
func (j *convJob) packed(gi int) *linalg.PackedB {
	if j.pbs != nil {
		return &j.pbs[gi]
	}
	cg, mg := j.C/j.c.group, j.M/j.c.group
	ck := cg * j.g.kSize()
	return j.c.packs[gi].getSlice(j.w[gi*mg*ck:(gi+1)*mg*ck], true, ck, mg)
}

func (j *convJob) batches(idx, r0, r1 int) {
	if j.byPos {
		j.positions(j.a, j.packed(j.gi), j.tmp, j.n, j.gi, r0, r1)
		return
	}
	oSize, mg := j.g.outSize(), j.M/j.c.group
	buf := j.scratch[idx*j.per : (idx+1)*j.per]
	cols, tmp := buf[:j.per-oSize*mg], buf[j.per-oSize*mg:]
	for n := r0; n < r1; n++ {
		for gi := 0; gi < j.c.group; gi++ {
			a := j.columns(n, gi, cols)
			j.positions(a, j.packed(gi), tmp, n, gi, 0, oSize)
		}
	}
}

// columns returns the SGEMM's left-hand side for image n, group gi: the
// input itself for pointwise windows, else im2col into cols.
func (j *convJob) columns(n, gi int, cols []float32) []float32 {
	inSize, cg := j.g.inSize(), j.C/j.c.group
	xg := j.x[(n*j.C+gi*cg)*inSize : (n*j.C+(gi+1)*cg)*inSize]
	if j.g.pointwise() {
		return xg
	}
	im2col3(xg, cg, &j.g, cols)
	return cols
}

// positions computes output positions [o0, o1) of image n, group gi:
// Yᵀ = colsᵀ · Wgᵀ into tmp, then a blocked transpose into Y adding the bias.
func (j *convJob) positions(a []float32, pb *linalg.PackedB, tmp []float32, n, gi, o0, o1 int) {
	oSize, mg := j.g.outSize(), j.M/j.c.group
	if pb.K == 0 {
		clear(tmp[o0*mg : o1*mg])
	} else {
		linalg.SgemmPacked(true, o1-o0, 1, a[o0:], oSize, pb, 0, tmp[o0*mg:o1*mg], mg)
	}
	yg := j.y[(n*j.M+gi*mg)*oSize : (n*j.M+(gi+1)*mg)*oSize]
	const blk = 64
	for b0 := o0; b0 < o1; b0 += blk {
		b1 := min(o1, b0+blk)
		for m := 0; m < mg; m++ {
			var bm float32
			if j.b != nil {
				bm = j.b[gi*mg+m]
			}
			row := yg[m*oSize+b0 : m*oSize+b1]
			src := tmp[b0*mg+m:]
			for i := range row {
				row[i] = src[i*mg] + bm
			}
		}
	}
}

// gemmF32: per image and group, Yᵀ (outSize×mg) = colsᵀ · Wgᵀ with Wg packed
// once, then a blocked transpose into Y adding the bias. With a Threads
// budget, images are split over goroutines (each with its own scratch), or
// for a single image the output positions of each group.
func (c *conv) gemmF32(ar *ops.Arena, x, w, y, b []float32, N, C, M int, g *geom3) {
	grp := c.group
	K, oSize := g.kSize(), g.outSize()
	cg, mg := C/grp, M/grp
	ck := cg * K
	if oSize == 0 || N == 0 {
		return
	}
	j := convJob{c: c, x: x, w: w, y: y, b: b, N: N, C: C, M: M, g: *g}
	if !c.constW {
		j.pbs = make([]linalg.PackedB, grp) // the one allocation left
		for gi := range j.pbs {
			j.pbs[gi] = packB(ar, true, ck, mg, w[gi*mg*ck:(gi+1)*mg*ck])
		}
	}
	colsN := 0
	if !g.pointwise() {
		colsN = ck * oSize
	}
	j.per = colsN + oSize*mg
	parts := 1
	if c.threads > 1 && N*oSize*mg*ck >= parallelWork {
		parts = min(c.threads, maxChunks)
	}
	var bounds []int
	var bbuf [maxChunks + 1]int
	if parts > 1 && N >= 2 {
		bounds = splitRows(&bbuf, N, parts, 1)
	}
	if len(bounds) > 2 {
		nparts := len(bounds) - 1
		var pool []*[]float32
		if ar != nil {
			j.scratch = ar.Float32s(nparts * j.per)
		} else {
			p := getF32(nparts * j.per)
			pool = append(pool, p)
			j.scratch = *p
		}
		fanOut(&job{kind: jobConv, conv: j}, bounds)
		for _, p := range pool {
			putF32(p)
		}
		return
	}
	var sp *[]float32
	if ar != nil {
		j.scratch = ar.Float32s(j.per)
	} else {
		sp = getF32(j.per)
		j.scratch = *sp
	}
	cols, tmp := j.scratch[:colsN], j.scratch[colsN:]
	if parts > 1 && oSize >= 32 {
		// one image: split each group's output positions
		bounds = splitRows(&bbuf, oSize, min(parts, oSize/16), 16)
	}
	for n := 0; n < N; n++ {
		for gi := 0; gi < grp; gi++ {
			a := j.columns(n, gi, cols)
			pb := j.packed(gi)
			if len(bounds) > 2 {
				jj := j
				jj.byPos, jj.n, jj.gi, jj.a, jj.tmp = true, n, gi, a, tmp
				fanOut(&job{kind: jobConv, conv: jj}, bounds)
				continue
			}
			j.positions(a, pb, tmp, n, gi, 0, oSize)
		}
	}
	if sp != nil {
		putF32(sp)
	}
}

// convDirect: im2col then one multiply-add pass per weight (good for
// depthwise and narrow groups, and the float64 path).
func convDirect[T tensor.Float](x, w, y, b []T, N, C, M, grp int, g *geometry, cols []T) {
	inSize, kSize, oSize := prodInts(g.in), prodInts(g.k), prodInts(g.out)
	cg, mg := C/grp, M/grp
	ck := cg * kSize
	g3, is3 := g.as3()
	if is3 && cg == 1 {
		depthwise3(x, w, y, b, N, C, M, grp, g3)
		return
	}
	pw := is3 && g3.pointwise()
	for n := 0; n < N; n++ {
		for gi := 0; gi < grp; gi++ {
			xg := x[(n*C+gi*cg)*inSize : (n*C+(gi+1)*cg)*inSize]
			src := cols
			switch {
			case pw:
				src = xg
			case is3:
				im2col3(xg, cg, g3, cols)
			default:
				im2colND(xg, cg, g, cols)
			}
			for m := 0; m < mg; m++ {
				mm := gi*mg + m
				wr := w[mm*ck : (mm+1)*ck]
				yr := y[(n*M+mm)*oSize : (n*M+mm+1)*oSize]
				var bv T
				if b != nil {
					bv = b[mm]
				}
				for o := range yr {
					yr[o] = bv
				}
				for r, wv := range wr {
					if wv == 0 {
						continue
					}
					col := src[r*oSize : (r+1)*oSize]
					for o, v := range col {
						yr[o] += wv * v
					}
				}
			}
		}
	}
}

// depthwise3 is convolution with one input channel per group, accumulated
// straight from the input rows (no column matrix).
func depthwise3[T tensor.Float](x, w, y, b []T, N, C, M, grp int, g *geom3) {
	D, H, W := g.in[0], g.in[1], g.in[2]
	OD, OH, OW := g.out[0], g.out[1], g.out[2]
	inSize, K, oSize := g.inSize(), g.kSize(), g.outSize()
	mg := M / grp
	sw := g.s[2]
	for n := 0; n < N; n++ {
		for mm := 0; mm < M; mm++ {
			ch := mm / mg
			xc := x[(n*C+ch)*inSize : (n*C+ch+1)*inSize]
			yr := y[(n*M+mm)*oSize : (n*M+mm+1)*oSize]
			var bv T
			if b != nil {
				bv = b[mm]
			}
			for i := range yr {
				yr[i] = bv
			}
			wr := w[mm*K : (mm+1)*K]
			kk := 0
			for kd := 0; kd < g.k[0]; kd++ {
				for kh := 0; kh < g.k[1]; kh++ {
					for kw := 0; kw < g.k[2]; kw++ {
						wv := wr[kk]
						kk++
						if wv == 0 {
							continue
						}
						iw0 := kw*g.d[2] - g.pb[2]
						lo, hi := validRange(iw0, sw, OW, W)
						for od := 0; od < OD; od++ {
							id := od*g.s[0] - g.pb[0] + kd*g.d[0]
							if id < 0 || id >= D {
								continue
							}
							for oh := 0; oh < OH; oh++ {
								ih := oh*g.s[1] - g.pb[1] + kh*g.d[1]
								if ih < 0 || ih >= H || lo >= hi {
									continue
								}
								src := xc[(id*H+ih)*W : (id*H+ih+1)*W]
								dst := yr[(od*OH+oh)*OW : (od*OH+oh+1)*OW]
								if sw == 1 {
									s := src[iw0+lo : iw0+hi]
									d := dst[lo:hi]
									for i, v := range s {
										d[i] += wv * v
									}
									continue
								}
								iw := iw0 + lo*sw
								for ow := lo; ow < hi; ow++ {
									dst[ow] += wv * src[iw]
									iw += sw
								}
							}
						}
					}
				}
			}
		}
	}
}

type convTranspose struct {
	window
	outPad, outShape []int64
	packs            []packCache
	constW           bool
}

func (c *convTranspose) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return c.RunWith(nil, in) }

// RunWith takes the output, the geometry and the column scratch from the
// arena (the > 3-D index loop still allocates its index vectors).
func (c *convTranspose) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x, w := in[0], in[1]
	if x.Rank() < 3 || w.Rank() != x.Rank() {
		return nil, fmt.Errorf("ConvTranspose needs X of rank ≥ 3 and W of the same rank, got %v and %v", x.Shape, w.Shape)
	}
	if x.DType != w.DType {
		return nil, ops.BadInput(1, "dtype %v differs from X's %v", w.DType, x.DType)
	}
	if x.DType != tensor.Float32 && x.DType != tensor.Float64 {
		return nil, ops.BadInput(0, "dtype %v not supported", x.DType)
	}
	N, C := x.Shape[0], x.Shape[1]
	grp := c.group
	if C%grp != 0 || w.Shape[0] != C {
		return nil, fmt.Errorf("ConvTranspose: X has %d channels, W is %v, group %d do not fit", C, w.Shape, grp)
	}
	mg := w.Shape[1]
	M := mg * grp
	nd := x.Rank() - 2
	in0, k := x.Shape[2:], w.Shape[2:]
	if len(c.kernel) > 0 {
		for i := range k {
			if at(c.kernel, i, k[i]) != k[i] {
				return nil, ops.BadAttr("kernel_shape", "%v disagrees with W's %v", c.kernel, k)
			}
		}
	}
	buf := ar.Ints(5 * nd)
	geo := geometry{in: in0, k: k, s: buf[:nd:nd], d: buf[nd : 2*nd : 2*nd], pb: buf[2*nd : 3*nd : 3*nd], pe: buf[3*nd : 4*nd : 4*nd], out: buf[4*nd : 5*nd : 5*nd]}
	g := &geo
	s, d, pb, pe, out := g.s, g.d, g.pb, g.pe, g.out
	for i := 0; i < nd; i++ {
		s[i], d[i] = at(c.strides, i, 1), at(c.dilations, i, 1)
		if s[i] < 1 || d[i] < 1 {
			return nil, fmt.Errorf("ConvTranspose: strides and dilations must be positive (dim %d: %d, %d)", i, s[i], d[i])
		}
		span := (k[i]-1)*d[i] + 1
		op := at(c.outPad, i, 0)
		full := s[i]*(in0[i]-1) + op + span
		switch {
		case len(c.outShape) > 0:
			if len(c.outShape) < nd {
				return nil, ops.BadAttr("output_shape", "%v has fewer than %d spatial dims", c.outShape, nd)
			}
			out[i] = int(c.outShape[len(c.outShape)-nd+i])
			total := full - out[i]
			if c.autoPad == "SAME_LOWER" {
				pb[i] = total - total/2
			} else {
				pb[i] = total / 2
			}
			pe[i] = total - pb[i]
		case c.autoPad == "SAME_UPPER" || c.autoPad == "SAME_LOWER":
			out[i] = in0[i] * s[i]
			total := full - out[i]
			if c.autoPad == "SAME_LOWER" {
				pb[i] = total - total/2
			} else {
				pb[i] = total / 2
			}
			pe[i] = total - pb[i]
		default:
			if c.autoPad == "NOTSET" || c.autoPad == "" {
				pb[i], pe[i] = at(c.pads, i, 0), at(c.pads, i+nd, 0)
			}
			out[i] = full - pb[i] - pe[i]
		}
		if out[i] < 0 {
			return nil, fmt.Errorf("ConvTranspose: negative output size in dim %d", i)
		}
	}
	var bias *tensor.Tensor
	if len(in) > 2 && in[2] != nil {
		bias = in[2]
		if bias.Len() != M || bias.DType != x.DType {
			return nil, ops.BadInput(2, "bias %v %v does not fit %d output channels of %v", bias.DType, bias.Shape, M, x.DType)
		}
	}
	yShape := ar.Ints(2 + nd)
	yShape[0], yShape[1] = N, M
	copy(yShape[2:], out)
	y, err := ar.Empty(x.DType, yShape) // every path starts by writing the bias
	if err != nil {
		return nil, err
	}
	g3, is3 := g.as3v()
	if x.DType == tensor.Float32 && is3 {
		var b []float32
		if bias != nil {
			b = bias.Float32s()
		}
		c.gemmF32(ar, x.Float32s(), w.Float32s(), y.Float32s(), b, N, C, M, &g3)
		return ar.Outputs(y), nil
	}
	if x.DType == tensor.Float32 {
		var b []float32
		if bias != nil {
			b = bias.Float32s()
		}
		convTransposeND(x.Float32s(), w.Float32s(), y.Float32s(), b, N, C, M, grp, g)
	} else {
		var b []float64
		if bias != nil {
			b = bias.Float64s()
		}
		convTransposeND(x.Float64s(), w.Float64s(), y.Float64s(), b, N, C, M, grp, g)
	}
	return ar.Outputs(y), nil
}

// gemmF32: per image and group, cols (inSize × mg·K) = Xgᵀ · Wg with Wg
// packed once, then col2im scatters the columns into Y.
func (c *convTranspose) gemmF32(ar *ops.Arena, x, w, y, b []float32, N, C, M int, g *geom3) {
	grp := c.group
	inSize, K, oSize := g.inSize(), g.kSize(), g.outSize()
	cg, mg := C/grp, M/grp
	mk := mg * K
	var cols []float32
	if ar != nil {
		cols = ar.Float32s(inSize * mk)
	} else {
		cp := getF32(inSize * mk)
		defer putF32(cp)
		cols = *cp
	}
	var pk linalg.PackedB
	var panels []float32
	if !c.constW {
		panels = ar.Float32s(linalg.PackedSize(cg, mk))
	}
	for n := 0; n < N; n++ {
		for gi := 0; gi < grp; gi++ {
			yg := y[(n*M+gi*mg)*oSize : (n*M+(gi+1)*mg)*oSize]
			for m := 0; m < mg; m++ {
				row := yg[m*oSize : (m+1)*oSize]
				var bm float32
				if b != nil {
					bm = b[gi*mg+m]
				}
				for i := range row {
					row[i] = bm
				}
			}
			if cg == 0 || inSize == 0 || mk == 0 {
				continue
			}
			xg := x[(n*C+gi*cg)*inSize : (n*C+(gi+1)*cg)*inSize]
			wg := w[gi*cg*mk : (gi+1)*cg*mk]
			pb := &pk
			if c.constW {
				pb = c.packs[gi].getSlice(wg, false, cg, mk)
			} else {
				linalg.PackBInto(pb, panels, false, cg, mk, wg, mk)
			}
			linalg.SgemmPacked(true, inSize, 1, xg, inSize, pb, 0, cols, mk)
			col2im3(cols, mg, g, yg)
		}
	}
}

// col2im3 adds cols [inSize rows of mg·K] into y [mg, outSize]: the input
// position i with kernel offset kk lands at output i·s − pb + kk·d.
func col2im3[T tensor.Float](cols []T, mg int, g *geom3, y []T) {
	D, H, W := g.in[0], g.in[1], g.in[2]
	OD, OH, OW := g.out[0], g.out[1], g.out[2]
	K := g.kSize()
	oSize := OD * OH * OW
	mk := mg * K
	i := 0
	for id := 0; id < D; id++ {
		for ih := 0; ih < H; ih++ {
			for iw := 0; iw < W; iw++ {
				row := cols[i*mk : (i+1)*mk]
				i++
				for m := 0; m < mg; m++ {
					ym := y[m*oSize : (m+1)*oSize]
					r := row[m*K : (m+1)*K]
					kk := 0
					for kd := 0; kd < g.k[0]; kd++ {
						od := id*g.s[0] - g.pb[0] + kd*g.d[0]
						if od < 0 || od >= OD {
							kk += g.k[1] * g.k[2]
							continue
						}
						for kh := 0; kh < g.k[1]; kh++ {
							oh := ih*g.s[1] - g.pb[1] + kh*g.d[1]
							if oh < 0 || oh >= OH {
								kk += g.k[2]
								continue
							}
							base := (od*OH + oh) * OW
							ow := iw*g.s[2] - g.pb[2]
							for kw := 0; kw < g.k[2]; kw++ {
								if ow >= 0 && ow < OW {
									ym[base+ow] += r[kk]
								}
								ow += g.d[2]
								kk++
							}
						}
					}
				}
			}
		}
	}
}

// convTransposeND is the general scatter loop for any spatial rank.
func convTransposeND[T tensor.Float](xv, wv, yv, b []T, N, C, M, grp int, g *geometry) {
	mg := M / grp
	inSize, kSize, oSize := prodInts(g.in), prodInts(g.k), prodInts(g.out)
	oStr := tensor.Strides(g.out)
	cg := C / grp
	for n := 0; n < N; n++ {
		for m := 0; m < M; m++ {
			row := yv[(n*M+m)*oSize : (n*M+m+1)*oSize]
			var bm T
			if b != nil {
				bm = b[m]
			}
			for i := range row {
				row[i] = bm
			}
		}
		for ch := 0; ch < C; ch++ {
			gi := ch / cg
			xi := 0
			forEachIndex(g.in, func(iidx []int) {
				v := xv[(n*C+ch)*inSize+xi]
				xi++
				ki := 0
				forEachIndex(g.k, func(kidx []int) {
					if off, ok := g.tap(iidx, kidx, g.out, oStr); ok {
						for m := 0; m < mg; m++ {
							yv[(n*M+gi*mg+m)*oSize+off] += v * wv[(ch*mg+m)*kSize+ki]
						}
					}
					ki++
				})
			})
		}
	}
}
