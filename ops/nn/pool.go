package nn

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// Pooling. Up to three spatial dims run typed 3-D loops; more dims (or
// float16) take the general index loop in float64.

func init() {
	ops.Define(ops.Desc{Type: "MaxPool", Since: 1, Grad: noRuleYet, Kernel: func(c *ops.Config) (ops.Op, error) {
		w, err := parseWindow(c)
		if err != nil {
			return nil, err
		}
		return &pool{window: w, max: true, storageOrder: int(c.Attrs.Int("storage_order", 0)), outputs: c.NumOutputs}, nil
	}})
	ops.Define(ops.Desc{Type: "AveragePool", Since: 1, Grad: noRuleYet, Kernel: func(c *ops.Config) (ops.Op, error) {
		w, err := parseWindow(c)
		if err != nil {
			return nil, err
		}
		return &pool{window: w, includePad: c.Attrs.Int("count_include_pad", 0) != 0, outputs: c.NumOutputs}, nil
	}})
	ops.Define(ops.Desc{Type: "GlobalAveragePool", Since: 1, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) { return &globalPool{}, nil }})
	ops.Define(ops.Desc{Type: "GlobalMaxPool", Since: 1, Grad: noRuleYet, Kernel: func(c *ops.Config) (ops.Op, error) { return &globalPool{max: true}, nil }})
}

type pool struct {
	window
	max          bool
	includePad   bool
	storageOrder int
	outputs      int
}

func (p *pool) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return p.RunWith(nil, in) }

// RunWith takes the output and the window geometry from the arena; the
// Indices output of MaxPool and the general (> 3-D, float16) loop
// allocate.
func (p *pool) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if x.Rank() < 3 {
		return nil, ops.BadInput(0, "pooling needs rank ≥ 3, got %v", x.Shape)
	}
	nd := x.Rank() - 2
	if len(p.kernel) != nd {
		return nil, ops.BadAttr("kernel_shape", "%v does not match %d spatial dims of input %v", p.kernel, nd, x.Shape)
	}
	k := ar.Ints(nd)
	for i := range k {
		k[i] = int(p.kernel[i])
	}
	var geo geometry
	if err := p.resolveInto(ar, &geo, x.Shape[2:], k); err != nil {
		return nil, err
	}
	g := &geo
	N, C := x.Shape[0], x.Shape[1]
	shape := ar.Ints(2 + nd)
	shape[0], shape[1] = N, C
	copy(shape[2:], g.out)
	y, err := ar.New(x.DType, shape)
	if err != nil {
		return nil, err
	}
	var idx []int64
	if p.max && p.outputs > 1 {
		idx = make([]int64, y.Len())
	}
	g3v, ok := g.as3v()
	g3 := &g3v
	if ok {
		switch x.DType {
		case tensor.Float32:
			poolT(p, x.Float32s(), y.Float32s(), idx, N*C, g3)
		case tensor.Float64:
			poolT(p, x.Float64s(), y.Float64s(), idx, N*C, g3)
		case tensor.Uint8:
			poolT(p, tensor.Data[uint8](x), tensor.Data[uint8](y), idx, N*C, g3)
		case tensor.Int8:
			poolT(p, tensor.Data[int8](x), tensor.Data[int8](y), idx, N*C, g3)
		case tensor.Int32:
			poolT(p, tensor.Data[int32](x), tensor.Data[int32](y), idx, N*C, g3)
		case tensor.Int64:
			poolT(p, tensor.Data[int64](x), tensor.Data[int64](y), idx, N*C, g3)
		default:
			ok = false
		}
	}
	if !ok {
		yv, err := p.general(x, g, idx)
		if err != nil {
			return nil, err
		}
		if y, err = fromFloat64(x.DType, shape, yv); err != nil {
			return nil, ops.BadInput(0, "%v", err)
		}
	}
	if p.outputs > 1 {
		if idx == nil {
			idx = make([]int64, y.Len())
		}
		return ar.Outputs(y, tensor.From(append([]int(nil), shape...), idx)), nil
	}
	return ar.Outputs(y), nil
}

