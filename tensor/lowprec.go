package tensor

import (
	"math"
	"sort"
)

// The low-precision element types: 8-bit floats (E4M3FN, E4M3FNUZ, E5M2,
// E5M2FNUZ, the exponent-only E8M0), the 4-bit float E2M1, and 4- and 2-bit
// integers. In memory each element takes one byte (the float bit pattern,
// or the integer value); in raw_data the 4-bit types pack two elements per
// byte and the 2-bit ones four, low bits first. Kernels compute on them
// through float32 (ToFloat32 / FromFloat32), as for float16.

// Float8E4M3FNBits is a float8 E4M3FN bit pattern (no infinities, max 448).
type Float8E4M3FNBits uint8

// Float8E4M3FNUZBits is a float8 E4M3FNUZ bit pattern (no infinities, no
// negative zero: 0x80 is NaN; max 240).
type Float8E4M3FNUZBits uint8

// Float8E5M2Bits is a float8 E5M2 bit pattern (IEEE-like, max 57344).
type Float8E5M2Bits uint8

// Float8E5M2FNUZBits is a float8 E5M2FNUZ bit pattern (0x80 is NaN).
type Float8E5M2FNUZBits uint8

// Float8E8M0Bits is a float8 E8M0 bit pattern: 2^(bits-127), 0xFF is NaN.
type Float8E8M0Bits uint8

// Float4E2M1Bits is a float4 E2M1 bit pattern in the low 4 bits
// (±0, 0.5, 1, 1.5, 2, 3, 4, 6).
type Float4E2M1Bits uint8

// Uint4Val is a 4-bit unsigned integer value (0..15).
type Uint4Val uint8

// Int4Val is a 4-bit signed integer value (-8..7).
type Int4Val int8

// Uint2Val is a 2-bit unsigned integer value (0..3).
type Uint2Val uint8

// Int2Val is a 2-bit signed integer value (-2..1).
type Int2Val int8

// IsLowPrecision reports whether d is one of the 8-, 4- or 2-bit types
// above.
func (d DType) IsLowPrecision() bool { return d >= Float8E4M3FN && d <= Int2 }

// IsMiniFloat reports whether d is one of the 8- or 4-bit float types.
func (d DType) IsMiniFloat() bool {
	switch d {
	case Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float8E8M0, Float4E2M1:
		return true
	}
	return false
}

// Bits is the width of one element in bits (0 for strings).
func (d DType) Bits() int {
	switch d {
	case Uint4, Int4, Float4E2M1:
		return 4
	case Uint2, Int2:
		return 2
	}
	return 8 * d.Size()
}

// RawBytes is the length of the raw_data of n elements of type d.
func RawBytes(d DType, n int) int { return (n*d.Bits() + 7) / 8 }

func makeLow(dt DType, n int) (any, bool) {
	switch dt {
	case Float8E4M3FN:
		return make([]Float8E4M3FNBits, n), true
	case Float8E4M3FNUZ:
		return make([]Float8E4M3FNUZBits, n), true
	case Float8E5M2:
		return make([]Float8E5M2Bits, n), true
	case Float8E5M2FNUZ:
		return make([]Float8E5M2FNUZBits, n), true
	case Float8E8M0:
		return make([]Float8E8M0Bits, n), true
	case Float4E2M1:
		return make([]Float4E2M1Bits, n), true
	case Uint4:
		return make([]Uint4Val, n), true
	case Int4:
		return make([]Int4Val, n), true
	case Uint2:
		return make([]Uint2Val, n), true
	case Int2:
		return make([]Int2Val, n), true
	}
	return nil, false
}

func lowDType(z any) DType {
	switch z.(type) {
	case Float8E4M3FNBits:
		return Float8E4M3FN
	case Float8E4M3FNUZBits:
		return Float8E4M3FNUZ
	case Float8E5M2Bits:
		return Float8E5M2
	case Float8E5M2FNUZBits:
		return Float8E5M2FNUZ
	case Float8E8M0Bits:
		return Float8E8M0
	case Float4E2M1Bits:
		return Float4E2M1
	case Uint4Val:
		return Uint4
	case Int4Val:
		return Int4
	case Uint2Val:
		return Uint2
	case Int2Val:
		return Int2
	}
	return Undefined
}

