package shape

import (
	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// TensorScatter (opset 24), the KV-cache update, and DepthToSpace /
// SpaceToDepth, the block rearrangements.

func init() {
	ops.Define(ops.Desc{Type: "TensorScatter", Since: 24, Shape: ops.ShapeSameAsInput, Grad: ops.Movement(0, 1), Kernel: newTensorScatter})
	ops.Define(ops.Desc{Type: "DepthToSpace", Since: 1, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: func(c *ops.Config) (ops.Op, error) { return newBlockMove(c, true) }})
	ops.Define(ops.Desc{Type: "SpaceToDepth", Since: 1, Grad: ops.Movement(0), Traits: ops.DataMovement, Kernel: func(c *ops.Config) (ops.Op, error) { return newBlockMove(c, false) }})
}

// newTensorScatter builds TensorScatter: the cache with update written
// along axis from write_indices[batch] (0 when absent), wrapping around
// in "circular" mode.
func newTensorScatter(c *ops.Config) (ops.Op, error) {
	axisAttr := c.Attrs.Int("axis", -2)
	mode := c.Attrs.String("mode", "linear")
	if mode != "linear" && mode != "circular" {
		return nil, ops.BadAttr("mode", "unknown mode %q (want linear or circular)", mode)
	}
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		cache, upd := in[0], in[1]
		r := cache.Rank()
		axis, err := normAxis(axisAttr, r)
		if err != nil || axis == 0 {
			return nil, ops.BadInput(0, "TensorScatter axis %d invalid for %v (and not the batch axis)", axisAttr, cache)
		}
		if upd.Rank() != r || upd.DType != cache.DType {
			return nil, ops.BadInput(1, "TensorScatter update %v does not fit cache %v", upd, cache)
		}
		for d := 0; d < r; d++ {
			if d != axis && upd.Shape[d] != cache.Shape[d] || upd.Shape[axis] > cache.Shape[axis] {
				return nil, ops.BadInput(1, "TensorScatter update %v does not fit cache %v", upd, cache)
			}
		}
		B, maxLen, seq := cache.Shape[0], cache.Shape[axis], upd.Shape[axis]
		wi := make([]int64, B)
		if len(in) > 2 && in[2] != nil {
			if wi, err = tensor.AsInt64(in[2]); err != nil || len(wi) != B {
				return nil, ops.BadInput(2, "TensorScatter write_indices must be [batch=%d] integers, got %v", B, in[2])
			}
		}
		out := cache.Clone()
		inner := elems.Prod(cache.Shape[axis+1:])
		mid := elems.Prod(cache.Shape[1:axis])
		var dst []int
		for b := 0; b < B; b++ {
			for m := 0; m < mid; m++ {
				for s := 0; s < seq; s++ {
					p := int(wi[b]) + s
					if mode == "circular" {
						p = ((p % maxLen) + maxLen) % maxLen
					} else if p < 0 || p >= maxLen {
						return nil, ops.BadInput(2, "TensorScatter write index %d + %d outside the cache length %d", wi[b], s, maxLen)
					}
					for i := 0; i < inner; i++ {
						dst = append(dst, ((b*mid+m)*maxLen+p)*inner+i)
					}
				}
			}
		}
		if err := elems.Copy(out, dst, upd, nil); err != nil {
			return nil, ops.BadInput(1, "TensorScatter: %v", err)
		}
		return []*tensor.Tensor{out}, nil
	}), nil
}

// newBlockMove builds DepthToSpace (toSpace) or SpaceToDepth on NCHW data.
// DepthToSpace's mode DCR takes the block offset from the high channel bits,
// CRD from the low ones.
func newBlockMove(c *ops.Config, toSpace bool) (ops.Op, error) {
	bs := int(c.Attrs.Int("blocksize", 0))
	if bs < 1 {
		return nil, ops.BadAttr("blocksize", "must be >= 1, got %d", bs)
	}
	crd := c.Attrs.String("mode", "DCR") == "CRD"
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if x.Rank() != 4 {
			return nil, ops.BadInput(0, "needs NCHW input, got %v", x)
		}
		N, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
		var shape []int
		if toSpace {
			if C%(bs*bs) != 0 {
				return nil, ops.BadInput(0, "DepthToSpace: channels of %v not divisible by blocksize² %d", x, bs*bs)
			}
			shape = []int{N, C / (bs * bs), H * bs, W * bs}
		} else {
			if H%bs != 0 || W%bs != 0 {
				return nil, ops.BadInput(0, "SpaceToDepth: %v not divisible by blocksize %d", x, bs)
			}
			shape = []int{N, C * bs * bs, H / bs, W / bs}
		}
		// big: the space-side tensor [N, c, H', W'] with c = its channels; small: the depth side
		c, Hs, Ws := shape[1], shape[2], shape[3]
		if !toSpace {
			c, Hs, Ws = C, H, W
		}
		idx := make([]int, N*c*Hs*Ws) // space-side position -> depth-side flat offset
		hd, wd := Hs/bs, Ws/bs
		for n := 0; n < N; n++ {
			for ch := 0; ch < c; ch++ {
				for h := 0; h < Hs; h++ {
					for w := 0; w < Ws; w++ {
						bh, bw := h%bs, w%bs
						var dc int
						if crd && toSpace {
							dc = (ch*bs+bh)*bs + bw
						} else {
							dc = (bh*bs+bw)*c + ch
						}
						idx[((n*c+ch)*Hs+h)*Ws+w] = ((n*c*bs*bs+dc)*hd+h/bs)*wd + w/bs
					}
				}
			}
		}
		var out *tensor.Tensor
		var err error
		if toSpace {
			out, err = elems.Take(x, shape, idx)
		} else {
			out, err = tensor.New(x.DType, shape)
			if err == nil {
				err = elems.Copy(out, idx, x, nil)
			}
		}
		if err != nil {
			return nil, ops.BadInput(0, "%v", err)
		}
		return []*tensor.Tensor{out}, nil
	}), nil
}