// validRange returns the kernel taps [lo, hi) of window start `start` whose
// positions start + t·d fall inside [0, n).
func validRange(start, d, k, n int) (lo, hi int) {
	lo = 0
	if start < 0 {
		lo = (-start + d - 1) / d
	}
	hi = k
	if last := start + (k-1)*d; last >= n {
		hi = k - ((last-n)/d + 1)
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// padCount counts the taps inside the padded extent [-pb, n+pe).
func padCount(start, d, k, n, pb, pe int) int {
	c := 0
	for t := 0; t < k; t++ {
		q := start + t*d
		if q >= -pb && q < n+pe {
			c++
		}
	}
	return c
}

func poolT[T tensor.Number](p *pool, x, y []T, idx []int64, nc int, g *geom3) {
	D, H, W := g.in[0], g.in[1], g.in[2]
	inSize, oSize := g.inSize(), g.outSize()
	for c := 0; c < nc; c++ {
		xc := x[c*inSize : (c+1)*inSize]
		o := c * oSize
		for od := 0; od < g.out[0]; od++ {
			sd := od*g.s[0] - g.pb[0]
			d0, d1 := validRange(sd, g.d[0], g.k[0], D)
			for oh := 0; oh < g.out[1]; oh++ {
				sh := oh*g.s[1] - g.pb[1]
				h0, h1 := validRange(sh, g.d[1], g.k[1], H)
				for ow := 0; ow < g.out[2]; ow++ {
					sw := ow*g.s[2] - g.pb[2]
					w0, w1 := validRange(sw, g.d[2], g.k[2], W)
					if p.max {
						var best T
						bi := -1
						for kd := d0; kd < d1; kd++ {
							id := sd + kd*g.d[0]
							for kh := h0; kh < h1; kh++ {
								ih := sh + kh*g.d[1]
								rowOff := (id*H + ih) * W
								for kw := w0; kw < w1; kw++ {
									off := rowOff + sw + kw*g.d[2]
									if v := xc[off]; bi < 0 || v > best {
										best, bi = v, off
									}
								}
							}
						}
						y[o] = best
						if idx != nil && bi >= 0 {
							pos := bi
							if p.storageOrder == 1 {
								iw := bi % W
								ih := (bi / W) % H
								id := bi / (W * H)
								pos = id + ih*D + iw*D*H
							}
							idx[o] = int64(c*inSize + pos)
						}
						o++
						continue
					}
					var sum float64
					for kd := d0; kd < d1; kd++ {
						id := sd + kd*g.d[0]
						for kh := h0; kh < h1; kh++ {
							ih := sh + kh*g.d[1]
							row := xc[(id*H+ih)*W:]
							for kw := w0; kw < w1; kw++ {
								sum += float64(row[sw+kw*g.d[2]])
							}
						}
					}
					var cnt int
					if p.includePad {
						cnt = padCount(sd, g.d[0], g.k[0], D, g.pb[0], g.pe[0]) *
							padCount(sh, g.d[1], g.k[1], H, g.pb[1], g.pe[1]) *
							padCount(sw, g.d[2], g.k[2], W, g.pb[2], g.pe[2])
					} else {
						cnt = (d1 - d0) * (h1 - h0) * (w1 - w0)
					}
					if cnt > 0 {
						y[o] = T(sum / float64(cnt))
					} else {
						y[o] = 0
					}
					o++
				}
			}
		}
	}
}

// general pools any spatial rank in float64.
func (p *pool) general(x *tensor.Tensor, g *geometry, idxOut []int64) ([]float64, error) {
	nd := len(g.in)
	N, C := x.Shape[0], x.Shape[1]
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	inSize, oSize := prodInts(g.in), prodInts(g.out)
	inStr := tensor.Strides(g.in)
	yv := make([]float64, N*C*oSize)
	pos := make([]int, nd)
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
				if best >= 0 && idxOut != nil {
					idx := best
					if p.storageOrder == 1 {
						// column-major position within the image
						idx = 0
						rem := best
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
	return yv, nil
}

type globalPool struct{ max bool }

func (p *globalPool) Run(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return p.RunWith(nil, in) }

func (p *globalPool) RunWith(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if x.Rank() < 2 {
		return nil, fmt.Errorf("global pooling needs rank ≥ 2, got %v", x.Shape)
	}
	N, C := x.Shape[0], x.Shape[1]
	sp := prodInts(x.Shape[2:])
	shape := ar.Ints(x.Rank())
	shape[0], shape[1] = N, C
	for i := 2; i < len(shape); i++ {
		shape[i] = 1
	}
	switch x.DType {
	case tensor.Float32, tensor.Float64:
		y, err := ar.New(x.DType, shape)
		if err != nil {
			return nil, err
		}
		if x.DType == tensor.Float32 {
			globalT(x.Float32s(), y.Float32s(), sp, p.max)
		} else {
			globalT(x.Float64s(), y.Float64s(), sp, p.max)
		}
		return ar.Outputs(y), nil
	}
	xv, err := tensor.AsFloat64(x)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	y := make([]float64, N*C)
	globalT(xv, y, sp, p.max)
	t, err := fromFloat64(x.DType, shape, y)
	if err != nil {
		return nil, ops.BadInput(0, "%v", err)
	}
	return []*tensor.Tensor{t}, nil
}

func globalT[T tensor.Float](x, y []T, sp int, isMax bool) {
	for i := range y {
		row := x[i*sp : (i+1)*sp]
		if isMax {
			m := T(math.Inf(-1))
			for _, v := range row {
				m = max(m, v)
			}
			y[i] = m
			continue
		}
		var s float64
		for _, v := range row {
			s += float64(v)
		}
		y[i] = T(s / float64(sp))
	}
}
