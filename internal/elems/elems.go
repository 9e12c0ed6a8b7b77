// Package elems holds the dtype-generic element helpers the index and
// selection kernels share: taking elements by flat index from a tensor of
// any dtype, writing them into another, and reading or writing numbers as
// float64 whatever the dtype. It keeps those kernels one generic loop each
// instead of a type switch per op.
package elems

import (
	"fmt"
	"math"

	"github.com/mtlrun/mtlrun/tensor"
)

// Take returns a tensor of src's dtype and the given shape whose element i
// is src's flat element idx[i]. Indices must be in range (callers check).
func Take(src *tensor.Tensor, shape []int, idx []int) (*tensor.Tensor, error) {
	out, err := tensor.New(src.DType, shape)
	if err != nil {
		return nil, err
	}
	if tensor.DataLen(out.Data) != len(idx) {
		return nil, fmt.Errorf("elems: shape %v holds %d elements, %d indices given", shape, tensor.DataLen(out.Data), len(idx))
	}
	if err := Copy(out, nil, src, idx); err != nil {
		return nil, err
	}
	return out, nil
}

// Copy sets dst[dstIdx[i]] = src[srcIdx[i]] for every i; a nil index list
// means 0, 1, 2, ... (the other list gives the count). dst and src must have
// the same dtype.
func Copy(dst *tensor.Tensor, dstIdx []int, src *tensor.Tensor, srcIdx []int) error {
	if dst.DType != src.DType {
		return fmt.Errorf("elems: copy %v into %v", src.DType, dst.DType)
	}
	switch d := dst.Data.(type) {
	case []float32:
		copyT(d, dstIdx, src.Data.([]float32), srcIdx)
	case []float64:
		copyT(d, dstIdx, src.Data.([]float64), srcIdx)
	case []int8:
		copyT(d, dstIdx, src.Data.([]int8), srcIdx)
	case []int16:
		copyT(d, dstIdx, src.Data.([]int16), srcIdx)
	case []int32:
		copyT(d, dstIdx, src.Data.([]int32), srcIdx)
	case []int64:
		copyT(d, dstIdx, src.Data.([]int64), srcIdx)
	case []uint8:
		copyT(d, dstIdx, src.Data.([]uint8), srcIdx)
	case []uint16:
		copyT(d, dstIdx, src.Data.([]uint16), srcIdx)
	case []uint32:
		copyT(d, dstIdx, src.Data.([]uint32), srcIdx)
	case []uint64:
		copyT(d, dstIdx, src.Data.([]uint64), srcIdx)
	case []bool:
		copyT(d, dstIdx, src.Data.([]bool), srcIdx)
	case []string:
		copyT(d, dstIdx, src.Data.([]string), srcIdx)
	case []tensor.Float16Bits:
		copyT(d, dstIdx, src.Data.([]tensor.Float16Bits), srcIdx)
	case []tensor.BFloat16Bits:
		copyT(d, dstIdx, src.Data.([]tensor.BFloat16Bits), srcIdx)
	default:
		return fmt.Errorf("elems: unsupported dtype %v", dst.DType)
	}
	return nil
}

func copyT[T any](dst []T, di []int, src []T, si []int) {
	switch {
	case di == nil && si == nil:
		copy(dst, src)
	case di == nil:
		for i, s := range si {
			dst[i] = src[s]
		}
	case si == nil:
		for i, d := range di {
			dst[d] = src[i]
		}
	default:
		for i, d := range di {
			dst[d] = src[si[i]]
		}
	}
}

