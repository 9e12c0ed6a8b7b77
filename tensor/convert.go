package tensor

import (
	"fmt"
	"math"
)

// Float16ToFloat32 converts IEEE half-precision bits to float32 exactly.
func Float16ToFloat32(h Float16Bits) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: renormalise
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		mant &= 0x3ff
		return math.Float32frombits(sign | e<<23 | mant<<13)
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float32ToFloat16 converts with round-to-nearest-even, as numpy does.
func Float32ToFloat16(f float32) Float16Bits {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return Float16Bits(sign | 0x7e00)
		}
		return Float16Bits(sign | 0x7c00)
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return Float16Bits(sign | 0x7c00)
	}
	if e <= 0 {
		if e < -10 {
			return Float16Bits(sign)
		}
		mant |= 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		rounded := mant >> shift
		rem := mant & (1<<shift - 1)
		if rem > half || (rem == half && rounded&1 == 1) {
			rounded++
		}
		return Float16Bits(sign | uint16(rounded))
	}
	rounded := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && rounded&1 == 1) {
		rounded++ // may carry into the exponent, which is correct
	}
	return Float16Bits(sign | uint16(rounded))
}

// BFloat16ToFloat32 converts bfloat16 bits to float32 exactly.
func BFloat16ToFloat32(h BFloat16Bits) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBFloat16 converts with round-to-nearest-even (NaN stays NaN).
func Float32ToBFloat16(f float32) BFloat16Bits {
	b := math.Float32bits(f)
	if f != f {
		return BFloat16Bits(b>>16 | 0x40)
	}
	b += 0x7fff + (b>>16)&1
	return BFloat16Bits(b >> 16)
}

// AsFloat64 returns the tensor's values widened to float64 (bools as 0/1).
// It fails for strings.
func AsFloat64(t *Tensor) ([]float64, error) {
	out := make([]float64, DataLen(t.Data))
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []float64:
		copy(out, d)
	case []int8:
		widen(out, d)
	case []int16:
		widen(out, d)
	case []int32:
		widen(out, d)
	case []int64:
		widen(out, d)
	case []uint8:
		widen(out, d)
	case []uint16:
		widen(out, d)
	case []uint32:
		widen(out, d)
	case []uint64:
		widen(out, d)
	case []bool:
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
	case []Float16Bits:
		for i, v := range d {
			out[i] = float64(Float16ToFloat32(v))
		}
	case []BFloat16Bits:
		for i, v := range d {
			out[i] = float64(BFloat16ToFloat32(v))
		}
	default:
		if lowToFloat64(out, t.Data) {
			return out, nil
		}
		return nil, fmt.Errorf("tensor: cannot read %v as numbers", t.DType)
	}
	return out, nil
}

func widen[T Number](out []float64, in []T) {
	for i, v := range in {
		out[i] = float64(v)
	}
}

// AsInt64 returns integer (or bool) tensor values as int64, for shapes,
// axes and indices. Floating-point tensors are refused.
func AsInt64(t *Tensor) ([]int64, error) {
	out := make([]int64, DataLen(t.Data))
	switch d := t.Data.(type) {
	case []int64:
		copy(out, d)
	case []int32:
		toInt64(out, d)
	case []int16:
		toInt64(out, d)
	case []int8:
		toInt64(out, d)
	case []uint8:
		toInt64(out, d)
	case []uint16:
		toInt64(out, d)
	case []uint32:
		toInt64(out, d)
	case []uint64:
		toInt64(out, d)
	case []bool:
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
	case []Uint4Val, []Int4Val, []Uint2Val, []Int2Val:
		f := make([]float64, len(out))
		lowToFloat64(f, d)
		for i, v := range f {
			out[i] = int64(v)
		}
	default:
		return nil, fmt.Errorf("tensor: expected an integer tensor, got %v", t.DType)
	}
	return out, nil
}

func toInt64[T Number](out []int64, in []T) {
	for i, v := range in {
		out[i] = int64(v)
	}
}
