package serve

import (
	"errors"
	"math"
	"strconv"
	"unsafe"

	"github.com/mtlrun/mtlrun/tensor"
)

// decodeJSONData reads an input's "data" (flat, or nested exactly as the
// shape says) straight into a tensor of the datatype, parsing every number
// for that datatype: integers exactly (no float64 round trip), range-checked
// and refused when not integral; floats refused when they overflow the
// type; booleans only for BOOL.
func decodeJSONData(name string, raw []byte, dt tensor.DType, shape []int) (*tensor.Tensor, error) {
	n, err := tensor.NumElements(shape)
	if err != nil {
		return nil, badf("input %q: %v", name, err)
	}
	// every element needs at least one byte of JSON text: refuse before
	// allocating when the data cannot possibly hold n values
	if n > len(raw) {
		return nil, badf("input %q: shape %v needs %d values, data has fewer", name, shape, n)
	}
	t, err := tensor.New(dt, shape)
	if err != nil {
		return nil, badf("input %q: %v", name, err)
	}
	d := &dataDecoder{name: name, src: raw, t: t, n: n}
	if err := d.top(shape); err != nil {
		return nil, err
	}
	return t, nil
}

type dataDecoder struct {
	name string
	src  []byte
	pos  int
	t    *tensor.Tensor
	n    int // elements the shape needs
	k    int // elements stored
}

func (d *dataDecoder) ws() {
	for d.pos < len(d.src) {
		switch d.src[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *dataDecoder) peek() byte {
	d.ws()
	if d.pos < len(d.src) {
		return d.src[d.pos]
	}
	return 0
}

func (d *dataDecoder) errf(format string, args ...any) error {
	return badf("input %q: data: "+format, append([]any{d.name}, args...)...)
}

// top accepts a bare value for a one-element tensor, a flat array, or an
// array nested like the shape.
func (d *dataDecoder) top(shape []int) error {
	if d.peek() != '[' {
		if d.n != 1 {
			return d.errf("shape %v needs an array of %d values", shape, d.n)
		}
		if err := d.value(); err != nil {
			return err
		}
	} else {
		// nested when the first element is itself an array
		save := d.pos
		d.pos++
		nested := d.peek() == '['
		d.pos = save
		if nested && len(shape) > 1 {
			if err := d.nested(shape, 0); err != nil {
				return err
			}
		} else if err := d.flat(); err != nil {
			return err
		}
	}
	if d.ws(); d.pos < len(d.src) {
		return d.errf("unexpected %q after the data at byte %d", d.src[d.pos], d.pos)
	}
	if d.k != d.n {
		return d.errf("shape %v needs %d values, data has %d", shapeOfTensor(d.t), d.n, d.k)
	}
	return nil
}

func shapeOfTensor(t *tensor.Tensor) []int { return t.Shape }

// flat reads [v, v, ...] of scalars.
func (d *dataDecoder) flat() error {
	d.pos++ // '['
	if d.peek() == ']' {
		d.pos++
		return nil
	}
	for {
		if err := d.value(); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return nil
		default:
			return d.errf("expected ',' or ']' at byte %d", d.pos)
		}
	}
}

// nested reads an array of shape[level] elements, each nested one level
// deeper (scalars at the last level).
func (d *dataDecoder) nested(shape []int, level int) error {
	if d.peek() != '[' {
		return d.errf("nesting does not match shape %v: expected an array at depth %d (byte %d)", shape, level, d.pos)
	}
	d.pos++
	count := 0
	if d.peek() == ']' {
		d.pos++
	} else {
		for {
			if level == len(shape)-1 {
				if d.peek() == '[' {
					return d.errf("nesting does not match shape %v: too deep at byte %d", shape, d.pos)
				}
				if err := d.value(); err != nil {
					return err
				}
			} else if err := d.nested(shape, level+1); err != nil {
				return err
			}
			count++
			if c := d.peek(); c == ',' {
				d.pos++
				continue
			} else if c == ']' {
				d.pos++
				break
			}
			return d.errf("expected ',' or ']' at byte %d", d.pos)
		}
	}
	if count != shape[level] {
		return d.errf("nesting does not match shape %v: %d elements at depth %d, want %d", shape, count, level, shape[level])
	}
	return nil
}

// token returns the scalar token at pos (a number, true or false).
func (d *dataDecoder) token() (string, error) {
	d.ws()
	start := d.pos
	for d.pos < len(d.src) {
		c := d.src[d.pos]
		if c == ',' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			break
		}
		if c == '[' || c == '{' || c == '"' || c == '}' {
			if d.pos == start {
				return "", d.errf("element %d is not a scalar (byte %d)", d.k, d.pos)
			}
			break
		}
		d.pos++
	}
	if d.pos == start {
		return "", d.errf("missing value at byte %d", d.pos)
	}
	// a view of the request bytes, not a copy: the token is parsed at once
	// and never kept (error messages format it into new strings)
	return unsafe.String(&d.src[start], d.pos-start), nil
}

