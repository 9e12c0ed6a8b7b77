package importer

import (
	"errors"
	"fmt"

	"github.com/mtlrun/mtlrun/internal/elems"
	"github.com/mtlrun/mtlrun/internal/onnxpb"
	"github.com/mtlrun/mtlrun/tensor"
)

// sparseFromProto converts a SparseTensorProto to a dense tensor: zeros (or
// empty strings) with the values at their indices, given as linear indices
// [NNZ] or coordinates [NNZ, rank]. dir resolves external data.
func sparseFromProto(sp *onnxpb.SparseTensorProto, dir string) (*tensor.Tensor, error) {
	if sp.GetValues() == nil {
		return nil, errors.New("sparse tensor without values")
	}
	vals, err := tensorFromProto(sp.GetValues(), dir)
	if err != nil {
		return nil, fmt.Errorf("sparse values: %w", err)
	}
	shape := make([]int, len(sp.GetDims()))
	for i, d := range sp.GetDims() {
		if d < 0 || d > tensor.MaxElements {
			return nil, fmt.Errorf("sparse tensor: bad dimension %d in %v", d, sp.GetDims())
		}
		shape[i] = int(d)
	}
	out, err := tensor.New(vals.DType, shape)
	if err != nil {
		return nil, fmt.Errorf("sparse tensor: %w", err)
	}
	nnz := vals.Len()
	if vals.Rank() != 1 {
		return nil, fmt.Errorf("sparse values must be 1-D, got %v", vals)
	}
	if nnz == 0 {
		return out, nil
	}
	if sp.GetIndices() == nil {
		return nil, errors.New("sparse tensor without indices")
	}
	it, err := tensorFromProto(sp.GetIndices(), dir)
	if err != nil {
		return nil, fmt.Errorf("sparse indices: %w", err)
	}
	raw, err := tensor.AsInt64(it)
	if err != nil {
		return nil, fmt.Errorf("sparse indices: %w", err)
	}
	n := out.Len()
	st := tensor.Strides(shape)
	idx := make([]int, nnz)
	switch {
	case it.Rank() == 1 && it.Shape[0] == nnz:
		for i, v := range raw {
			if v < 0 || v >= int64(n) {
				return nil, fmt.Errorf("sparse index %d outside the %d elements of %v", v, n, shape)
			}
			idx[i] = int(v)
		}
	case it.Rank() == 2 && it.Shape[0] == nnz && it.Shape[1] == len(shape):
		for i := range idx {
			for d := range shape {
				c := raw[i*len(shape)+d]
				if c < 0 || c >= int64(shape[d]) {
					return nil, fmt.Errorf("sparse coordinate %d outside dim %d of %v", c, d, shape)
				}
				idx[i] += int(c) * st[d]
			}
		}
	default:
		return nil, fmt.Errorf("sparse indices %v do not fit %d values of a rank-%d tensor", it, nnz, len(shape))
	}
	if err := elems.Copy(out, idx, vals, nil); err != nil {
		return nil, fmt.Errorf("sparse tensor: %w", err)
	}
	return out, nil
}
