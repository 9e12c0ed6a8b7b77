package nn

import (
	"math"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// LpPool, GlobalLpPool, MaxUnpool, Col2Im, GroupNormalization and Det,
// computed in float64 over the window geometry Conv and the pools share.

func init() {
	// LpPool, GlobalLpPool gradients: train/autodiff/rules_lppool.go
	ops.Define(ops.Desc{Type: "LpPool", Since: 1, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) {
		w, err := parseWindow(c)
		if err != nil {
			return nil, err
		}
		p := float64(c.Attrs.Int("p", 2))
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return lpPool(in, w, p, false) }), nil
	}})
	ops.Define(ops.Desc{Type: "GlobalLpPool", Since: 1, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) {
		p := float64(c.Attrs.Int("p", 2))
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return lpPool(in, window{}, p, true) }), nil
	}})
	ops.Define(ops.Desc{Type: "MaxUnpool", Since: 9, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: func(c *ops.Config) (ops.Op, error) {
		w, err := parseWindow(c)
		if err != nil {
			return nil, err
		}
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return maxUnpool(in, w) }), nil
	}})
	// gradient: train/autodiff/rules_col2im.go
	ops.Define(ops.Desc{Type: "Col2Im", Since: 18, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) {
		w, err := parseWindow(c)
		if err != nil {
			return nil, err
		}
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) { return col2im(in, w) }), nil
	}})
	// gradient: train/autodiff/rules_norm.go
	ops.Define(ops.Desc{Type: "GroupNormalization", Since: 18, Shape: ops.ShapeSameAsInput, Grad: ops.GradRule{}, Kernel: newGroupNorm})
	// gradient: train/autodiff/rules_det.go (the cofactor matrix)
	ops.Define(ops.Desc{Type: "Det", Since: 11, Grad: ops.GradRule{}, Kernel: func(*ops.Config) (ops.Op, error) { return ops.OpFunc(runDet), nil }})
}

func lpPool(in []*tensor.Tensor, w window, p float64, global bool) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if x.Rank() < 3 || !x.DType.IsFloat() {
		return nil, ops.BadInput(0, "LpPool needs a float tensor of rank ≥ 3, got %v", x)
	}
	sp := x.Shape[2:]
	k := append([]int{}, sp...)
	if !global {
		if len(w.kernel) != len(sp) {
			return nil, ops.BadAttr("kernel_shape", "%v does not match %d spatial dims of %v", w.kernel, len(sp), x)
		}
		for i := range k {
			k[i] = int(w.kernel[i])
		}
	}
	g, err := w.resolve(sp, k)
	if err != nil {
		return nil, ops.BadInput(0, "LpPool: %v", err)
	}
	xv, _ := tensor.AsFloat64(x)
	inSize, oSize := prodInts(g.in), prodInts(g.out)
	inStr := tensor.Strides(g.in)
	NC := x.Shape[0] * x.Shape[1]
	yv := make([]float64, NC*oSize)
	for nc := 0; nc < NC; nc++ {
		o := 0
		forEachIndex(g.out, func(oidx []int) {
			s := 0.0
			forEachIndex(g.k, func(kidx []int) {
				off := 0
				for a := range oidx {
					q := oidx[a]*g.s[a] - g.pb[a] + kidx[a]*g.d[a]
					if q < 0 || q >= g.in[a] {
						return // padding counts as 0
					}
					off += q * inStr[a]
				}
				s += math.Pow(math.Abs(xv[nc*inSize+off]), p)
			})
			yv[nc*oSize+o] = math.Pow(s, 1/p)
			o++
		})
	}
	y, err := elems.FromFloats(x.DType, append([]int{x.Shape[0], x.Shape[1]}, g.out...), yv)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{y}, nil
}

