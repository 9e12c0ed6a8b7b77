package math

import (
	gomath "math"
	"strconv"
	"strings"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Define(ops.Desc{Type: "Cast", Since: 1, Traits: ops.Elementwise, Kernel: func(c *ops.Config) (ops.Op, error) {
		if !c.Attrs.Has("to") {
			return nil, ops.BadAttr("to", "required attribute is missing")
		}
		to := tensor.DType(c.Attrs.Int("to", 0))
		if !to.Supported() {
			return nil, ops.BadAttr("to", "unsupported target dtype %v", to)
		}
		saturate, err := castAttrs(c, to)
		if err != nil {
			return nil, err
		}
		return kernel(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 1); err != nil {
				return nil, err
			}
			if lowCast(in[0].DType, to) {
				r, err := castLow(in[0], to, saturate)
				return one(ar, r, err)
			}
			r, err := castTo(ar, in[0], to)
			return one(ar, r, err)
		}), nil
	}})
	// gradient: train/autodiff/rules_transformer.go (cast back)
	ops.Define(ops.Desc{Type: "CastLike", Since: 15, Grad: ops.GradRule{}, Traits: ops.Elementwise, Kernel: func(c *ops.Config) (ops.Op, error) {
		saturate := c.Attrs.Int("saturate", 1) != 0
		return fixed(func(ar *ops.Arena, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 2); err != nil {
				return nil, err
			}
			if lowCast(in[0].DType, in[1].DType) {
				r, err := castLow(in[0], in[1].DType, saturate)
				return one(ar, r, err)
			}
			r, err := castTo(ar, in[0], in[1].DType)
			return one(ar, r, err)
		})(c)
	}})
}

// cast is castTo with fresh memory.
func cast(x *tensor.Tensor, to tensor.DType) (*tensor.Tensor, error) { return castTo(nil, x, to) }

// castTo converts x to dtype to, the result coming from ar. Numeric
// conversions follow Go (and C): float to integer truncates toward zero,
// integers wrap. Conversions to float16 and bfloat16 round once, to nearest
// even, from the exact source value. Floats print as numpy prints them
// ("0.039187793", "1e-05", "NaN", "INF"); strings parse as numbers
// (case-insensitive "nan", "inf", "+inf", "-inf"). A cast to the input's own
// dtype is a view of the input. Casts from or to strings allocate (the
// strings themselves are new memory anyway).
func castTo(ar *ops.Arena, x *tensor.Tensor, to tensor.DType) (*tensor.Tensor, error) {
	n := tensor.DataLen(x.Data)
	if n < 0 {
		return nil, unsupported(0, x)
	}
	if err := lenMatches(0, x, n); err != nil {
		return nil, err
	}
	if x.DType == to {
		return ar.View(x, x.Shape)
	}
	src := x.Data
	if s, ok := src.([]string); ok {
		v, err := parseStrings(s, to)
		if err != nil {
			return nil, err
		}
		src = v
	}
	if to == tensor.String {
		out := formatAll(src)
		if out == nil {
			return nil, ops.BadInput(0, "cannot cast %v (shape %v) to %v", x.DType, x.Shape, to)
		}
		return &tensor.Tensor{DType: to, Shape: append([]int{}, x.Shape...), Data: out}, nil
	}
	if isHalf(to) {
		w, ok := src.([]float32)
		if !ok {
			w = ar.Float32s(n)
			if !widenForHalf(w, src) {
				return nil, unsupported(0, x)
			}
		}
		r, err := ar.Empty(to, x.Shape)
		if err != nil {
			return nil, err
		}
		switch d := r.Data.(type) {
		case []tensor.Float16Bits:
			for i, v := range w {
				d[i] = tensor.Float32ToFloat16(v)
			}
		case []tensor.BFloat16Bits:
			for i, v := range w {
				d[i] = tensor.Float32ToBFloat16(v)
			}
		}
		return r, nil
	}
	r, err := ar.Empty(to, x.Shape)
	if err != nil {
		return nil, err
	}
	ok := false
	switch d := r.Data.(type) {
	case []bool:
		ok = boolInto(d, src)
	case []float32:
		ok = castInto(d, src)
	case []float64:
		ok = castInto(d, src)
	case []int8:
		ok = castInto(d, src)
	case []int16:
		ok = castInto(d, src)
	case []int32:
		ok = castInto(d, src)
	case []int64:
		ok = castInto(d, src)
	case []uint8:
		ok = castInto(d, src)
	case []uint16:
		ok = castInto(d, src)
	case []uint32:
		ok = castInto(d, src)
	case []uint64:
		ok = castInto(d, src)
	}
	if !ok {
		return nil, ops.BadInput(0, "cannot cast %v (shape %v) to %v", x.DType, x.Shape, to)
	}
	return r, nil
}

