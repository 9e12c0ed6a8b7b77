package serve

import (
	"encoding/json"
	"fmt"
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
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
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

func int64Shape(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}
