package importer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/mtlrun/mtlrun/internal/onnxpb"
	"github.com/mtlrun/mtlrun/tensor"
)

// ReadTensorFile reads a serialized ONNX TensorProto (the .pb files of the
// model-zoo test layout).
func ReadTensorFile(path string) (*tensor.Tensor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := DecodeTensor(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("importer: %s: %w", path, err)
	}
	return t, nil
}

// DecodeTensor parses a serialized TensorProto; dir resolves external data.
func DecodeTensor(data []byte, dir string) (*tensor.Tensor, error) {
	var tp onnxpb.TensorProto
	if err := proto.Unmarshal(data, &tp); err != nil {
		return nil, fmt.Errorf("not a TensorProto: %w", err)
	}
	return tensorFromProto(&tp, dir)
}

// tensorFromProto converts a TensorProto, reading raw_data, the typed fields
// or external data (relative to dir; "" disallows external data).
func tensorFromProto(tp *onnxpb.TensorProto, dir string) (*tensor.Tensor, error) {
	dt := tensor.DType(tp.GetDataType())
	if !dt.Supported() {
		return nil, fmt.Errorf("tensor %q: unsupported data type %d", tp.GetName(), tp.GetDataType())
	}
	if tp.GetSegment() != nil {
		return nil, fmt.Errorf("tensor %q: segmented tensors are not supported", tp.GetName())
	}
	shape := make([]int, len(tp.GetDims()))
	for i, d := range tp.GetDims() {
		if d < 0 || d > tensor.MaxElements {
			return nil, fmt.Errorf("tensor %q: bad dimension %d in %v", tp.GetName(), d, tp.GetDims())
		}
		shape[i] = int(d)
	}
	n, err := tensor.NumElements(shape)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", tp.GetName(), err)
	}
	raw := tp.GetRawData()
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		raw, err = readExternal(tp, dir, tensor.RawBytes(dt, n))
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", tp.GetName(), err)
		}
	}
	var data any
	if raw != nil && dt != tensor.String {
		if len(raw) != tensor.RawBytes(dt, n) {
			return nil, fmt.Errorf("tensor %q: shape %v of %v needs %d bytes of raw data, has %d", tp.GetName(), shape, dt, tensor.RawBytes(dt, n), len(raw))
		}
		data, err = tensor.DecodeRaw(dt, raw, n)
	} else {
		data, err = decodeTyped(tp, dt, n)
	}
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", tp.GetName(), err)
	}
	return &tensor.Tensor{DType: dt, Shape: shape, Data: data}, nil
}

func countErr(field string, have, want int) error {
	return fmt.Errorf("%s has %d values, shape needs %d", field, have, want)
}

func decodeTyped(tp *onnxpb.TensorProto, dt tensor.DType, n int) (any, error) {
	switch dt {
	case tensor.Float32:
		if len(tp.FloatData) != n {
			return nil, countErr("float_data", len(tp.FloatData), n)
		}
		return append([]float32(nil), tp.FloatData...), nil
	case tensor.Float64:
		if len(tp.DoubleData) != n {
			return nil, countErr("double_data", len(tp.DoubleData), n)
		}
		return append([]float64(nil), tp.DoubleData...), nil
	case tensor.Int64:
		if len(tp.Int64Data) != n {
			return nil, countErr("int64_data", len(tp.Int64Data), n)
		}
		return append([]int64(nil), tp.Int64Data...), nil
	case tensor.Uint64, tensor.Uint32:
		if len(tp.Uint64Data) != n {
			return nil, countErr("uint64_data", len(tp.Uint64Data), n)
		}
		if dt == tensor.Uint64 {
			return append([]uint64(nil), tp.Uint64Data...), nil
		}
		out := make([]uint32, n)
		for i, v := range tp.Uint64Data {
			out[i] = uint32(v)
		}
		return out, nil
	case tensor.String:
		if len(tp.StringData) != n {
			return nil, countErr("string_data", len(tp.StringData), n)
		}
		out := make([]string, n)
		for i, v := range tp.StringData {
			out[i] = string(v)
		}
		return out, nil
	}
	// the remaining types travel in int32_data; the 4- and 2-bit ones
	// packed as in raw_data, one byte per entry
	v := tp.Int32Data
	if dt.IsLowPrecision() {
		if len(v) != tensor.RawBytes(dt, n) {
			return nil, countErr("int32_data", len(v), tensor.RawBytes(dt, n))
		}
		b := make([]byte, len(v))
		for i, x := range v {
			b[i] = byte(x)
		}
		return tensor.DecodeRaw(dt, b, n)
	}
	if len(v) != n {
		return nil, countErr("int32_data", len(v), n)
	}
	switch dt {
	case tensor.Int32:
		return append([]int32(nil), v...), nil
	case tensor.Int16:
		return convert(v, func(x int32) int16 { return int16(x) }), nil
	case tensor.Int8:
		return convert(v, func(x int32) int8 { return int8(x) }), nil
	case tensor.Uint16:
		return convert(v, func(x int32) uint16 { return uint16(x) }), nil
	case tensor.Uint8:
		return convert(v, func(x int32) uint8 { return uint8(x) }), nil
	case tensor.Bool:
		return convert(v, func(x int32) bool { return x != 0 }), nil
	case tensor.Float16:
		return convert(v, func(x int32) tensor.Float16Bits { return tensor.Float16Bits(x) }), nil
	case tensor.BFloat16:
		return convert(v, func(x int32) tensor.BFloat16Bits { return tensor.BFloat16Bits(x) }), nil
	}
	return nil, fmt.Errorf("typed data for %v is not supported", dt)
}

func convert[A, B any](in []A, f func(A) B) []B {
	out := make([]B, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// ErrUnsafeLocation is returned for external data outside the model's folder.
var ErrUnsafeLocation = errors.New("external data location escapes the model's folder")

func readExternal(tp *onnxpb.TensorProto, dir string, want int) ([]byte, error) {
	if dir == "" {
		return nil, errors.New("external data is not allowed here (no model folder)")
	}
	var location string
	offset, length := int64(0), int64(-1)
	for _, kv := range tp.GetExternalData() {
		var err error
		switch kv.GetKey() {
		case "location":
			location = kv.GetValue()
		case "offset":
			offset, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		case "length":
			length, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("external data %s: %w", kv.GetKey(), err)
		}
	}
	if location == "" {
		return nil, errors.New("external data without a location")
	}
	clean := filepath.Clean(filepath.FromSlash(location))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%w: %q", ErrUnsafeLocation, location)
	}
	path := filepath.Join(dir, clean)
	// a symlink inside the folder may still point outside it
	if real, err := filepath.EvalSymlinks(path); err == nil {
		realDir, _ := filepath.EvalSymlinks(dir)
		if rel, err := filepath.Rel(realDir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("%w: %q resolves to %s", ErrUnsafeLocation, location, real)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("external data: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if length < 0 {
		length = int64(want)
	}
	if length != int64(want) {
		return nil, fmt.Errorf("external data length %d, shape needs %d bytes", length, want)
	}
	// written so that offset+length cannot overflow
	if offset < 0 || offset > st.Size() || length > st.Size()-offset {
		return nil, fmt.Errorf("external data at offset %d, %d bytes, lies outside %s (%d bytes)", offset, length, location, st.Size())
	}
	buf := make([]byte, length)
	if n, err := f.ReadAt(buf, offset); n != len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("external data %s: %w", location, err)
	}
	return buf, nil
}