func maxUnpool(in []*tensor.Tensor, w window) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 2); err != nil {
		return nil, err
	}
	x, ind := in[0], in[1]
	if x.Rank() < 3 || !tensor.SameShape(x.Shape, ind.Shape) {
		return nil, ops.BadInput(1, "MaxUnpool needs X of rank ≥ 3 and indices of its shape, got %v and %v", x, ind)
	}
	nd := x.Rank() - 2
	if len(w.kernel) != nd {
		return nil, ops.BadAttr("kernel_shape", "%v does not match %d spatial dims", w.kernel, nd)
	}
	// indices address the unpooled shape the window implies; an explicit
	// output_shape places that at its origin, zeros around it
	inferred := append([]int{}, x.Shape...)
	for i := 0; i < nd; i++ {
		inferred[2+i] = (x.Shape[2+i]-1)*at(w.strides, i, 1) + int(w.kernel[i]) - at(w.pads, i, 0) - at(w.pads, i+nd, 0)
	}
	shape := inferred
	if len(in) > 2 && in[2] != nil {
		os, err := tensor.AsInt64(in[2])
		if err != nil || len(os) != x.Rank() {
			return nil, ops.BadInput(2, "MaxUnpool output_shape must have %d integers, got %v", x.Rank(), in[2])
		}
		shape = make([]int, len(os))
		for i, v := range os {
			if shape[i] = int(v); shape[i] < inferred[i] {
				return nil, ops.BadInput(2, "MaxUnpool output_shape %v smaller than the unpooled shape %v", os, inferred)
			}
		}
	}
	out, err := tensor.New(x.DType, shape)
	if err != nil {
		return nil, ops.BadInput(2, "MaxUnpool: %v", err)
	}
	iv, err := tensor.AsInt64(ind)
	if err != nil {
		return nil, ops.BadInput(1, "MaxUnpool indices: %v", err)
	}
	n := elems.Prod(inferred)
	ist, ost := tensor.Strides(inferred), tensor.Strides(shape)
	dst := make([]int, len(iv))
	for i, v := range iv {
		if v < 0 || v >= int64(n) {
			return nil, ops.BadInput(1, "MaxUnpool index %d outside the unpooled shape %v", v, inferred)
		}
		off, rem := 0, int(v)
		for d := range inferred {
			off += rem / ist[d] * ost[d]
			rem %= ist[d]
		}
		dst[i] = off
	}
	if err := elems.Copy(out, dst, x, nil); err != nil {
		return nil, ops.BadInput(0, "MaxUnpool: %v", err)
	}
	return []*tensor.Tensor{out}, nil
}

func col2im(in []*tensor.Tensor, w window) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 3); err != nil {
		return nil, err
	}
	x := in[0]
	img, err1 := tensor.AsInt64(in[1])
	blk, err2 := tensor.AsInt64(in[2])
	if err1 != nil || err2 != nil || len(img) != len(blk) || x.Rank() != 3 || !x.DType.IsFloat() {
		return nil, ops.BadInput(0, "Col2Im needs input [N, C·∏block, L] and image/block shapes of one length, got %v, %v, %v", x, in[1], in[2])
	}
	sp, k := make([]int, len(img)), make([]int, len(blk))
	for i := range sp {
		sp[i], k[i] = int(img[i]), int(blk[i])
	}
	g, err := w.resolve(sp, k)
	if err != nil {
		return nil, ops.BadInput(1, "Col2Im: %v", err)
	}
	kSize, L, imSize := prodInts(k), prodInts(g.out), prodInts(sp)
	N := x.Shape[0]
	if x.Shape[1]%kSize != 0 || x.Shape[2] != L {
		return nil, ops.BadInput(0, "Col2Im input %v does not fit %d blocks of %d elements", x, L, kSize)
	}
	C := x.Shape[1] / kSize
	xv, _ := tensor.AsFloat64(x)
	imStr := tensor.Strides(sp)
	out := make([]float64, N*C*imSize)
	for n := 0; n < N; n++ {
		for c := 0; c < C; c++ {
			kk := 0
			forEachIndex(k, func(kidx []int) {
				l := 0
				forEachIndex(g.out, func(oidx []int) {
					if off, ok := g.tap(oidx, kidx, sp, imStr); ok {
						out[(n*C+c)*imSize+off] += xv[(n*x.Shape[1]+c*kSize+kk)*L+l]
					}
					l++
				})
				kk++
			})
		}
	}
	y, err := elems.FromFloats(x.DType, append([]int{N, C}, sp...), out)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{y}, nil
}