func lowSliceDType(d any) DType {
	switch d.(type) {
	case []Float8E4M3FNBits:
		return Float8E4M3FN
	case []Float8E4M3FNUZBits:
		return Float8E4M3FNUZ
	case []Float8E5M2Bits:
		return Float8E5M2
	case []Float8E5M2FNUZBits:
		return Float8E5M2FNUZ
	case []Float8E8M0Bits:
		return Float8E8M0
	case []Float4E2M1Bits:
		return Float4E2M1
	case []Uint4Val:
		return Uint4
	case []Int4Val:
		return Int4
	case []Uint2Val:
		return Uint2
	case []Int2Val:
		return Int2
	}
	return Undefined
}

// lowBytes copies a low-precision slice into one byte per element.
func lowBytes(d any) ([]uint8, bool) {
	switch d := d.(type) {
	case []Float8E4M3FNBits:
		return reinterpret8(d), true
	case []Float8E4M3FNUZBits:
		return reinterpret8(d), true
	case []Float8E5M2Bits:
		return reinterpret8(d), true
	case []Float8E5M2FNUZBits:
		return reinterpret8(d), true
	case []Float8E8M0Bits:
		return reinterpret8(d), true
	case []Float4E2M1Bits:
		return reinterpret8(d), true
	case []Uint4Val:
		return reinterpret8(d), true
	case []Int4Val:
		return reinterpret8(d), true
	case []Uint2Val:
		return reinterpret8(d), true
	case []Int2Val:
		return reinterpret8(d), true
	}
	return nil, false
}

func reinterpret8[T ~uint8 | ~int8](s []T) []uint8 {
	out := make([]uint8, len(s))
	for i, v := range s {
		out[i] = uint8(v)
	}
	return out
}

func lowLen(d any) int {
	if b, ok := lowBytes(d); ok {
		return len(b)
	}
	return -1
}

func cloneLow(d any) any {
	if dt := lowSliceDType(d); dt != Undefined {
		b, _ := lowBytes(d)
		return fromBytes(dt, b)
	}
	return nil
}

// fromBytes builds a low-precision slice of type dt from one byte per element.
func fromBytes(dt DType, b []uint8) any {
	s, _ := makeLow(dt, len(b))
	switch s := s.(type) {
	case []Float8E4M3FNBits:
		for i, v := range b {
			s[i] = Float8E4M3FNBits(v)
		}
	case []Float8E4M3FNUZBits:
		for i, v := range b {
			s[i] = Float8E4M3FNUZBits(v)
		}
	case []Float8E5M2Bits:
		for i, v := range b {
			s[i] = Float8E5M2Bits(v)
		}
	case []Float8E5M2FNUZBits:
		for i, v := range b {
			s[i] = Float8E5M2FNUZBits(v)
		}
	case []Float8E8M0Bits:
		for i, v := range b {
			s[i] = Float8E8M0Bits(v)
		}
	case []Float4E2M1Bits:
		for i, v := range b {
			s[i] = Float4E2M1Bits(v & 0xF)
		}
	case []Uint4Val:
		for i, v := range b {
			s[i] = Uint4Val(v & 0xF)
		}
	case []Int4Val:
		for i, v := range b {
			s[i] = Int4Val(int8(v<<4) >> 4)
		}
	case []Uint2Val:
		for i, v := range b {
			s[i] = Uint2Val(v & 3)
		}
	case []Int2Val:
		for i, v := range b {
			s[i] = Int2Val(int8(v<<6) >> 6)
		}
	}
	return s
}

// decodeLowRaw unpacks raw_data of a low-precision type.
func decodeLowRaw(dt DType, raw []byte, n int) any {
	b := make([]uint8, n)
	switch dt.Bits() {
	case 8:
		copy(b, raw[:n])
	case 4:
		for i := range b {
			b[i] = raw[i/2] >> (4 * (i % 2)) & 0xF
		}
	case 2:
		for i := range b {
			b[i] = raw[i/4] >> (2 * (i % 4)) & 3
		}
	}
	return fromBytes(dt, b)
}

// encodeLowRaw packs a low-precision slice into raw_data.
func encodeLowRaw(dt DType, d any) []byte {
	b, _ := lowBytes(d)
	switch dt.Bits() {
	case 4:
		out := make([]byte, RawBytes(dt, len(b)))
		for i, v := range b {
			out[i/2] |= (v & 0xF) << (4 * (i % 2))
		}
		return out
	case 2:
		out := make([]byte, RawBytes(dt, len(b)))
		for i, v := range b {
			out[i/4] |= (v & 3) << (2 * (i % 4))
		}
		return out
	}
	return b
}

