// Package tensor is mtlrun's n-dimensional array: a dtype, a shape and a
// flat row-major Go slice. It is the one value type shared by ops, runtime,
// importer, exporter and training, and it knows nothing of ONNX files.
package tensor

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// DType is an element type. The numeric values equal ONNX's
// TensorProto.DataType enum so that conversion at the file boundary is a cast.
type DType int32

// Element types. Values follow the ONNX specification.
const (
	Undefined DType = 0
	Float32   DType = 1
	Uint8     DType = 2
	Int8      DType = 3
	Uint16    DType = 4
	Int16     DType = 5
	Int32     DType = 6
	Int64     DType = 7
	String    DType = 8
	Bool      DType = 9
	Float16   DType = 10
	Float64   DType = 11
	Uint32    DType = 12
	Uint64    DType = 13
	BFloat16  DType = 16

	// The low-precision types (opsets 19-25), held one element per byte:
	// float8 and float4 as bit patterns, 4- and 2-bit integers as values.
	Float8E4M3FN   DType = 17
	Float8E4M3FNUZ DType = 18
	Float8E5M2     DType = 19
	Float8E5M2FNUZ DType = 20
	Uint4          DType = 21
	Int4           DType = 22
	Float4E2M1     DType = 23
	Float8E8M0     DType = 24
	Uint2          DType = 25
	Int2           DType = 26
)

var dtypeNames = map[DType]string{
	Float32: "float32", Uint8: "uint8", Int8: "int8", Uint16: "uint16",
	Int16: "int16", Int32: "int32", Int64: "int64", String: "string",
	Bool: "bool", Float16: "float16", Float64: "float64", Uint32: "uint32",
	Uint64: "uint64", BFloat16: "bfloat16",
	Float8E4M3FN: "float8e4m3fn", Float8E4M3FNUZ: "float8e4m3fnuz", Float8E5M2: "float8e5m2",
	Float8E5M2FNUZ: "float8e5m2fnuz", Uint4: "uint4", Int4: "int4", Float4E2M1: "float4e2m1",
	Float8E8M0: "float8e8m0", Uint2: "uint2", Int2: "int2",
}

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// Supported reports whether mtlrun can hold tensors of this dtype.
func (d DType) Supported() bool { _, ok := dtypeNames[d]; return ok }

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool {
	return d == Float32 || d == Float64 || d == Float16 || d == BFloat16
}

// IsInteger reports whether d is a signed or unsigned integer type.
func (d DType) IsInteger() bool {
	switch d {
	case Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32, Uint64:
		return true
	}
	return false
}

// Size is the number of bytes one element takes in ONNX raw_data (0 for
// strings and for the 4- and 2-bit types, which pack several elements per
// byte: see RawBytes).
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float8E8M0:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float32, Int32, Uint32:
		return 4
	case Float64, Int64, Uint64:
		return 8
	}
	return 0
}

// ParseDType accepts the names printed by DType.String.
func ParseDType(s string) (DType, error) {
	for d, n := range dtypeNames {
		if n == s {
			return d, nil
		}
	}
	return Undefined, fmt.Errorf("tensor: unknown dtype %q", s)
}

// Float16Bits is an IEEE 754 half-precision value held as its bit pattern.
// It is deliberately not an arithmetic type: kernels convert to float32.
type Float16Bits uint16

// BFloat16Bits is a bfloat16 value held as its bit pattern.
type BFloat16Bits uint16

// Elem is the set of Go element types a Tensor may hold.
type Elem interface {
	float32 | float64 | int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | bool | string | Float16Bits | BFloat16Bits |
		Float8E4M3FNBits | Float8E4M3FNUZBits | Float8E5M2Bits | Float8E5M2FNUZBits | Float8E8M0Bits | Float4E2M1Bits |
		Uint4Val | Int4Val | Uint2Val | Int2Val
}

// Number is the set of element types with Go arithmetic.
type Number interface {
	float32 | float64 | int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64
}

// Float is the set of Go floating-point element types.
type Float interface{ float32 | float64 }

// MaxElements bounds the size of any one tensor (2^31 elements, 8 GiB of
// float32) so that a corrupt or hostile shape fails with an error instead of
// exhausting memory. On a 32-bit platform (linux/386, wasm is 64-bit) it is
// math.MaxInt, 2^31-1: an element count must fit an int, and such a process
// cannot address a larger tensor anyway.
const MaxElements = min(1<<31, math.MaxInt)

// ErrTooLarge is returned when a shape asks for more than MaxElements.
var ErrTooLarge = errors.New("tensor: too many elements")

// Tensor is a dense row-major array. Data holds a slice of the Go type that
// matches DType (float32 → []float32, Float16 → []Float16Bits, ...), with
// len(Data) == product(Shape). A scalar has an empty Shape and one element.
type Tensor struct {
	DType DType
	Shape []int
	Data  any
}