// FromFloats builds a tensor of dtype dt from float64 values: floats round
// to nearest, integers truncate toward zero (after a NaN check), bools are
// v != 0.
func FromFloats(dt tensor.DType, shape []int, v []float64) (*tensor.Tensor, error) {
	out, err := tensor.New(dt, shape)
	if err != nil {
		return nil, err
	}
	if tensor.DataLen(out.Data) != len(v) {
		return nil, fmt.Errorf("elems: shape %v holds %d elements, %d values given", shape, tensor.DataLen(out.Data), len(v))
	}
	switch d := out.Data.(type) {
	case []float32:
		for i, x := range v {
			d[i] = float32(x)
		}
	case []float64:
		copy(d, v)
	case []tensor.Float16Bits:
		for i, x := range v {
			d[i] = tensor.Float32ToFloat16(float32(x))
		}
	case []tensor.BFloat16Bits:
		for i, x := range v {
			d[i] = tensor.Float32ToBFloat16(float32(x))
		}
	case []bool:
		for i, x := range v {
			d[i] = x != 0
		}
	case []int8:
		narrow(d, v)
	case []int16:
		narrow(d, v)
	case []int32:
		narrow(d, v)
	case []int64:
		narrow(d, v)
	case []uint8:
		narrow(d, v)
	case []uint16:
		narrow(d, v)
	case []uint32:
		narrow(d, v)
	case []uint64:
		narrow(d, v)
	default:
		return nil, fmt.Errorf("elems: cannot write numbers as %v", dt)
	}
	return out, nil
}

func narrow[T tensor.Number](d []T, v []float64) {
	for i, x := range v {
		if math.IsNaN(x) {
			x = 0
		}
		d[i] = T(int64(x))
	}
}

// Prod is the product of dims (1 for none).
func Prod(dims []int) int {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return n
}

// Reduction combines an existing element with an incoming one.
type Reduction int

// Reductions of ScatterND and ScatterElements.
const (
	None Reduction = iota
	Add
	Mul
	Max
	Min
)

// ParseReduction reads the reduction attribute ("none", "add", "mul", "max", "min").
func ParseReduction(s string) (Reduction, error) {
	switch s {
	case "", "none":
		return None, nil
	case "add":
		return Add, nil
	case "mul":
		return Mul, nil
	case "max":
		return Max, nil
	case "min":
		return Min, nil
	}
	return None, fmt.Errorf("unknown reduction %q (want none, add, mul, max or min)", s)
}

// Combine sets dst[dstIdx[i]] = r(dst[dstIdx[i]], src[srcIdx[i]]) in order
// (nil srcIdx means 0, 1, 2, ...); None is Copy.
func Combine(r Reduction, dst *tensor.Tensor, dstIdx []int, src *tensor.Tensor, srcIdx []int) error {
	if r == None {
		return Copy(dst, dstIdx, src, srcIdx)
	}
	if dst.DType != src.DType {
		return fmt.Errorf("elems: combine %v into %v", src.DType, dst.DType)
	}
	switch d := dst.Data.(type) {
	case []float32:
		combineT(r, d, dstIdx, src.Data.([]float32), srcIdx)
	case []float64:
		combineT(r, d, dstIdx, src.Data.([]float64), srcIdx)
	case []int8:
		combineT(r, d, dstIdx, src.Data.([]int8), srcIdx)
	case []int16:
		combineT(r, d, dstIdx, src.Data.([]int16), srcIdx)
	case []int32:
		combineT(r, d, dstIdx, src.Data.([]int32), srcIdx)
	case []int64:
		combineT(r, d, dstIdx, src.Data.([]int64), srcIdx)
	case []uint8:
		combineT(r, d, dstIdx, src.Data.([]uint8), srcIdx)
	case []uint16:
		combineT(r, d, dstIdx, src.Data.([]uint16), srcIdx)
	case []uint32:
		combineT(r, d, dstIdx, src.Data.([]uint32), srcIdx)
	case []uint64:
		combineT(r, d, dstIdx, src.Data.([]uint64), srcIdx)
	case []tensor.Float16Bits, []tensor.BFloat16Bits:
		df, _ := tensor.AsFloat64(dst)
		sf, _ := tensor.AsFloat64(src)
		combineT(r, df, dstIdx, sf, srcIdx)
		back, err := FromFloats(dst.DType, dst.Shape, df)
		if err != nil {
			return err
		}
		dst.Data = back.Data
	default:
		return fmt.Errorf("elems: reduction over %v is not supported", dst.DType)
	}
	return nil
}

func combineT[T tensor.Number](r Reduction, dst []T, di []int, src []T, si []int) {
	for i, d := range di {
		s := i
		if si != nil {
			s = si[i]
		}
		v := src[s]
		switch r {
		case Add:
			dst[d] += v
		case Mul:
			dst[d] *= v
		case Max:
			dst[d] = max(dst[d], v)
		case Min:
			dst[d] = min(dst[d], v)
		}
	}
}
