package tensor

import (
	"math"
	"testing"
)

// The float8/float4 formats checked against facts of their definitions
// (OCP FP8, the ONNX Cast table): the largest finite values, the smallest
// subnormals, NaN codes, rounding to nearest even and saturation.
func TestMiniFloats(t *testing.T) {
	cases := []struct {
		dt              DType
		maxCode         uint8
		max, minSub     float64
		nanCode         uint8
		hasInf, hasNegZ bool
	}{
		{Float8E4M3FN, 0x7E, 448, math.Ldexp(1, -9), 0x7F, false, true},
		{Float8E4M3FNUZ, 0x7F, 240, math.Ldexp(1, -10), 0x80, false, false},
		{Float8E5M2, 0x7B, 57344, math.Ldexp(1, -16), 0x7F, true, true},
		{Float8E5M2FNUZ, 0x7F, 57344, math.Ldexp(1, -17), 0x80, false, false},
	}
	for _, c := range cases {
		if got := float64(MiniToFloat32(c.dt, c.maxCode)); got != c.max {
			t.Errorf("%v: code %#x = %v, want max %v", c.dt, c.maxCode, got, c.max)
		}
		if got := float64(MiniToFloat32(c.dt, 1)); got != c.minSub {
			t.Errorf("%v: code 1 = %v, want smallest subnormal %v", c.dt, got, c.minSub)
		}
		if !math.IsNaN(float64(MiniToFloat32(c.dt, c.nanCode))) {
			t.Errorf("%v: code %#x is not NaN", c.dt, c.nanCode)
		}
		// every finite code survives a round trip
		for code := 0; code < 256; code++ {
			v := MiniToFloat32(c.dt, uint8(code))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				continue
			}
			back := MiniFromFloat32(c.dt, v, true)
			if MiniToFloat32(c.dt, back) != v {
				t.Fatalf("%v: code %#x (%v) comes back as %#x", c.dt, code, v, back)
			}
		}
		// saturation: beyond max, +Inf
		big := float32(c.max * 4)
		if got := MiniToFloat32(c.dt, MiniFromFloat32(c.dt, big, true)); float64(got) != c.max {
			t.Errorf("%v: saturated %v = %v, want %v", c.dt, big, got, c.max)
		}
		sat := MiniToFloat32(c.dt, MiniFromFloat32(c.dt, float32(math.Inf(-1)), true))
		nosat := MiniToFloat32(c.dt, MiniFromFloat32(c.dt, big, false))
		if float64(sat) != -c.max {
			t.Errorf("%v: saturated -Inf = %v, want %v", c.dt, sat, -c.max)
		}
		if c.hasInf && !math.IsInf(float64(nosat), 1) || !c.hasInf && !math.IsNaN(float64(nosat)) {
			t.Errorf("%v: unsaturated overflow = %v", c.dt, nosat)
		}
	}
	// ties go to the even code: 1.0625 lies halfway between E4M3FN's 1 and 1.125
	if got := MiniToFloat32(Float8E4M3FN, MiniFromFloat32(Float8E4M3FN, 1.0625, true)); got != 1 {
		t.Errorf("E4M3FN(1.0625) = %v, want 1 (ties to even)", got)
	}
	if got := MiniToFloat32(Float8E4M3FN, MiniFromFloat32(Float8E4M3FN, 1.1875, true)); got != 1.25 {
		t.Errorf("E4M3FN(1.1875) = %v, want 1.25 (ties to even)", got)
	}
	// float4 E2M1 holds ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}
	want := []float32{0, 0.5, 1, 1.5, 2, 3, 4, 6}
	for code, w := range want {
		if got := MiniToFloat32(Float4E2M1, uint8(code)); got != w {
			t.Errorf("E2M1 code %d = %v, want %v", code, got, w)
		}
		if got := MiniToFloat32(Float4E2M1, uint8(code|8)); got != -w {
			t.Errorf("E2M1 code %d = %v, want %v", code|8, got, -w)
		}
	}
	// E8M0: powers of two, the exponent rounded up
	if got := MiniToFloat32(Float8E8M0, 127); got != 1 {
		t.Errorf("E8M0 127 = %v", got)
	}
	if got := MiniToFloat32(Float8E8M0, MiniFromFloat32(Float8E8M0, 3, true)); got != 4 {
		t.Errorf("E8M0(3) = %v, want 4 (round up)", got)
	}
}

// TestLowRaw: 4-bit values pack two per byte and 2-bit ones four, low bits
// first (ONNX raw_data layout); integer narrowing wraps.
func TestLowRaw(t *testing.T) {
	x := &Tensor{DType: Int4, Shape: []int{3}, Data: []Int4Val{-8, 7, -1}}
	raw, err := EncodeRaw(x)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 2 || raw[0] != 0x78 || raw[1] != 0x0F {
		t.Fatalf("int4 raw = % x, want 78 0f", raw)
	}
	back, err := DecodeRaw(Int4, raw, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.([]Int4Val); got[0] != -8 || got[1] != 7 || got[2] != -1 {
		t.Errorf("int4 decode = %v", got)
	}
	u2, _ := DecodeRaw(Uint2, []byte{0b11100100}, 4)
	if got := u2.([]Uint2Val); got[0] != 0 || got[1] != 1 || got[2] != 2 || got[3] != 3 {
		t.Errorf("uint2 decode = %v", got)
	}
	if RawBytes(Int4, 3) != 2 || RawBytes(Uint2, 5) != 2 || RawBytes(Float8E5M2, 3) != 3 {
		t.Error("RawBytes")
	}
	d, _ := FromFloat64s(Int4, []float64{-9, 8, 7.9, -0.5}, true)
	if got := d.([]Int4Val); got[0] != 7 || got[1] != -8 || got[2] != 7 || got[3] != 0 {
		t.Errorf("int4 from -9, 8, 7.9, -0.5 = %v, want 7 -8 7 0 (truncate, wrap)", got)
	}
	tt := &Tensor{DType: Float8E5M2, Shape: []int{2}, Data: []Float8E5M2Bits{0x3C, 0xC0}}
	if err := tt.Validate(); err != nil {
		t.Fatal(err)
	}
	if v, _ := AsFloat64(tt); v[0] != 1 || v[1] != -2 {
		t.Errorf("E5M2 {0x3c, 0xc0} = %v, want [1 -2]", v)
	}
}

// TestBoxed: sequences and optionals validate, clone and count elements.
func TestBoxed(t *testing.T) {
	a := From([]int{2}, []float32{1, 2})
	s := NewSequence([]*Tensor{a, a})
	if err := s.Validate(); err != nil || len(s.Elements()) != 2 {
		t.Fatalf("sequence: %v, %d elements", err, len(s.Elements()))
	}
	if c := s.Clone(); len(c.Elements()) != 2 || &c.Elements()[0] == &s.Elements()[0] {
		t.Error("clone shares the element list")
	}
	if o := NewOptional(nil); o.Validate() != nil || len(o.Elements()) != 0 {
		t.Error("empty optional")
	}
	bad := &Tensor{DType: Sequence, Shape: []int{1}, Data: []float32{1}}
	if bad.Validate() == nil {
		t.Error("a sequence holding floats validated")
	}
}