// miniFormat describes a small float format.
type miniFormat struct {
	exp, man, bias int
	fnuz           bool // 0x80 (sign bit alone) is NaN; no -0, no infinities
	inf            bool // IEEE infinities and NaNs at the top exponent
	noNaN          bool // every code is a number (float4)
}

var miniFormats = map[DType]miniFormat{
	Float8E4M3FN:   {exp: 4, man: 3, bias: 7},
	Float8E4M3FNUZ: {exp: 4, man: 3, bias: 8, fnuz: true},
	Float8E5M2:     {exp: 5, man: 2, bias: 15, inf: true},
	Float8E5M2FNUZ: {exp: 5, man: 2, bias: 16, fnuz: true},
	Float4E2M1:     {exp: 2, man: 1, bias: 1, noNaN: true},
}

// decode returns the value of a code.
func (f miniFormat) decode(code uint8) float64 {
	bits := 1 + f.exp + f.man
	sign := code >> (bits - 1) & 1
	e := int(code>>f.man) & (1<<f.exp - 1)
	m := int(code) & (1<<f.man - 1)
	if f.fnuz && code == 1<<(bits-1) {
		return math.NaN()
	}
	top := 1<<f.exp - 1
	switch {
	case f.inf && e == top && m == 0:
		return math.Copysign(math.Inf(1), float64(int(1)-2*int(sign)))
	case f.inf && e == top:
		return math.NaN()
	case !f.inf && !f.fnuz && !f.noNaN && e == top && m == 1<<f.man-1:
		return math.NaN() // E4M3FN: S.1111.111
	}
	var v float64
	if e == 0 {
		v = math.Ldexp(float64(m), 1-f.bias-f.man)
	} else {
		v = math.Ldexp(float64(m+1<<f.man), e-f.bias-f.man)
	}
	if sign == 1 {
		v = -v
	}
	return v
}

// positives lists the format's non-negative finite codes by value.
func (f miniFormat) positives() (codes []uint8, vals []float64) {
	bits := 1 + f.exp + f.man
	for c := 0; c < 1<<(bits-1); c++ {
		v := f.decode(uint8(c))
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			codes, vals = append(codes, uint8(c)), append(vals, v)
		}
	}
	sort.Sort(byValue{codes, vals})
	return codes, vals
}

type byValue struct {
	c []uint8
	v []float64
}

func (b byValue) Len() int           { return len(b.c) }
func (b byValue) Less(i, j int) bool { return b.v[i] < b.v[j] }
func (b byValue) Swap(i, j int) {
	b.c[i], b.c[j] = b.c[j], b.c[i]
	b.v[i], b.v[j] = b.v[j], b.v[i]
}

// encode rounds x to the nearest code, ties to the even code. Beyond the
// largest finite value (after rounding) it gives ±max when saturate, else
// ±Inf where the format has it and NaN otherwise; ±Inf gives ±max when
// saturate for formats without NaN-only infinity handling (E4M3FN, E5M2).
func (f miniFormat) encode(x float64, saturate bool, codes []uint8, vals []float64) uint8 {
	bits := 1 + f.exp + f.man
	signBit := uint8(1) << (bits - 1)
	nan := uint8(1<<bits - 1) // S.111...1
	if f.fnuz {
		nan = signBit
	}
	if math.IsNaN(x) {
		if f.noNaN {
			return 0
		}
		return nan
	}
	neg := math.Signbit(x)
	a := math.Abs(x)
	withSign := func(c uint8) uint8 {
		if neg && !(f.fnuz && c == 0) {
			return c | signBit
		}
		return c
	}
	mx := vals[len(vals)-1]
	if math.IsInf(x, 0) {
		switch {
		case f.fnuz && !saturate:
			return nan
		case saturate || f.noNaN:
			return withSign(codes[len(codes)-1])
		case f.inf:
			return withSign(uint8(1<<f.exp-1) << f.man)
		default:
			return nan
		}
	}
	// nearest, ties to even
	i := sort.SearchFloat64s(vals, a) // vals[i] >= a
	var c uint8
	switch {
	case i < len(vals) && vals[i] == a:
		c = codes[i]
	case i == 0:
		c = codes[0]
	case i == len(vals):
		// above max: it rounds to max if within half a step of it
		step := mx - vals[len(vals)-2]
		if a < mx+step/2 || (a == mx+step/2 && codes[len(codes)-1]&1 == 0) {
			c = codes[len(codes)-1]
		} else if saturate || f.noNaN {
			c = codes[len(codes)-1]
		} else if f.inf {
			return withSign(uint8(1<<f.exp-1) << f.man)
		} else {
			return nan
		}
	default:
		lo, hi := vals[i-1], vals[i]
		switch {
		case a-lo < hi-a:
			c = codes[i-1]
		case a-lo > hi-a:
			c = codes[i]
		case codes[i-1]&1 == 0:
			c = codes[i-1]
		default:
			c = codes[i]
		}
	}
	return withSign(c)
}

