package nn

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/ops/linalg"
	"github.com/mtlrun/mtlrun/tensor"
)

// Convolution and pooling over any number of spatial dims. Conv lowers to
// im2col + SGEMM per group for float32.

func init() {
	ops.Register("", "Conv", 1, func(c *ops.Config) (ops.Op, error) { return &conv{window: parseWindow(c)}, nil })
	ops.Register("", "ConvTranspose", 1, func(c *ops.Config) (ops.Op, error) {
		return &convTranspose{window: parseWindow(c), outPad: c.Attrs.Ints("output_padding"), outShape: c.Attrs.Ints("output_shape")}, nil
	})
	ops.Register("", "MaxPool", 1, func(c *ops.Config) (ops.Op, error) {
		return &pool{window: parseWindow(c), max: true, storageOrder: int(c.Attrs.Int("storage_order", 0))}, nil
	})
	ops.Register("", "AveragePool", 1, func(c *ops.Config) (ops.Op, error) {
		return &pool{window: parseWindow(c), includePad: c.Attrs.Int("count_include_pad", 0) != 0}, nil
	})
	ops.Register("", "GlobalAveragePool", 1, func(c *ops.Config) (ops.Op, error) { return &globalPool{}, nil })
	ops.Register("", "GlobalMaxPool", 1, func(c *ops.Config) (ops.Op, error) { return &globalPool{max: true}, nil })
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

func parseWindow(c *ops.Config) window {
	return window{
		autoPad: c.Attrs.String("auto_pad", "NOTSET"), kernel: c.Attrs.Ints("kernel_shape"),
		strides: c.Attrs.Ints("strides"), dilations: c.Attrs.Ints("dilations"), pads: c.Attrs.Ints("pads"),
		group: int(c.Attrs.Int("group", 1)), ceil: c.Attrs.Int("ceil_mode", 0) != 0,
	}
}

// geometry is one resolved window: per spatial dim the input size, kernel,
// stride, dilation, begin/end padding and output size.
type geometry struct {
	in, k, s, d, pb, pe, out []int
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
	n := len(in)
	g := &geometry{in: in, k: k, s: make([]int, n), d: make([]int, n), pb: make([]int, n), pe: make([]int, n), out: make([]int, n)}
	for i := 0; i < n; i++ {
		g.s[i], g.d[i] = at(w.strides, i, 1), at(w.dilations, i, 1)
		if g.s[i] < 1 || g.d[i] < 1 || k[i] < 1 {
			return nil, fmt.Errorf("strides, dilations and kernel must be positive (dim %d: stride %d, dilation %d, kernel %d)", i, g.s[i], g.d[i], k[i])
		}
		span := (k[i]-1)*g.d[i] + 1
		switch w.autoPad {
		case "NOTSET", "":
			g.pb[i], g.pe[i] = at(w.pads, i, 0), at(w.pads, i+n, 0)
			num := in[i] + g.pb[i] + g.pe[i] - span
			if num < 0 {
				return nil, fmt.Errorf("dim %d: kernel span %d exceeds padded input %d", i, span, in[i]+g.pb[i]+g.pe[i])
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
				return nil, fmt.Errorf("dim %d: kernel span %d exceeds input %d", i, span, in[i])
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
			return nil, fmt.Errorf("unknown auto_pad %q", w.autoPad)
		}
	}
	return g, nil
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

type conv struct{ window }

func (c *conv) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
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
	if grp < 1 || C%grp != 0 || M%grp != 0 || w.Shape[1] != C/grp {
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
	g, err := c.resolve(x.Shape[2:], kdims)
	if err != nil {
		return nil, err
	}
	var bias *tensor.Tensor
	if len(in) > 2 && in[2] != nil {
		bias = in[2]
		if bias.Len() != M {
			return nil, ops.BadInput(2, "bias has %d values for %d output channels", bias.Len(), M)
		}
	}
	outShape := append([]int{N, M}, g.out...)
	out, err := tensor.New(x.DType, outShape)
	if err != nil {
		return nil, err
	}
	switch x.DType {
	case tensor.Float32:
		convF32(x.Float32s(), w.Float32s(), out.Float32s(), bias, N, C, M, grp, g)
	case tensor.Float64:
		convDirect(x.Float64s(), w.Float64s(), out.Float64s(), bias, N, C, M, grp, g)
	default:
		return nil, ops.BadInput(0, "dtype %v not supported", x.DType)
	}
	return []*tensor.Tensor{out}, nil
}

// im2col fills cols [cg·K, O] for one image and group.
func im2col[T tensor.Float](x []T, cg int, g *geometry, cols []T) {
	inSize, kSize, oSize := prodInts(g.in), prodInts(g.k), prodInts(g.out)
	nd := len(g.in)
	inStr := tensor.Strides(g.in)
	row := 0
	for ch := 0; ch < cg; ch++ {
		xc := x[ch*inSize : (ch+1)*inSize]
		forEachIndex(g.k, func(kidx []int) {
			dst := cols[row*oSize : (row+1)*oSize]
			o := 0
			forEachIndex(g.out, func(oidx []int) {
				off, ok := 0, true
				for a := 0; a < nd; a++ {
					p := oidx[a]*g.s[a] - g.pb[a] + kidx[a]*g.d[a]
					if p < 0 || p >= g.in[a] {
						ok = false
						break
					}
					off += p * inStr[a]
				}
				if ok {
					dst[o] = xc[off]
				} else {
					dst[o] = 0
				}
				o++
			})
			row++
		})
	}
	_ = kSize
}

func convF32(x, w, y []float32, bias *tensor.Tensor, N, C, M, grp int, g *geometry) {
	inSize, kSize, oSize := prodInts(g.in), prodInts(g.k), prodInts(g.out)
	cg, mg := C/grp, M/grp
	cols := make([]float32, cg*kSize*oSize)
	var b []float32
	if bias != nil {
		b = bias.Float32s()
	}
	for n := 0; n < N; n++ {
		for gi := 0; gi < grp; gi++ {
			im2col(x[(n*C+gi*cg)*inSize:], cg, g, cols)
			yg := y[(n*M+gi*mg)*oSize : (n*M+(gi+1)*mg)*oSize]
			beta := float32(0)
			if b != nil {
				for m := 0; m < mg; m++ {
					row := yg[m*oSize : (m+1)*oSize]
					for i := range row {
						row[i] = b[gi*mg+m]
					}
				}
				beta = 1
			}
			wg := w[gi*mg*cg*kSize : (gi+1)*mg*cg*kSize]
			linalg.Sgemm(false, false, mg, oSize, cg*kSize, 1, wg, cg*kSize, cols, oSize, beta, yg, oSize)
		}
	}
}

func convDirect[T tensor.Float](x, w, y []T, bias *tensor.Tensor, N, C, M, grp int, g *geometry) {
	inSize, kSize, oSize := prodInts(g.in), prodInts(g.k), prodInts(g.out)
	cg, mg := C/grp, M/grp
	cols := make([]T, cg*kSize*oSize)
	var b []T
	if bias != nil {
		b = tensor.Data[T](bias)
	}
	for n := 0; n < N; n++ {
		for gi := 0; gi < grp; gi++ {
			im2col(x[(n*C+gi*cg)*inSize:], cg, g, cols)
			for m := 0; m < mg; m++ {
				mm := gi*mg + m
				wr := w[mm*cg*kSize : (mm+1)*cg*kSize]
				yr := y[(n*M+mm)*oSize : (n*M+mm+1)*oSize]
				for o := range yr {
					var s T
					if b != nil {
						s = b[mm]
					}
					for r, wv := range wr {
						s += wv * cols[r*oSize+o]
					}
					yr[o] = s
				}
			}
		}
	}
}

type convTranspose struct {
	window
	outPad, outShape []int64
}

func (c *convTranspose) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x, w := in[0], in[1]
	if x.Rank() < 3 || w.Rank() != x.Rank() {
		return nil, fmt.Errorf("ConvTranspose needs X of rank ≥ 3 and W of the same rank, got %v and %v", x.Shape, w.Shape)
	}
	N, C := x.Shape[0], x.Shape[1]
	grp := c.group
	if grp < 1 || C%grp != 0 || w.Shape[0] != C {
		return nil, fmt.Errorf("ConvTranspose: X has %d channels, W is %v, group %d do not fit", C, w.Shape, grp)
	}
	mg := w.Shape[1]
	M := mg * grp
	nd := x.Rank() - 2
	in0, k := x.Shape[2:], w.Shape[2:]
	s, d, pb, pe, out := make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd), make([]int, nd)
	for i := 0; i < nd; i++ {
		s[i], d[i] = at(c.strides, i, 1), at(c.dilations, i, 1)
		span := (k[i]-1)*d[i] + 1
		op := at(c.outPad, i, 0)
		full := s[i]*(in0[i]-1) + op + span
		switch {
		case len(c.outShape) > 0:
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
	yv := make([]float64, N*M*prodInts(out))
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, err
	}
	wv, err := tensor.AsFloat64(w)
	if err != nil {
		return nil, err
	}
	inSize, kSize, oSize := prodInts(in0), prodInts(k), prodInts(out)
	oStr := tensor.Strides(out)
	cg := C / grp
	for n := 0; n < N; n++ {
		for ch := 0; ch < C; ch++ {
			gi := ch / cg
			xi := 0
			forEachIndex(in0, func(iidx []int) {
				v := xv[(n*C+ch)*inSize+xi]
				xi++
				if v == 0 {
					return
				}
				ki := 0
				forEachIndex(k, func(kidx []int) {
					off, ok := 0, true
					for a := 0; a < nd; a++ {
						p := iidx[a]*s[a] - pb[a] + kidx[a]*d[a]
						if p < 0 || p >= out[a] {
							ok = false
							break
						}
						off += p * oStr[a]
					}
					if ok {
						for m := 0; m < mg; m++ {
							yv[(n*M+gi*mg+m)*oSize+off] += v * wv[(ch*mg+m)*kSize+ki]
						}
					}
					ki++
				})
			})
		}
	}
	if len(in) > 2 && in[2] != nil {
		b, err := tensor.AsFloat64(in[2])
		if err != nil {
			return nil, err
		}
		for n := 0; n < N; n++ {
			for m := 0; m < M; m++ {
				row := yv[(n*M+m)*oSize : (n*M+m+1)*oSize]
				for i := range row {
					row[i] += b[m]
				}
			}
		}
	}
	t, err := fromFloat64(x.DType, append([]int{N, M}, out...), yv)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{t}, nil
}

type pool struct {
	window
	max          bool
	includePad   bool
	storageOrder int
}

func (p *pool) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if x.Rank() < 3 {
		return nil, fmt.Errorf("pooling needs rank ≥ 3, got %v", x.Shape)
	}
	nd := x.Rank() - 2
	if len(p.kernel) != nd {
		return nil, ops.BadAttr("kernel_shape", "%v does not match %d spatial dims", p.kernel, nd)
	}
	k := make([]int, nd)
	for i := range k {
		k[i] = int(p.kernel[i])
	}
	g, err := p.resolve(x.Shape[2:], k)
	if err != nil {
		return nil, err
	}
	N, C := x.Shape[0], x.Shape[1]
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	inSize, oSize := prodInts(g.in), prodInts(g.out)
	inStr := tensor.Strides(g.in)
	yv := make([]float64, N*C*oSize)
	idxOut := make([]int64, N*C*oSize)
	for nc := 0; nc < N*C; nc++ {
		base := nc * inSize
		o := 0
		forEachIndex(g.out, func(oidx []int) {
			acc := math.Inf(-1)
			if !p.max {
				acc = 0
			}
			best, count := -1, 0
			forEachIndex(g.k, func(kidx []int) {
				off, inside, inPad := 0, true, true
				for a := 0; a < nd; a++ {
					q := oidx[a]*g.s[a] - g.pb[a] + kidx[a]*g.d[a]
					if q < 0 || q >= g.in[a] {
						inside = false
						if q < -g.pb[a] || q >= g.in[a]+g.pe[a] {
							inPad = false
						}
					} else {
						off += q * inStr[a]
					}
				}
				if !inside {
					if !p.max && p.includePad && inPad {
						count++
					}
					return
				}
				v := xv[base+off]
				if p.max {
					if v > acc || best < 0 {
						acc, best = v, off
					}
				} else {
					acc += v
					count++
				}
			})
			if p.max {
				yv[nc*oSize+o] = acc
				if best >= 0 {
					idx := best
					if p.storageOrder == 1 {
						// column-major position within the image
						idx = 0
						rem := best
						pos := make([]int, nd)
						for a := 0; a < nd; a++ {
							pos[a] = rem / inStr[a]
							rem %= inStr[a]
						}
						mul := 1
						for a := 0; a < nd; a++ {
							idx += pos[a] * mul
							mul *= g.in[a]
						}
					}
					idxOut[nc*oSize+o] = int64(base + idx)
				}
			} else if count > 0 {
				yv[nc*oSize+o] = acc / float64(count)
			}
			o++
		})
	}
	shape := append([]int{N, C}, g.out...)
	y, err := fromFloat64(x.DType, shape, yv)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{y, tensor.From(shape, idxOut)}, nil
}

type globalPool struct{ max bool }

func (p *globalPool) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if x.Rank() < 2 {
		return nil, fmt.Errorf("global pooling needs rank ≥ 2, got %v", x.Shape)
	}
	N, C := x.Shape[0], x.Shape[1]
	sp := prodInts(x.Shape[2:])
	shape := []int{N, C}
	for range x.Shape[2:] {
		shape = append(shape, 1)
	}
	if x.DType == tensor.Float32 {
		xs := x.Float32s()
		y := make([]float32, N*C)
		for i := range y {
			row := xs[i*sp : (i+1)*sp]
			if p.max {
				m := float32(math.Inf(-1))
				for _, v := range row {
					m = max(m, v)
				}
				y[i] = m
				continue
			}
			var s float32
			for _, v := range row {
				s += v
			}
			y[i] = s / float32(sp)
		}
		return []*tensor.Tensor{tensor.From(shape, y)}, nil
	}
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	y := make([]float64, N*C)
	for i := range y {
		row := xv[i*sp : (i+1)*sp]
		if p.max {
			m := math.Inf(-1)
			for _, v := range row {
				m = math.Max(m, v)
			}
			y[i] = m
			continue
		}
		var s float64
		for _, v := range row {
			s += v
		}
		y[i] = s / float64(sp)
	}
	t, err := fromFloat64(x.DType, shape, y)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{t}, nil
}
