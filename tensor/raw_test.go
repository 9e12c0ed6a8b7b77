package tensor

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestRawRoundTrip(t *testing.T) {
	cases := []struct {
		name  string
		t     *Tensor
		bytes []byte // the expected little-endian encoding, when given
	}{
		{"float32", From([]int{3}, []float32{1, float32(math.Inf(-1)), -0.5}), []byte{0, 0, 0x80, 0x3f, 0, 0, 0x80, 0xff, 0, 0, 0, 0xbf}},
		{"float64", From([]int{2}, []float64{1, math.SmallestNonzeroFloat64}), []byte{0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 1, 0, 0, 0, 0, 0, 0, 0}},
		{"int64", From([]int{2}, []int64{-2, math.MaxInt64}), []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{"uint64", From([]int{1}, []uint64{math.MaxUint64}), nil},
		{"int32", From([]int{2}, []int32{math.MinInt32, 7}), []byte{0, 0, 0, 0x80, 7, 0, 0, 0}},
		{"uint32", From([]int{1}, []uint32{0xdeadbeef}), []byte{0xef, 0xbe, 0xad, 0xde}},
		{"int16", From([]int{2}, []int16{-2, 0x1234}), []byte{0xfe, 0xff, 0x34, 0x12}},
		{"uint16", From([]int{1}, []uint16{0xffff}), nil},
		{"float16", From([]int{2}, []Float16Bits{0x3c00, 0x7e00}), []byte{0, 0x3c, 0, 0x7e}},
		{"bfloat16", From([]int{1}, []BFloat16Bits{0x3f80}), []byte{0x80, 0x3f}},
		{"int8", From([]int{2}, []int8{-128, 5}), []byte{0x80, 5}},
		{"uint8", From([]int{2}, []uint8{0, 255}), []byte{0, 255}},
		{"bool", From([]int{2}, []bool{true, false}), []byte{1, 0}},
		{"empty", From([]int{0}, []float32{}), []byte{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, err := EncodeRaw(c.t)
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) != c.t.Len()*c.t.DType.Size() {
				t.Fatalf("%d bytes, want %d", len(raw), c.t.Len()*c.t.DType.Size())
			}
			if c.bytes != nil && !bytes.Equal(raw, c.bytes) {
				t.Errorf("bytes % x, want % x", raw, c.bytes)
			}
			back, err := DecodeRaw(c.t.DType, raw, c.t.Len())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, c.t.Data) {
				t.Errorf("decoded %v, want %v", back, c.t.Data)
			}
		})
	}
}

func TestRawRefusals(t *testing.T) {
	if _, err := DecodeRaw(Float32, make([]byte, 7), 2); err == nil || !strings.Contains(err.Error(), "7 bytes cannot hold 2 float32") {
		t.Errorf("short buffer: err = %v", err)
	}
	if _, err := DecodeRaw(String, nil, 0); err == nil {
		t.Errorf("raw strings accepted")
	}
	if _, err := EncodeRaw(From([]int{1}, []string{"x"})); err == nil {
		t.Errorf("EncodeRaw of strings succeeded")
	}
	// any nonzero byte is true
	if b, err := DecodeRaw(Bool, []byte{0, 2, 255}, 3); err != nil || !reflect.DeepEqual(b, []bool{false, true, true}) {
		t.Errorf("bools = %v, %v", b, err)
	}
	// DecodeRaw copies: the tensor does not alias the buffer
	buf := []byte{1, 2}
	u, _ := DecodeRaw(Uint8, buf, 2)
	buf[0] = 9
	if u.([]uint8)[0] != 1 {
		t.Errorf("DecodeRaw(uint8) aliases its input")
	}
}

func TestParseDType(t *testing.T) {
	for d := range dtypeNames {
		got, err := ParseDType(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDType(%q) = %v, %v", d.String(), got, err)
		}
	}
	if _, err := ParseDType("float128"); err == nil {
		t.Errorf("ParseDType(float128) succeeded")
	}
	if Float16.Size() != 2 || Int64.Size() != 8 || String.Size() != 0 || !BFloat16.IsFloat() || Bool.IsInteger() || !Uint8.IsInteger() {
		t.Errorf("dtype facts wrong")
	}
}
