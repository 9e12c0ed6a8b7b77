package math

import (
	gomath "math"
	"strconv"
	"strings"

	"github.com/mtlrun/mtlrun/ops"
	"github.com/mtlrun/mtlrun/tensor"
)

func init() {
	ops.Register("", "Cast", 1, func(c *ops.Config) (ops.Op, error) {
		if !c.Attrs.Has("to") {
			return nil, ops.BadAttr("to", "required attribute is missing")
		}
		to := tensor.DType(c.Attrs.Int("to", 0))
		if !to.Supported() {
			return nil, ops.BadAttr("to", "unsupported target dtype %v", to)
		}
		return ops.OpFunc(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if err := ops.NeedInputs(in, 1); err != nil {
				return nil, err
			}
			return one(cast(in[0], to))
		}), nil
	})
	ops.Register("", "CastLike", 15, fixed(func(in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		if err := ops.NeedInputs(in, 2); err != nil {
			return nil, err
		}
		return one(cast(in[0], in[1].DType))
	}))
}

// cast converts x to dtype to. Numeric conversions follow Go (and C): float
// to integer truncates toward zero, integers wrap. Conversions to float16 and
// bfloat16 round once, to nearest even, from the exact source value. Floats
// print as numpy prints them ("0.039187793", "1e-05", "NaN", "INF"); strings
// parse as numbers (case-insensitive "nan", "inf", "+inf", "-inf").
func cast(x *tensor.Tensor, to tensor.DType) (*tensor.Tensor, error) {
	n := tensor.DataLen(x.Data)
	if n < 0 {
		return nil, unsupported(0, x)
	}
	if err := lenMatches(0, x, n); err != nil {
		return nil, err
	}
	shape := append([]int{}, x.Shape...)
	if x.DType == to {
		return &tensor.Tensor{DType: to, Shape: shape, Data: x.Data}, nil
	}
	src := x.Data
	if s, ok := src.([]string); ok {
		v, err := parseStrings(s, to)
		if err != nil {
			return nil, err
		}
		src = v
	}
	var out any
	switch to {
	case tensor.String:
		out = formatAll(src)
	case tensor.Float16, tensor.BFloat16:
		w := widenForHalf(src)
		if w == nil {
			return nil, unsupported(0, x)
		}
		return fromF32(&tensor.Tensor{DType: tensor.Float32, Shape: shape, Data: w}, to), nil
	case tensor.Bool:
		out = toBool(src)
	case tensor.Float32:
		out = castNum[float32](src)
	case tensor.Float64:
		out = castNum[float64](src)
	case tensor.Int8:
		out = castNum[int8](src)
	case tensor.Int16:
		out = castNum[int16](src)
	case tensor.Int32:
		out = castNum[int32](src)
	case tensor.Int64:
		out = castNum[int64](src)
	case tensor.Uint8:
		out = castNum[uint8](src)
	case tensor.Uint16:
		out = castNum[uint16](src)
	case tensor.Uint32:
		out = castNum[uint32](src)
	case tensor.Uint64:
		out = castNum[uint64](src)
	}
	if out == nil {
		return nil, ops.BadInput(0, "cannot cast %v (shape %v) to %v", x.DType, x.Shape, to)
	}
	return &tensor.Tensor{DType: to, Shape: shape, Data: out}, nil
}

func conv[D, S num](src []S) []D {
	out := make([]D, len(src))
	for i, v := range src {
		out[i] = D(v)
	}
	return out
}

// castNum converts any numeric, bool or 16-bit float slice to []D; it
// returns nil for other data.
func castNum[D num](src any) any {
	switch s := src.(type) {
	case []float32:
		return conv[D](s)
	case []float64:
		return conv[D](s)
	case []int8:
		return conv[D](s)
	case []int16:
		return conv[D](s)
	case []int32:
		return conv[D](s)
	case []int64:
		return conv[D](s)
	case []uint8:
		return conv[D](s)
	case []uint16:
		return conv[D](s)
	case []uint32:
		return conv[D](s)
	case []uint64:
		return conv[D](s)
	case []bool:
		out := make([]D, len(s))
		for i, v := range s {
			if v {
				out[i] = 1
			}
		}
		return out
	case []tensor.Float16Bits:
		out := make([]D, len(s))
		for i, v := range s {
			out[i] = D(tensor.Float16ToFloat32(v))
		}
		return out
	case []tensor.BFloat16Bits:
		out := make([]D, len(s))
		for i, v := range s {
			out[i] = D(tensor.BFloat16ToFloat32(v))
		}
		return out
	}
	return nil
}

func toBool(src any) any {
	if b, ok := src.([]bool); ok {
		return append([]bool(nil), b...)
	}
	f := castNum[float64](src)
	if f == nil {
		return nil
	}
	fs := f.([]float64)
	out := make([]bool, len(fs))
	for i, v := range fs {
		out[i] = v != 0
	}
	return out
}

// widenForHalf gives float32 values from which float16/bfloat16 round
// correctly: exact for narrow sources, rounded to odd from float64 and wide
// integers so that the second rounding is not a double rounding.
func widenForHalf(src any) []float32 {
	switch s := src.(type) {
	case []float32:
		return s
	case []float64:
		out := make([]float32, len(s))
		for i, v := range s {
			out[i] = roundToOdd32(v)
		}
		return out
	case []int64:
		out := make([]float32, len(s))
		for i, v := range s {
			out[i] = roundToOdd32(float64(v))
		}
		return out
	case []uint64:
		out := make([]float32, len(s))
		for i, v := range s {
			out[i] = roundToOdd32(float64(v))
		}
		return out
	}
	v := castNum[float64](src)
	if v == nil {
		return nil
	}
	f := v.([]float64)
	out := make([]float32, len(f))
	for i, x := range f {
		out[i] = roundToOdd32(x)
	}
	return out
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
		w := castNum[float32](s).([]float32)
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
	v := castNum[int64](src)
	if v == nil {
		return nil
	}
	iv := v.([]int64)
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