func conv[D, S num](dst []D, src []S) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = D(v)
	}
}

// castInto converts any numeric, bool or 16-bit float slice into dst (of
// the same length); it returns false for other data.
func castInto[D num](dst []D, src any) bool {
	switch s := src.(type) {
	case []float32:
		conv(dst, s)
	case []float64:
		conv(dst, s)
	case []int8:
		conv(dst, s)
	case []int16:
		conv(dst, s)
	case []int32:
		conv(dst, s)
	case []int64:
		conv(dst, s)
	case []uint8:
		conv(dst, s)
	case []uint16:
		conv(dst, s)
	case []uint32:
		conv(dst, s)
	case []uint64:
		conv(dst, s)
	case []bool:
		dst = dst[:len(s)]
		for i, v := range s {
			dst[i] = 0
			if v {
				dst[i] = 1
			}
		}
	case []tensor.Float16Bits:
		dst = dst[:len(s)]
		for i, v := range s {
			dst[i] = D(tensor.Float16ToFloat32(v))
		}
	case []tensor.BFloat16Bits:
		dst = dst[:len(s)]
		for i, v := range s {
			dst[i] = D(tensor.BFloat16ToFloat32(v))
		}
	default:
		return false
	}
	return true
}

// castNum converts src to a new []D (nil for unsupported data).
func castNum[D num](src any) []D {
	out := make([]D, tensor.DataLen(src))
	if !castInto(out, src) {
		return nil
	}
	return out
}

func nonZero[T num](dst []bool, src []T) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = v != 0
	}
}

// boolInto sets dst[i] = src[i] != 0 (NaN counts as non-zero).
func boolInto(dst []bool, src any) bool {
	switch s := src.(type) {
	case []bool:
		copy(dst, s)
	case []float32:
		nonZero(dst, s)
	case []float64:
		nonZero(dst, s)
	case []int8:
		nonZero(dst, s)
	case []int16:
		nonZero(dst, s)
	case []int32:
		nonZero(dst, s)
	case []int64:
		nonZero(dst, s)
	case []uint8:
		nonZero(dst, s)
	case []uint16:
		nonZero(dst, s)
	case []uint32:
		nonZero(dst, s)
	case []uint64:
		nonZero(dst, s)
	case []tensor.Float16Bits:
		for i, v := range s {
			dst[i] = tensor.Float16ToFloat32(v) != 0
		}
	case []tensor.BFloat16Bits:
		for i, v := range s {
			dst[i] = tensor.BFloat16ToFloat32(v) != 0
		}
	default:
		return false
	}
	return true
}

func roundToOdd[T num](dst []float32, src []T) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = roundToOdd32(float64(v))
	}
}

// widenForHalf writes into dst float32 values from which float16/bfloat16
// round correctly: exact for narrow sources, rounded to odd from float64 and
// wide integers so that the second rounding is not a double rounding.
func widenForHalf(dst []float32, src any) bool {
	switch s := src.(type) {
	case []float32:
		copy(dst, s)
	case []float64:
		roundToOdd(dst, s)
	case []int64:
		roundToOdd(dst, s)
	case []uint64:
		roundToOdd(dst, s)
	case []int8:
		roundToOdd(dst, s)
	case []int16:
		roundToOdd(dst, s)
	case []int32:
		roundToOdd(dst, s)
	case []uint8:
		roundToOdd(dst, s)
	case []uint16:
		roundToOdd(dst, s)
	case []uint32:
		roundToOdd(dst, s)
	default:
		return castInto(dst, src) // bool and the half formats are exact
	}
	return true
}

// roundToOdd32 rounds x to float32 toward zero and sets the last mantissa bit
// when inexact. Rounding that to a format with at least two fewer mantissa
// bits gives the correctly rounded result.
func roundToOdd32(x float64) float32 {
	f := float32(x)
	if float64(f) == x || x != x || gomath.IsInf(float64(f), 0) {
		return f
	}
	b := gomath.Float32bits(f)
	if gomath.Abs(float64(f)) > gomath.Abs(x) {
		b-- // one step toward zero (sign-magnitude)
	}
	return gomath.Float32frombits(b | 1)
}