// NumElements returns the product of shape, or an error for negative dims or
// a product above MaxElements.
func NumElements(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("tensor: negative dimension in shape %s", ShapeString(shape))
		}
		if d > MaxElements {
			if n != 0 {
				return 0, fmt.Errorf("%w: shape %s", ErrTooLarge, ShapeString(shape))
			}
			continue
		}
		// n and d are at most MaxElements <= 2^31: the product fits in 64
		// bits (no division per dim: this runs for every arena tensor)
		p := uint64(n) * uint64(d)
		if p > MaxElements {
			return 0, fmt.Errorf("%w: shape %s", ErrTooLarge, ShapeString(shape))
		}
		n = int(p)
	}
	return n, nil
}

// New allocates a zero tensor.
func New(dt DType, shape []int) (*Tensor, error) {
	n, err := NumElements(shape)
	if err != nil {
		return nil, err
	}
	data, err := MakeSlice(dt, n)
	if err != nil {
		return nil, err
	}
	return &Tensor{DType: dt, Shape: append([]int{}, shape...), Data: data}, nil
}

// MakeSlice allocates a zeroed slice of n elements of type dt; n must be
// in [0, MaxElements].
func MakeSlice(dt DType, n int) (any, error) {
	if n < 0 || n > MaxElements {
		return nil, fmt.Errorf("%w: %d elements", ErrTooLarge, n)
	}
	switch dt {
	case Float32:
		return make([]float32, n), nil
	case Float64:
		return make([]float64, n), nil
	case Int8:
		return make([]int8, n), nil
	case Int16:
		return make([]int16, n), nil
	case Int32:
		return make([]int32, n), nil
	case Int64:
		return make([]int64, n), nil
	case Uint8:
		return make([]uint8, n), nil
	case Uint16:
		return make([]uint16, n), nil
	case Uint32:
		return make([]uint32, n), nil
	case Uint64:
		return make([]uint64, n), nil
	case Bool:
		return make([]bool, n), nil
	case String:
		return make([]string, n), nil
	case Float16:
		return make([]Float16Bits, n), nil
	case BFloat16:
		return make([]BFloat16Bits, n), nil
	}
	if s, ok := makeLow(dt, n); ok {
		return s, nil
	}
	if dt.IsBoxed() {
		return make([]*Tensor, n), nil
	}
	return nil, fmt.Errorf("tensor: unsupported dtype %v", dt)
}

// DTypeOf returns the DType for a Go element type.
func DTypeOf[T Elem]() DType {
	var z T
	switch any(z).(type) {
	case float32:
		return Float32
	case float64:
		return Float64
	case int8:
		return Int8
	case int16:
		return Int16
	case int32:
		return Int32
	case int64:
		return Int64
	case uint8:
		return Uint8
	case uint16:
		return Uint16
	case uint32:
		return Uint32
	case uint64:
		return Uint64
	case bool:
		return Bool
	case string:
		return String
	case Float16Bits:
		return Float16
	case BFloat16Bits:
		return BFloat16
	}
	return lowDType(any(z))
}

// From wraps data (not copied) as a tensor of the given shape. It panics if
// the length does not match: callers construct both from the same source.
// Use FromChecked for data from outside the program.
func From[T Elem](shape []int, data []T) *Tensor {
	t, err := FromChecked(shape, data)
	if err != nil {
		panic(err)
	}
	return t
}

// FromChecked is From with an error instead of a panic.
func FromChecked[T Elem](shape []int, data []T) (*Tensor, error) {
	n, err := NumElements(shape)
	if err != nil {
		return nil, err
	}
	if n != len(data) {
		return nil, fmt.Errorf("tensor: shape %v needs %d elements, data has %d", shape, n, len(data))
	}
	if shape == nil {
		shape = []int{}
	}
	return &Tensor{DType: DTypeOf[T](), Shape: append([]int{}, shape...), Data: data}, nil
}

// Scalar returns a rank-0 tensor.
func Scalar[T Elem](v T) *Tensor { return From([]int{}, []T{v}) }

// Data returns the tensor's slice as []T. It panics if T does not match the
// tensor's dtype, which is a programming error in the caller.
func Data[T Elem](t *Tensor) []T {
	d, ok := t.Data.([]T)
	if !ok {
		var z T
		panic(fmt.Sprintf("tensor: Data[%T] on %v tensor", z, t.DType))
	}
	return d
}

// Float32s is Data[float32].
func (t *Tensor) Float32s() []float32 { return Data[float32](t) }

// Float64s is Data[float64].
func (t *Tensor) Float64s() []float64 { return Data[float64](t) }

// Int64s is Data[int64].
func (t *Tensor) Int64s() []int64 { return Data[int64](t) }

// Bools is Data[bool].
func (t *Tensor) Bools() []bool { return Data[bool](t) }

