package tensor

import (
	"math"
	"testing"
)

// half is the value of IEEE 754 binary16 bits, computed in float64 from
// the definition (an independent reference for Float16ToFloat32).
func half(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e, m := int(h>>10)&0x1f, float64(h&0x3ff)
	switch e {
	case 0:
		return sign * math.Ldexp(m/1024, -14)
	case 0x1f:
		if m != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(1+m/1024, e-15)
}

func TestFloat16ToFloat32Exhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got, want := Float16ToFloat32(Float16Bits(h)), half(h)
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("%#04x: %v, want NaN", h, got)
			}
		} else if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Fatalf("%#04x: %v, want %v", h, got, want)
		}
		// every half value survives float32 and back (NaN stays NaN)
		back := Float32ToFloat16(got)
		if math.IsNaN(want) {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 || back&0x8000 != Float16Bits(h)&0x8000 {
				t.Fatalf("%#04x: NaN came back as %#04x", h, back)
			}
		} else if back != Float16Bits(h) {
			t.Fatalf("%#04x → %v → %#04x", h, got, back)
		}
	}
}

func TestFloat32ToFloat16(t *testing.T) {
	cases := []struct {
		name string
		in   float32
		want Float16Bits
	}{
		{"one", 1, 0x3c00},
		{"minus two", -2, 0xc000},
		{"max finite", 65504, 0x7bff},
		{"just below the overflow tie", 65519, 0x7bff},
		{"overflow tie rounds to inf", 65520, 0x7c00},
		{"far overflow", 1e6, 0x7c00},
		{"negative overflow", -1e6, 0xfc00},
		{"+inf", float32(math.Inf(1)), 0x7c00},
		{"-inf", float32(math.Inf(-1)), 0xfc00},
		{"nan", float32(math.NaN()), 0x7e00},
		{"-0", float32(math.Copysign(0, -1)), 0x8000},
		{"min normal", float32(math.Ldexp(1, -14)), 0x0400},
		{"max subnormal", float32(math.Ldexp(1023, -24)), 0x03ff},
		{"min subnormal", float32(math.Ldexp(1, -24)), 0x0001},
		{"half the min subnormal ties to even (0)", float32(math.Ldexp(1, -25)), 0x0000},
		{"1.5 × half the min subnormal rounds up", float32(math.Ldexp(3, -26)), 0x0001},
		{"3 × half the min subnormal ties to even (2)", float32(math.Ldexp(3, -25)), 0x0002},
		{"underflow to 0", float32(math.Ldexp(1, -30)), 0x0000},
		{"negative underflow keeps the sign", -float32(math.Ldexp(1, -30)), 0x8000},
		{"tie to even below", 1 + float32(math.Ldexp(1, -11)), 0x3c00},
		{"tie to even above", 1 + float32(math.Ldexp(3, -11)), 0x3c02},
		{"just above a tie rounds up", 1 + float32(math.Ldexp(1, -11)) + float32(math.Ldexp(1, -20)), 0x3c01},
		{"mantissa carry into the exponent", 2 - float32(math.Ldexp(1, -12)), 0x4000},
		{"float32 subnormal", float32(math.Ldexp(1, -140)), 0x0000},
	}
	for _, c := range cases {
		if got := Float32ToFloat16(c.in); got != c.want {
			t.Errorf("%s: Float32ToFloat16(%v) = %#04x, want %#04x", c.name, c.in, got, c.want)
		}
	}
}

func TestBFloat16(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		b := BFloat16Bits(i)
		f := BFloat16ToFloat32(b)
		if math.Float32bits(f) != uint32(i)<<16 {
			t.Fatalf("%#04x: bits %#08x", i, math.Float32bits(f))
		}
		back := Float32ToBFloat16(f)
		if f != f {
			if back&0x7f80 != 0x7f80 || back&0x7f == 0 {
				t.Fatalf("%#04x: NaN came back as %#04x", i, back)
			}
		} else if back != b {
			t.Fatalf("%#04x → %v → %#04x", i, f, back)
		}
	}
	cases := []struct {
		name string
		bits uint32 // float32 input
		want BFloat16Bits
	}{
		{"one", 0x3f800000, 0x3f80},
		{"tie to even below", 0x3f808000, 0x3f80},
		{"tie to even above", 0x3f818000, 0x3f82},
		{"above the tie", 0x3f808001, 0x3f81},
		{"below the tie", 0x3f807fff, 0x3f80},
		{"max float32 rounds to inf", 0x7f7fffff, 0x7f80},
		{"inf", 0x7f800000, 0x7f80},
		{"-inf", 0xff800000, 0xff80},
		{"NaN with a low payload stays NaN", 0x7f800001, 0x7fc0},
		{"-0", 0x80000000, 0x8000},
		{"float32 subnormal", 0x00000001, 0x0000},
		{"largest float32 subnormal rounds to the min normal", 0x007fffff, 0x0080},
	}
	for _, c := range cases {
		if got := Float32ToBFloat16(math.Float32frombits(c.bits)); got != c.want {
			t.Errorf("%s: Float32ToBFloat16(%#08x) = %#04x, want %#04x", c.name, c.bits, got, c.want)
		}
	}
}

func TestAsFloat64AndInt64(t *testing.T) {
	cases := []struct {
		name string
		t    *Tensor
		f    []float64
		i    []int64
	}{
		{"float16", From([]int{3}, []Float16Bits{0x3c00, 0xc000, 0x0001}), []float64{1, -2, math.Ldexp(1, -24)}, nil},
		{"bfloat16", From([]int{2}, []BFloat16Bits{0x3f80, 0xc0a0}), []float64{1, -5}, nil},
		{"bool", From([]int{2}, []bool{true, false}), []float64{1, 0}, []int64{1, 0}},
		{"uint64", From([]int{1}, []uint64{1 << 40}), []float64{1 << 40}, []int64{1 << 40}},
		{"int8", From([]int{2}, []int8{-128, 127}), []float64{-128, 127}, []int64{-128, 127}},
	}
	for _, c := range cases {
		f, err := AsFloat64(c.t)
		if err != nil || len(f) != len(c.f) {
			t.Fatalf("%s: AsFloat64 = %v, %v", c.name, f, err)
		}
		for k := range f {
			if f[k] != c.f[k] {
				t.Errorf("%s: AsFloat64[%d] = %v, want %v", c.name, k, f[k], c.f[k])
			}
		}
		i, err := AsInt64(c.t)
		if c.i == nil { // floats are refused
			if err == nil {
				t.Errorf("%s: AsInt64 accepted a float tensor", c.name)
			}
			continue
		}
		if err != nil || len(i) != len(c.i) {
			t.Fatalf("%s: AsInt64 = %v, %v", c.name, i, err)
		}
		for k := range i {
			if i[k] != c.i[k] {
				t.Errorf("%s: AsInt64[%d] = %v, want %v", c.name, k, i[k], c.i[k])
			}
		}
	}
	if _, err := AsFloat64(From([]int{1}, []string{"x"})); err == nil {
		t.Errorf("AsFloat64 of strings succeeded")
	}
}