// ---- strings ----

func formatAll(src any) []string {
	switch s := src.(type) {
	case []float32:
		out := make([]string, len(s))
		for i, v := range s {
			out[i] = formatFloat(float64(v), 32)
		}
		return out
	case []float64:
		out := make([]string, len(s))
		for i, v := range s {
			out[i] = formatFloat(v, 64)
		}
		return out
	case []tensor.Float16Bits, []tensor.BFloat16Bits:
		w := castNum[float32](s)
		out := make([]string, len(w))
		for i, v := range w {
			out[i] = formatFloat(float64(v), 32)
		}
		return out
	case []bool:
		out := make([]string, len(s))
		for i, v := range s {
			if v {
				out[i] = "1"
			} else {
				out[i] = "0"
			}
		}
		return out
	case []uint64:
		out := make([]string, len(s))
		for i, v := range s {
			out[i] = strconv.FormatUint(v, 10)
		}
		return out
	}
	iv := castNum[int64](src)
	if iv == nil {
		return nil
	}
	out := make([]string, len(iv))
	for i, x := range iv {
		out[i] = strconv.FormatInt(x, 10)
	}
	return out
}

// formatFloat prints the shortest representation that round-trips at the
// given precision, laid out as numpy does: positional for 1e-4 <= |v| < 1e16
// (always with a fractional part, "1.0"), scientific otherwise ("1e-05",
// "1.5e+16").
func formatFloat(v float64, bits int) string {
	switch {
	case v != v:
		return "NaN"
	case gomath.IsInf(v, 1):
		return "INF"
	case gomath.IsInf(v, -1):
		return "-INF"
	case v == 0:
		if gomath.Signbit(v) {
			return "-0.0"
		}
		return "0.0"
	}
	a := gomath.Abs(v)
	if a >= 1e-4 && a < 1e16 {
		s := strconv.FormatFloat(v, 'f', -1, bits)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(v, 'e', -1, bits) // d.ddde±XX
	return s
}

// parseStrings parses strings into []float64, or []int64 / []uint64 for
// integer targets (falling back to float syntax, truncated), or []bool.
func parseStrings(s []string, to tensor.DType) (any, error) {
	switch {
	case to == tensor.Bool:
		out := make([]bool, len(s))
		for i, str := range s {
			t := strings.TrimSpace(str)
			if b, err := strconv.ParseBool(t); err == nil {
				out[i] = b
				continue
			}
			f, err := strconv.ParseFloat(t, 64)
			if err != nil {
				return nil, ops.BadInput(0, "element %d: cannot parse %q as bool", i, str)
			}
			out[i] = f != 0
		}
		return out, nil
	case to == tensor.Uint64:
		out := make([]uint64, len(s))
		for i, str := range s {
			t := strings.TrimSpace(str)
			if u, err := strconv.ParseUint(t, 10, 64); err == nil {
				out[i] = u
				continue
			}
			f, err := strconv.ParseFloat(t, 64)
			if err != nil {
				return nil, ops.BadInput(0, "element %d: cannot parse %q as a number", i, str)
			}
			out[i] = uint64(f)
		}
		return out, nil
	case to.IsInteger():
		out := make([]int64, len(s))
		for i, str := range s {
			t := strings.TrimSpace(str)
			if n, err := strconv.ParseInt(t, 10, 64); err == nil {
				out[i] = n
				continue
			}
			f, err := strconv.ParseFloat(t, 64)
			if err != nil {
				return nil, ops.BadInput(0, "element %d: cannot parse %q as a number", i, str)
			}
			out[i] = int64(f)
		}
		return out, nil
	case to == tensor.Float32:
		out := make([]float32, len(s))
		for i, str := range s {
			f, err := strconv.ParseFloat(strings.TrimSpace(str), 32)
			if err != nil && !isRange(err) {
				return nil, ops.BadInput(0, "element %d: cannot parse %q as a number", i, str)
			}
			out[i] = float32(f)
		}
		return out, nil
	}
	out := make([]float64, len(s))
	for i, str := range s {
		f, err := strconv.ParseFloat(strings.TrimSpace(str), 64)
		if err != nil && !isRange(err) {
			return nil, ops.BadInput(0, "element %d: cannot parse %q as a number", i, str)
		}
		out[i] = f
	}
	return out, nil
}

// isRange reports a ParseFloat overflow, whose ±Inf result is kept.
func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}
