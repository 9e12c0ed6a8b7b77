package nn

import (
	"math"
	"sort"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

// TopK and Hardmax: selection along one axis by value.

func init() {
	// gradient: train/autodiff/rules_select.go (to the selected indices)
	ops.Define(ops.Desc{Type: "TopK", Since: 1, Grad: ops.GradRule{}, Kernel: newTopK})
	ops.Define(ops.Desc{Type: "Hardmax", Since: 1, Shape: ops.ShapeSameAsInput, Grad: ops.ZeroGradient("piecewise constant: a one-hot of the argmax"), Kernel: newHardmax})
}

// ---- TopK ----

// newTopK builds TopK. Before opset 10, k is the attribute "k"; from 10 it
// is the second input, and from 11 "largest" and "sorted" exist (an
// unsorted request returns sorted values, which the spec allows).
func newTopK(c *ops.Config) (ops.Op, error) {
	axisAttr := c.Attrs.Int("axis", -1)
	largest := c.Attrs.Int("largest", 1) != 0
	kAttr, kFromAttr := c.Attrs.Int("k", 0), c.Opset < 10
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		need := 2
		if kFromAttr {
			need = 1
		}
		if err := ops.NeedInputs(in, need); err != nil {
			return nil, err
		}
		x := in[0]
		k := kAttr
		if !kFromAttr {
			kv, err := tensor.AsInt64(in[1])
			if err != nil || len(kv) != 1 {
				return nil, ops.BadInput(1, "TopK k must be one integer, got %v", in[1])
			}
			k = kv[0]
		}
		axis, err := ops.NormAxis(int(axisAttr), x.Rank())
		if err != nil || x.Rank() == 0 {
			return nil, ops.BadInput(0, "TopK axis %d invalid for %v", axisAttr, x)
		}
		n := x.Shape[axis]
		if k < 0 || k > int64(n) {
			return nil, ops.BadInput(1, "TopK k=%d out of range [0, %d] for axis %d of %v", k, n, axis, x)
		}
		v, err := tensor.AsFloat64(x)
		if err != nil {
			return nil, ops.BadInput(0, "TopK: %v", err)
		}
		outer, inner := elems.Prod(x.Shape[:axis]), elems.Prod(x.Shape[axis+1:])
		shape := append([]int{}, x.Shape...)
		shape[axis] = int(k)
		src := make([]int, 0, outer*int(k)*inner)
		ind := make([]int64, outer*int(k)*inner)
		order := make([]int, n)
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				base := o*n*inner + i
				for j := range order {
					order[j] = j
				}
				at := func(j int) float64 { return v[base+j*inner] }
				// NaN ranks above every number (as numpy sorts it last and onnxruntime picks it first for largest)
				less := func(a, b int) bool {
					va, vb := at(order[a]), at(order[b])
					na, nb := math.IsNaN(va), math.IsNaN(vb)
					if na || nb {
						if na && nb {
							return order[a] < order[b]
						}
						return na == largest
					}
					if va != vb {
						if largest {
							return va > vb
						}
						return va < vb
					}
					return order[a] < order[b]
				}
				sort.SliceStable(order, less)
				for j := 0; j < int(k); j++ {
					ind[(o*int(k)+j)*inner+i] = int64(order[j])
				}
			}
		}
		// values in output order
		for o := 0; o < outer; o++ {
			for j := 0; j < int(k); j++ {
				for i := 0; i < inner; i++ {
					src = append(src, o*n*inner+int(ind[(o*int(k)+j)*inner+i])*inner+i)
				}
			}
		}
		vals, err := elems.Take(x, shape, src)
		if err != nil {
			return nil, ops.BadInput(0, "TopK: %v", err)
		}
		return []*tensor.Tensor{vals, tensor.From(shape, ind)}, nil
	}), nil
}

// ---- Hardmax ----

// newHardmax builds Hardmax: 1 at the first maximum along the axis, 0
// elsewhere. Before opset 13 the input is seen as 2-D [outer, inner] split
// at axis (default 1), and the maximum is taken over each row.
func newHardmax(c *ops.Config) (ops.Op, error) {
	legacy := c.Opset < 13
	def := int64(-1)
	if legacy {
		def = 1
	}
	axisAttr := c.Attrs.Int("axis", def)
	return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		r := x.Rank()
		axis, err := ops.NormAxis(int(axisAttr), r)
		if err != nil {
			return nil, ops.BadInput(0, "Hardmax axis %d invalid for %v", axisAttr, x)
		}
		v, err := tensor.AsFloat64(x)
		if err != nil || !x.DType.IsFloat() {
			return nil, ops.BadInput(0, "Hardmax needs a float tensor, got %v", x)
		}
		var outer, n, inner int
		if legacy {
			outer, n, inner = elems.Prod(x.Shape[:axis]), elems.Prod(x.Shape[axis:]), 1
		} else {
			outer, n, inner = elems.Prod(x.Shape[:axis]), x.Shape[axis], elems.Prod(x.Shape[axis+1:])
		}
		out := make([]float64, len(v))
		for o := 0; o < outer; o++ {
			for i := 0; i < inner; i++ {
				best := -1
				for j := 0; j < n; j++ {
					if f := v[(o*n+j)*inner+i]; best < 0 || f > v[(o*n+best)*inner+i] {
						best = j
					}
				}
				if best >= 0 {
					out[(o*n+best)*inner+i] = 1
				}
			}
		}
		y, err := elems.FromFloats(x.DType, x.Shape, out)
		if err != nil {
			return nil, ops.BadInput(0, "Hardmax: %v", err)
		}
		return []*tensor.Tensor{y}, nil
	}), nil
}
