package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/mtlrun/mtlrun/tensor"
)

// Open Inference Protocol (KServe v2) datatypes.
var datatypes = map[string]tensor.DType{
	"BOOL": tensor.Bool, "UINT8": tensor.Uint8, "UINT16": tensor.Uint16, "UINT32": tensor.Uint32, "UINT64": tensor.Uint64,
	"INT8": tensor.Int8, "INT16": tensor.Int16, "INT32": tensor.Int32, "INT64": tensor.Int64,
	"FP16": tensor.Float16, "FP32": tensor.Float32, "FP64": tensor.Float64, "BF16": tensor.BFloat16,
}

// Datatype names a dtype in the protocol.
func Datatype(d tensor.DType) string {
	for k, v := range datatypes {
		if v == d {
			return k
		}
	}
	return "BYTES"
}

// ParseDatatype maps a protocol datatype to a dtype.
func ParseDatatype(s string) (tensor.DType, error) {
	d, ok := datatypes[strings.ToUpper(s)]
	if !ok {
		return tensor.Undefined, fmt.Errorf("unsupported datatype %q", s)
	}
	return d, nil
}

// RequestInput is one input of an inference request in JSON.
type RequestInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// RequestOutput names one output an inference request asks for in JSON.
type RequestOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// InferRequest is the JSON body (or binary header) of /infer.
type InferRequest struct {
	ID         string          `json:"id,omitempty"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Inputs     []RequestInput  `json:"inputs"`
	Outputs    []RequestOutput `json:"outputs,omitempty"`
}

// ResponseOutput is one output in the JSON response.
type ResponseOutput struct {
	Name       string         `json:"name"`
	Shape      []int64        `json:"shape"`
	Datatype   string         `json:"datatype"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       any            `json:"data,omitempty"`
}

// InferResponse is the JSON body (or binary header) of a response.
type InferResponse struct {
	ModelName    string           `json:"model_name"`
	ModelVersion string           `json:"model_version,omitempty"`
	ID           string           `json:"id,omitempty"`
	Outputs      []ResponseOutput `json:"outputs"`
}

// BadRequest is a client error (HTTP 400, gRPC InvalidArgument).
type BadRequest struct{ Msg string }

func (e *BadRequest) Error() string { return e.Msg }

func badf(format string, args ...any) error { return &BadRequest{fmt.Sprintf(format, args...)} }

func paramInt(p map[string]any, key string) (int64, bool) {
	v, ok := p[key]
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case float64:
		return int64(x), true
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	}
	return 0, false
}

func paramBool(p map[string]any, key string) bool {
	v, ok := p[key]
	if !ok {
		return false
	}
	b, _ := v.(bool)
	return b
}

func shapeOf(shape []int64) ([]int, error) {
	out := make([]int, len(shape))
	for i, d := range shape {
		if d < 0 || d > tensor.MaxElements {
			return nil, badf("shape %v: dimension %d is invalid", shape, d)
		}
		out[i] = int(d)
	}
	if _, err := tensor.NumElements(out); err != nil {
		return nil, badf("shape %v: %v", shape, err)
	}
	return out, nil
}

// decodeJSONData reads flat or nested JSON arrays into a tensor.
func decodeJSONData(in RequestInput, dt tensor.DType, shape []int) (*tensor.Tensor, error) {
	var nested any
	dec := json.NewDecoder(bytes.NewReader(in.Data))
	dec.UseNumber()
	if err := dec.Decode(&nested); err != nil {
		return nil, badf("input %q: data is not valid JSON: %v", in.Name, err)
	}
	var flat []any
	var walk func(v any)
	walk = func(v any) {
		if arr, ok := v.([]any); ok {
			for _, x := range arr {
				walk(x)
			}
			return
		}
		flat = append(flat, v)
	}
	walk(nested)
	n, _ := tensor.NumElements(shape)
	if len(flat) != n {
		return nil, badf("input %q: shape %v needs %d values, data has %d", in.Name, shape, n, len(flat))
	}
	t, err := tensor.New(dt, shape)
	if err != nil {
		return nil, badf("input %q: %v", in.Name, err)
	}
	num := func(i int) (float64, error) {
		switch x := flat[i].(type) {
		case json.Number:
			return x.Float64()
		case bool:
			if x {
				return 1, nil
			}
			return 0, nil
		}
		return 0, badf("input %q: element %d (%v) is not a number", in.Name, i, flat[i])
	}
	for i := range flat {
		if dt == tensor.Bool {
			b, ok := flat[i].(bool)
			if !ok {
				return nil, badf("input %q: element %d (%v) is not a boolean", in.Name, i, flat[i])
			}
			t.Data.([]bool)[i] = b
			continue
		}
		v, err := num(i)
		if err != nil {
			return nil, err
		}
		switch d := t.Data.(type) {
		case []float32:
			d[i] = float32(v)
		case []float64:
			d[i] = v
		case []int64:
			d[i] = int64(v)
		case []int32:
			d[i] = int32(v)
		case []int16:
			d[i] = int16(v)
		case []int8:
			d[i] = int8(v)
		case []uint8:
			d[i] = uint8(v)
		case []uint16:
			d[i] = uint16(v)
		case []uint32:
			d[i] = uint32(v)
		case []uint64:
			d[i] = uint64(v)
		case []tensor.Float16Bits:
			d[i] = tensor.Float32ToFloat16(float32(v))
		case []tensor.BFloat16Bits:
			d[i] = tensor.Float32ToBFloat16(float32(v))
		}
	}
	return t, nil
}

// decodeRaw reads little-endian raw tensor bytes (binary extension, gRPC
// raw_input_contents).
func decodeRaw(name string, raw []byte, dt tensor.DType, shape []int) (*tensor.Tensor, error) {
	n, _ := tensor.NumElements(shape)
	if dt.Size() == 0 {
		return nil, badf("input %q: datatype %v cannot be sent as raw bytes", name, dt)
	}
	if len(raw) != n*dt.Size() {
		return nil, badf("input %q: shape %v of %s needs %d bytes, got %d", name, shape, Datatype(dt), n*dt.Size(), len(raw))
	}
	data, err := tensor.DecodeRaw(dt, raw, n)
	if err != nil {
		return nil, badf("input %q: %v", name, err)
	}
	return &tensor.Tensor{DType: dt, Shape: shape, Data: data}, nil
}

// jsonData returns a tensor's values as a flat JSON-encodable slice.
func jsonData(t *tensor.Tensor) any {
	switch d := t.Data.(type) {
	case []tensor.Float16Bits:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = tensor.Float16ToFloat32(v)
		}
		return out
	case []tensor.BFloat16Bits:
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = tensor.BFloat16ToFloat32(v)
		}
		return out
	case []float32:
		// JSON has no NaN/Inf: report them as null rather than failing
		for _, v := range d {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				out := make([]any, len(d))
				for i, x := range d {
					if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
						out[i] = nil
					} else {
						out[i] = x
					}
				}
				return out
			}
		}
	}
	return t.Data
}

func int64Shape(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}