type miniTable struct {
	f     miniFormat
	dec   [256]float32
	codes []uint8
	vals  []float64
}

var miniTables = func() map[DType]*miniTable {
	out := map[DType]*miniTable{}
	for dt, f := range miniFormats {
		t := &miniTable{f: f}
		n := 1 << (1 + f.exp + f.man)
		for c := 0; c < n; c++ {
			t.dec[c] = float32(f.decode(uint8(c)))
		}
		t.codes, t.vals = f.positives()
		out[dt] = t
	}
	return out
}()

// MiniToFloat32 decodes a float8/float4 code of type dt (E8M0 included).
func MiniToFloat32(dt DType, code uint8) float32 {
	if dt == Float8E8M0 {
		if code == 0xFF {
			return float32(math.NaN())
		}
		return float32(math.Ldexp(1, int(code)-127))
	}
	return miniTables[dt].dec[code&0xFF]
}

// MiniFromFloat32 encodes x as a float8/float4 code of type dt, rounding to
// nearest even, with ONNX Cast's saturate rule for values out of range.
// E8M0 rounds the exponent up (Cast's default round_mode).
func MiniFromFloat32(dt DType, x float32, saturate bool) uint8 {
	if dt == Float8E8M0 {
		return e8m0Up(x, saturate)
	}
	t := miniTables[dt]
	return t.f.encode(float64(x), saturate, t.codes, t.vals)
}

// e8m0Up is the float32 exponent of x, plus one when any mantissa bit is
// set (round up), NaN/Inf as 0xFF (or 0xFE when saturating an Inf).
func e8m0Up(x float32, saturate bool) uint8 {
	b := math.Float32bits(x)
	e := b >> 23 & 0xFF
	if e == 0xFF {
		if math.IsInf(float64(x), 0) && saturate {
			return 0xFE
		}
		return 0xFF
	}
	if b&0x7FFFFF != 0 && !(e == 0 && b&0x7FFFFF <= 0x400000) {
		e++
		if e == 0xFF {
			if saturate {
				return 0xFE
			}
			return 0xFF
		}
	} else if e == 0 && b&0x7FFFFF != 0 {
		e++
	}
	return uint8(e)
}

// lowToFloat64 reads a low-precision slice as float64 values.
func lowToFloat64(out []float64, d any) bool {
	switch d := d.(type) {
	case []Uint4Val:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []Int4Val:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []Uint2Val:
		for i, v := range d {
			out[i] = float64(v)
		}
	case []Int2Val:
		for i, v := range d {
			out[i] = float64(v)
		}
	default:
		dt := lowSliceDType(d)
		if dt == Undefined {
			return false
		}
		b, _ := lowBytes(d)
		for i, c := range b {
			out[i] = float64(MiniToFloat32(dt, c))
		}
	}
	return true
}

// FromFloat64s converts values to a low-precision slice of type dt: the
// float types round to nearest even (out-of-range values as Cast's saturate
// says; E8M0 from the value rounded to float32), the integer types truncate
// toward zero and keep their low bits (-9 becomes int4 7), as Cast narrows
// integers.
func FromFloat64s(dt DType, v []float64, saturate bool) (any, bool) {
	if !dt.IsLowPrecision() {
		return nil, false
	}
	b := make([]uint8, len(v))
	for i, x := range v {
		switch {
		case dt == Float8E8M0:
			b[i] = e8m0Up(float32(x), saturate)
			continue
		case dt.IsMiniFloat():
			t := miniTables[dt]
			b[i] = t.f.encode(x, saturate, t.codes, t.vals)
			continue
		}
		// integers: truncate toward zero, then keep the low bits (wrap, as
		// Cast does for every integer narrowing)
		f := math.Trunc(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			f = 0
		}
		b[i] = uint8(int64(math.Max(-1<<62, math.Min(1<<62, f))))
	}
	return fromBytes(dt, b), true
}
