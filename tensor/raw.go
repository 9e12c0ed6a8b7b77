package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DecodeRaw reads n little-endian elements of type dt (len(raw) must be
// n*dt.Size()) into a new slice of the matching Go type.
func DecodeRaw(dt DType, raw []byte, n int) (any, error) {
	if len(raw) < RawBytes(dt, n) {
		return nil, fmt.Errorf("tensor: %d bytes cannot hold %d %v values", len(raw), n, dt)
	}
	if dt.IsLowPrecision() {
		return decodeLowRaw(dt, raw, n), nil
	}
	le := binary.LittleEndian
	switch dt {
	case Float32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case Float64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		return out, nil
	case Int64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
		return out, nil
	case Uint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le.Uint64(raw[8*i:])
		}
		return out, nil
	case Int32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(raw[4*i:]))
		}
		return out, nil
	case Uint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(raw[4*i:])
		}
		return out, nil
	case Int16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le.Uint16(raw[2*i:]))
		}
		return out, nil
	case Uint16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le.Uint16(raw[2*i:])
		}
		return out, nil
	case Float16:
		out := make([]Float16Bits, n)
		for i := range out {
			out[i] = Float16Bits(le.Uint16(raw[2*i:]))
		}
		return out, nil
	case BFloat16:
		out := make([]BFloat16Bits, n)
		for i := range out {
			out[i] = BFloat16Bits(le.Uint16(raw[2*i:]))
		}
		return out, nil
	case Int8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(raw[i])
		}
		return out, nil
	case Uint8:
		return append([]uint8(nil), raw[:n]...), nil
	case Bool:
		out := make([]bool, n)
		for i := range out {
			out[i] = raw[i] != 0
		}
		return out, nil
	}
	return nil, fmt.Errorf("raw data for %v is not supported", dt)
}

// EncodeRaw returns a numeric tensor's little-endian bytes, the layout of
// ONNX raw_data and of the inference protocol's binary tensors.
func EncodeRaw(t *Tensor) ([]byte, error) {
	if t.DType.IsLowPrecision() {
		return encodeLowRaw(t.DType, t.Data), nil
	}
	le := binary.LittleEndian
	out := make([]byte, t.Len()*t.DType.Size())
	switch d := t.Data.(type) {
	case []float32:
		for i, v := range d {
			le.PutUint32(out[4*i:], math.Float32bits(v))
		}
	case []float64:
		for i, v := range d {
			le.PutUint64(out[8*i:], math.Float64bits(v))
		}
	case []int64:
		for i, v := range d {
			le.PutUint64(out[8*i:], uint64(v))
		}
	case []uint64:
		for i, v := range d {
			le.PutUint64(out[8*i:], v)
		}
	case []int32:
		for i, v := range d {
			le.PutUint32(out[4*i:], uint32(v))
		}
	case []uint32:
		for i, v := range d {
			le.PutUint32(out[4*i:], v)
		}
	case []int16:
		for i, v := range d {
			le.PutUint16(out[2*i:], uint16(v))
		}
	case []uint16:
		for i, v := range d {
			le.PutUint16(out[2*i:], v)
		}
	case []Float16Bits:
		for i, v := range d {
			le.PutUint16(out[2*i:], uint16(v))
		}
	case []BFloat16Bits:
		for i, v := range d {
			le.PutUint16(out[2*i:], uint16(v))
		}
	case []int8:
		for i, v := range d {
			out[i] = byte(v)
		}
	case []uint8:
		copy(out, d)
	case []bool:
		for i, v := range d {
			if v {
				out[i] = 1
			}
		}
	default:
		return nil, fmt.Errorf("cannot encode %v data of Go type %T", t.DType, t.Data)
	}
	return out, nil
}