// isJSONNumber checks the JSON number grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
// and reports whether it is an integer literal.
func isJSONNumber(s string) (ok, integer bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	start := i
	if n := digits(); n == 0 || (n > 1 && s[start] == '0') {
		return false, false
	}
	integer = true
	if i < len(s) && s[i] == '.' {
		i++
		integer = false
		if digits() == 0 {
			return false, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		integer = false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false, false
		}
	}
	return i == len(s), integer
}

// value parses one scalar into element k.
func (d *dataDecoder) value() error {
	if d.k >= d.n {
		return d.errf("more values than shape %v holds (%d)", d.t.Shape, d.n)
	}
	tok, err := d.token()
	if err != nil {
		return err
	}
	k := d.k
	d.k++
	if d.t.DType == tensor.Bool {
		switch tok {
		case "true":
			d.t.Data.([]bool)[k] = true
		case "false":
		default:
			return d.errf("element %d (%s) is not a boolean", k, tok)
		}
		return nil
	}
	num, integer := isJSONNumber(tok)
	if !num {
		return d.errf("element %d (%.40s) is not a number", k, tok)
	}
	dt := d.t.DType
	if dt.IsInteger() {
		if !integer {
			return d.errf("element %d (%s) is not an integer, as %s needs", k, tok, Datatype(dt))
		}
		bitsOf := dt.Size() * 8
		rangeErr := func() error {
			return d.errf("element %d (%s) is out of range for %s", k, tok, Datatype(dt))
		}
		switch x := d.t.Data.(type) {
		case []int8, []int16, []int32, []int64:
			v, err := strconv.ParseInt(tok, 10, bitsOf)
			if err != nil {
				return rangeErr()
			}
			switch x := x.(type) {
			case []int8:
				x[k] = int8(v)
			case []int16:
				x[k] = int16(v)
			case []int32:
				x[k] = int32(v)
			case []int64:
				x[k] = v
			}
		default:
			v, err := strconv.ParseUint(tok, 10, bitsOf)
			if err != nil {
				return rangeErr()
			}
			switch x := x.(type) {
			case []uint8:
				x[k] = uint8(v)
			case []uint16:
				x[k] = uint16(v)
			case []uint32:
				x[k] = uint32(v)
			case []uint64:
				x[k] = v
			}
		}
		return nil
	}
	v, err := strconv.ParseFloat(tok, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return d.errf("element %d (%.40s) is not a number", k, tok)
	}
	// overflow (1e999, or 1e39 for FP32) is refused; underflow gives 0
	finite := func(f float64) error {
		if math.IsInf(f, 0) {
			return d.errf("element %d (%.40s) is out of range for %s", k, tok, Datatype(dt))
		}
		return nil
	}
	switch x := d.t.Data.(type) {
	case []float32:
		x[k] = float32(v)
		return finite(float64(x[k]))
	case []float64:
		x[k] = v
		return finite(v)
	case []tensor.Float16Bits:
		x[k] = tensor.Float32ToFloat16(float32(v))
		return finite(float64(tensor.Float16ToFloat32(x[k])))
	case []tensor.BFloat16Bits:
		x[k] = tensor.Float32ToBFloat16(float32(v))
		return finite(float64(tensor.BFloat16ToFloat32(x[k])))
	}
	return d.errf("datatype %s cannot be sent as JSON", Datatype(dt))
}

// appendJSONData appends a tensor's values as a flat JSON array: numbers
// for every numeric type (UINT8 included, never base64), true/false for
// BOOL, null for NaN and infinities (JSON has no such numbers), and []
// for an empty tensor.
func appendJSONData(b []byte, t *tensor.Tensor) []byte {
	b = append(b, '[')
	appendFloat := func(f float64, bitSize int) {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			b = append(b, "null"...)
			return
		}
		b = strconv.AppendFloat(b, f, 'g', -1, bitSize)
	}
	n := tensor.DataLen(t.Data)
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		switch x := t.Data.(type) {
		case []float32:
			appendFloat(float64(x[i]), 32)
		case []float64:
			appendFloat(x[i], 64)
		case []tensor.Float16Bits:
			appendFloat(float64(tensor.Float16ToFloat32(x[i])), 32)
		case []tensor.BFloat16Bits:
			appendFloat(float64(tensor.BFloat16ToFloat32(x[i])), 32)
		case []int8:
			b = strconv.AppendInt(b, int64(x[i]), 10)
		case []int16:
			b = strconv.AppendInt(b, int64(x[i]), 10)
		case []int32:
			b = strconv.AppendInt(b, int64(x[i]), 10)
		case []int64:
			b = strconv.AppendInt(b, x[i], 10)
		case []uint8:
			b = strconv.AppendUint(b, uint64(x[i]), 10)
		case []uint16:
			b = strconv.AppendUint(b, uint64(x[i]), 10)
		case []uint32:
			b = strconv.AppendUint(b, uint64(x[i]), 10)
		case []uint64:
			b = strconv.AppendUint(b, x[i], 10)
		case []bool:
			b = strconv.AppendBool(b, x[i])
		default:
			b = append(b, "null"...)
		}
	}
	return append(b, ']')
}
