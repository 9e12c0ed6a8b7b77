package nn

import (
	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// RotaryEmbedding (opset 23): rotates the first rotary_embedding_dim
// features of every head by the position's angles, from cos/sin caches
// indexed by position_ids (or given per batch and position), in halves or
// interleaved pairs. Input [B, H, S, D] or [B, S, H·D].

func init() {
	// gradient: train/autodiff/rules_transformer.go (the inverse rotation)
	ops.Define(ops.Desc{Type: "RotaryEmbedding", Since: 23, Shape: ops.ShapeSameAsInput, Grad: ops.GradRule{}, Kernel: func(c *ops.Config) (ops.Op, error) {
		r := &rotary{interleaved: c.Attrs.Int("interleaved", 0) != 0, heads: int(c.Attrs.Int("num_heads", 0)), dim: int(c.Attrs.Int("rotary_embedding_dim", 0))}
		return ops.OpFunc(r.run), nil
	}})
}

type rotary struct {
	interleaved bool
	heads, dim  int
}

func (r *rotary) run(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ops.NeedInputs(in, 3); err != nil {
		return nil, err
	}
	x, cosT, sinT := in[0], in[1], in[2]
	v, err := tensor.AsFloat64(x)
	if err != nil || !x.DType.IsFloat() {
		return nil, ops.BadInput(0, "RotaryEmbedding needs a float input, got %v", x)
	}
	var B, S, H, D int
	// offset of (b, s, h, d) in x's layout
	var at func(b, s, h, d int) int
	switch x.Rank() {
	case 4:
		B, H, S, D = x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
		at = func(b, s, h, d int) int { return ((b*H+h)*S+s)*D + d }
	case 3:
		if r.heads <= 0 || x.Shape[2]%r.heads != 0 {
			return nil, ops.BadInput(0, "RotaryEmbedding on 3-D %v needs num_heads dividing the hidden size", x)
		}
		B, S, H = x.Shape[0], x.Shape[1], r.heads
		D = x.Shape[2] / H
		at = func(b, s, h, d int) int { return ((b*S+s)*H+h)*D + d }
	default:
		return nil, ops.BadInput(0, "RotaryEmbedding input must be 3-D or 4-D, got %v", x)
	}
	dim := r.dim
	if dim == 0 {
		dim = D
	}
	half := dim / 2
	if dim > D || dim%2 != 0 {
		return nil, ops.BadAttr("rotary_embedding_dim", "%d does not fit head size %d", dim, D)
	}
	cv, err1 := tensor.AsFloat64(cosT)
	sv, err2 := tensor.AsFloat64(sinT)
	if err1 != nil || err2 != nil || cosT.Shape[cosT.Rank()-1] != half || !tensor.SameShape(cosT.Shape, sinT.Shape) {
		return nil, ops.BadInput(1, "RotaryEmbedding caches %v/%v must end in rotary_embedding_dim/2 = %d", cosT, sinT, half)
	}
	var pos []int64
	if len(in) > 3 && in[3] != nil {
		if pos, err = tensor.AsInt64(in[3]); err != nil || len(pos) != B*S {
			return nil, ops.BadInput(3, "RotaryEmbedding position_ids must be [%d, %d] integers, got %v", B, S, in[3])
		}
	} else if cosT.Rank() != 3 || cosT.Shape[0] != B || cosT.Shape[1] != S {
		return nil, ops.BadInput(1, "RotaryEmbedding without position_ids needs caches [%d, %d, %d], got %v", B, S, half, cosT)
	}
	rows := cosT.Len() / half
	out := append([]float64(nil), v...)
	for b := 0; b < B; b++ {
		for s := 0; s < S; s++ {
			row := b*S + s
			if pos != nil {
				row = int(pos[b*S+s])
				if row < 0 || row >= rows {
					return nil, ops.BadInput(3, "RotaryEmbedding position %d outside the %d cached positions", row, rows)
				}
			}
			cs, sn := cv[row*half:][:half], sv[row*half:][:half]
			for h := 0; h < H; h++ {
				for i := 0; i < half; i++ {
					i1, i2 := i, i+half
					if r.interleaved {
						i1, i2 = 2*i, 2*i+1
					}
					x1, x2 := v[at(b, s, h, i1)], v[at(b, s, h, i2)]
					out[at(b, s, h, i1)] = cs[i]*x1 - sn[i]*x2
					out[at(b, s, h, i2)] = sn[i]*x1 + cs[i]*x2
				}
			}
		}
	}
	y, err := elems.FromFloats(x.DType, x.Shape, out)
	if err != nil {
		return nil, err
	}
	return []*tensor.Tensor{y}, nil
}