// IsRowVector reports whether the shape is [n] or [1 n]: a bias that
// broadcasts over the rows of an m×n matrix one value per column.
func (t *Tensor) IsRowVector(n int) bool {
	switch len(t.Shape) {
	case 1:
		return t.Shape[0] == n
	case 2:
		return t.Shape[0] == 1 && t.Shape[1] == n
	}
	return false
}

// Rank is len(Shape).
func (t *Tensor) Rank() int { return len(t.Shape) }

// Len is the number of elements.
func (t *Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{DType: t.DType, Shape: append([]int{}, t.Shape...)}
	switch d := t.Data.(type) {
	case []float32:
		c.Data = append([]float32(nil), d...)
	case []float64:
		c.Data = append([]float64(nil), d...)
	case []int8:
		c.Data = append([]int8(nil), d...)
	case []int16:
		c.Data = append([]int16(nil), d...)
	case []int32:
		c.Data = append([]int32(nil), d...)
	case []int64:
		c.Data = append([]int64(nil), d...)
	case []uint8:
		c.Data = append([]uint8(nil), d...)
	case []uint16:
		c.Data = append([]uint16(nil), d...)
	case []uint32:
		c.Data = append([]uint32(nil), d...)
	case []uint64:
		c.Data = append([]uint64(nil), d...)
	case []bool:
		c.Data = append([]bool(nil), d...)
	case []string:
		c.Data = append([]string(nil), d...)
	case []Float16Bits:
		c.Data = append([]Float16Bits(nil), d...)
	case []BFloat16Bits:
		c.Data = append([]BFloat16Bits(nil), d...)
	case []*Tensor:
		c.Data = append([]*Tensor{}, d...)
	default:
		c.Data = cloneLow(d)
	}
	if c.Data == nil {
		c.Data, _ = MakeSlice(t.DType, 0)
	}
	return c
}

// Reshaped returns a tensor sharing t's data with a new shape.
func (t *Tensor) Reshaped(shape []int) (*Tensor, error) {
	n, err := NumElements(shape)
	if err != nil {
		return nil, err
	}
	if n != t.Len() {
		return nil, fmt.Errorf("tensor: cannot reshape %v (%d elements) to %v", t.Shape, t.Len(), shape)
	}
	return &Tensor{DType: t.DType, Shape: append([]int{}, shape...), Data: t.Data}, nil
}

// Validate checks that Data's Go type matches DType and its length matches
// Shape. It allocates nothing unless it fails (the runtime calls it on
// every input of every run).
func (t *Tensor) Validate() error {
	if t == nil {
		return errors.New("tensor: nil")
	}
	n, err := NumElements(t.Shape)
	if err != nil {
		return err
	}
	if !t.DType.Supported() {
		return fmt.Errorf("tensor: unsupported dtype %v", t.DType)
	}
	if _, boxed := t.Data.([]*Tensor); boxed != t.DType.IsBoxed() || !boxed && dataDType(t.Data) != t.DType {
		return fmt.Errorf("tensor: dtype %v holds %T", t.DType, t.Data)
	}
	if l := DataLen(t.Data); l != n {
		return fmt.Errorf("tensor: shape %s needs %d elements, data has %d", ShapeString(t.Shape), n, l)
	}
	return nil
}

// dataDType is the dtype whose Go slice type d has, or Undefined.
func dataDType(d any) DType {
	switch d.(type) {
	case []float32:
		return Float32
	case []float64:
		return Float64
	case []int8:
		return Int8
	case []int16:
		return Int16
	case []int32:
		return Int32
	case []int64:
		return Int64
	case []uint8:
		return Uint8
	case []uint16:
		return Uint16
	case []uint32:
		return Uint32
	case []uint64:
		return Uint64
	case []bool:
		return Bool
	case []string:
		return String
	case []Float16Bits:
		return Float16
	case []BFloat16Bits:
		return BFloat16
	}
	return lowSliceDType(d)
}

// DataLen returns the length of a tensor data slice of any element type,
// or -1 for a value that is not one.
func DataLen(d any) int {
	switch d := d.(type) {
	case []float32:
		return len(d)
	case []float64:
		return len(d)
	case []int8:
		return len(d)
	case []int16:
		return len(d)
	case []int32:
		return len(d)
	case []int64:
		return len(d)
	case []uint8:
		return len(d)
	case []uint16:
		return len(d)
	case []uint32:
		return len(d)
	case []uint64:
		return len(d)
	case []bool:
		return len(d)
	case []string:
		return len(d)
	case []Float16Bits:
		return len(d)
	case []BFloat16Bits:
		return len(d)
	case []*Tensor:
		return len(d)
	}
	return lowLen(d)
}

// ShapeString formats a shape as "[2 3 4]".
func ShapeString(shape []int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range shape {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, d)
	}
	b.WriteByte(']')
	return b.String()
}

// String describes the tensor without its data, e.g. "float32[2 3]".
func (t *Tensor) String() string { return t.DType.String() + ShapeString(t.Shape) }

// SameShape reports whether two shapes are equal.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