// newGroupNorm builds GroupNormalization: mean and variance per group of
// channels; from opset 21 scale and bias are per channel, before per group.
func newGroupNorm(c *ops.Config) (ops.Op, error) {
	groups := int(c.Attrs.Int("num_groups", 0))
	eps := float64(c.Attrs.Float("epsilon", 1e-5))
	perChannel := c.Opset >= 21
	if groups < 1 {
		return nil, ops.BadAttr("num_groups", "must be ≥ 1, got %d", groups)
	}
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 3); err != nil {
			return nil, err
		}
		x := in[0]
		if x.Rank() < 2 || !x.DType.IsFloat() || x.Shape[1]%groups != 0 {
			return nil, ops.BadInput(0, "GroupNormalization needs float [N, C, ...] with C divisible by %d groups, got %v", groups, x)
		}
		N, C := x.Shape[0], x.Shape[1]
		want := C
		if !perChannel {
			want = groups
		}
		sc, err1 := tensor.AsFloat64(in[1])
		bi, err2 := tensor.AsFloat64(in[2])
		if err1 != nil || err2 != nil || len(sc) != want || len(bi) != want {
			return nil, ops.BadInput(1, "GroupNormalization scale and bias must have %d values, got %v and %v", want, in[1], in[2])
		}
		v, _ := tensor.AsFloat64(x)
		sp := elems.Prod(x.Shape[2:])
		cg := C / groups
		m := cg * sp
		for n := 0; n < N; n++ {
			for g := 0; g < groups; g++ {
				seg := v[(n*C+g*cg)*sp:][:m]
				mean, vr := 0.0, 0.0
				for _, f := range seg {
					mean += f
				}
				mean /= float64(m)
				for _, f := range seg {
					vr += (f - mean) * (f - mean)
				}
				inv := 1 / math.Sqrt(vr/float64(m)+eps)
				for i := range seg {
					ch := g*cg + i/sp
					p := g
					if perChannel {
						p = ch
					}
					seg[i] = (seg[i]-mean)*inv*sc[p] + bi[p]
				}
			}
		}
		y, err := elems.FromFloats(x.DType, x.Shape, v)
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{y}, nil
	}), nil
}

// runDet computes determinants of the trailing square matrices by LU
// decomposition with partial pivoting.
func runDet(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	r := x.Rank()
	if r < 2 || x.Shape[r-1] != x.Shape[r-2] || !x.DType.IsFloat() {
		return nil, ops.BadInput(0, "Det needs float [..., M, M], got %v", x)
	}
	M := x.Shape[r-1]
	v, _ := tensor.AsFloat64(x)
	batch := elems.Prod(x.Shape[:r-2])
	out := make([]float64, batch)
	for b := 0; b < batch; b++ {
		a := v[b*M*M:][:M*M]
		det := 1.0
		for c := 0; c < M; c++ {
			p := c
			for i := c + 1; i < M; i++ {
				if math.Abs(a[i*M+c]) > math.Abs(a[p*M+c]) {
					p = i
				}
			}
			if a[p*M+c] == 0 {
				det = 0
				break
			}
			if p != c {
				for j := 0; j < M; j++ {
					a[p*M+j], a[c*M+j] = a[c*M+j], a[p*M+j]
				}
				det = -det
			}
			det *= a[c*M+c]
			for i := c + 1; i < M; i++ {
				f := a[i*M+c] / a[c*M+c]
				for j := c; j < M; j++ {
					a[i*M+j] -= f * a[c*M+j]
				}
			}
		}
		out[b] = det
	}
	y, err := elems.FromFloats(x.DType, x.Shape[:r-2], out)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{y}, nil
}
